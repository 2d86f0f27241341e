/**
 * The stream styles other code already speaks, built over a SockIo's core
 * operations: a Node `Duplex`, WHATWG `ReadableStream` / `WritableStream`,
 * and async iteration. Each reads only when its consumer asks (so the
 * SockIo's receive buffer fills and pauses the transport when the consumer
 * is slow) and finishes a write only once the SockIo accepted every byte of
 * it (so a slow peer slows the writer).
 *
 * None of these apply the SockIo's `setTimeout`: a stream consumer has its
 * own ways to give up (destroy, cancel, abort, break).
 */
import { Duplex } from 'node:stream';
import { ReadableStream, WritableStream } from 'node:stream/web';

/**
 * What the adapters need from a SockIo: its blocking-style operations without
 * a timeout.
 * @internal
 */
export interface SockIoCore {
  /** At least one byte and at most `max`, or an empty array at end of stream. */
  read(max: number): Promise<Uint8Array>;
  /** Resolve once every byte of `data` was accepted. */
  writeAll(data: Uint8Array): Promise<void>;
  /** Half-close our sending side. */
  end(): void;
  /** Close gracefully (the SockIo's disconnect). */
  disconnect(): void;
}

/** Largest chunk an adapter asks for at once (the default `recv` size). */
const READ_CHUNK_BYTES = 64 * 1024;

/**
 * A Node Duplex over the core. Reading pulls one chunk per `_read` call;
 * `end()` on the Duplex half-closes the socket; `destroy()` disconnects it.
 * @internal
 */
export function coreToDuplex(core: SockIoCore): Duplex {
  let reading = false;
  const duplex: Duplex = new Duplex({
    read() {
      if (reading) return;
      reading = true;
      core.read(READ_CHUNK_BYTES).then(
        (chunk) => {
          reading = false;
          duplex.push(chunk.length === 0 ? null : chunk);
        },
        (error: unknown) => {
          reading = false;
          duplex.destroy(error as Error);
        },
      );
    },
    write(chunk: Uint8Array, _encoding, callback) {
      core.writeAll(chunk).then(() => callback(), callback);
    },
    final(callback) {
      core.end();
      callback();
    },
    destroy(error, callback) {
      core.disconnect();
      callback(error);
    },
  });
  return duplex;
}

/**
 * A WHATWG ReadableStream over the core. It reads only when its reader asks
 * (high-water mark 0); `cancel()` disconnects the socket.
 * @internal
 */
export function coreToReadable(core: SockIoCore): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const chunk = await core.read(READ_CHUNK_BYTES);
        if (chunk.length === 0) controller.close();
        else controller.enqueue(chunk);
      },
      cancel() {
        core.disconnect();
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * A WHATWG WritableStream over the core. Each `write()` settles once the
 * socket accepted the whole chunk; `close()` half-closes; `abort()`
 * disconnects.
 * @internal
 */
export function coreToWritable(core: SockIoCore): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    write(chunk) {
      return core.writeAll(chunk);
    },
    close() {
      core.end();
    },
    abort() {
      core.disconnect();
    },
  });
}

/**
 * Chunks from the core until end of stream. Leaving the loop early (break)
 * leaves the socket connected.
 * @internal
 */
export async function* coreChunks(core: SockIoCore): AsyncGenerator<Uint8Array, void, undefined> {
  for (;;) {
    const chunk = await core.read(READ_CHUNK_BYTES);
    if (chunk.length === 0) return;
    yield chunk;
  }
}
