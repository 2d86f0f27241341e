/**
 * One behaviour suite for every ByteStream transport (the contract in
 * src/transport/byte-stream.ts), run over each transport in both directions
 * by conformance.test.ts. Loops are bounded and timers are in milliseconds.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { GatesockError } from '../../src/errors/index.js';
import type { ByteStream } from '../../src/transport/index.js';
import { SeededRandom } from '../../src/transport/random.js';

/** A connected pair: `a` and `b` are the two ends; `cleanup` releases listeners and proxies. */
export interface StreamPair {
  a: ByteStream;
  b: ByteStream;
  cleanup?: () => Promise<void>;
}

/** What a transport supports, where the contract leaves room. */
export interface TransportTraits {
  /** Expected `info.kind` of `a` and of `b`. */
  kinds: readonly [string, string];
  /** After one side's `end()`, the other direction keeps working (TCP yes, WebSocket no). */
  halfClose: boolean;
}

const WAIT_MS = 5_000;
/** A writer that gets no `drain` for this long is considered stalled by backpressure. */
const STALL_MS = 150;
/** Upper bound on bytes pushed into a paused reader before the test gives up. */
const STALL_LIMIT_BYTES = 256 * 1024 * 1024;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolve with the first emission of `event`, or reject after `ms`. */
export function next<T extends unknown[]>(stream: ByteStream, event: 'data' | 'end' | 'drain' | 'close', ms = WAIT_MS): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    stream.once(event, (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as T);
    });
  });
}

/** Resolve when `ok()` holds, polling every few ms; reject after `ms`. */
export async function until(ok: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** `size` reproducible pseudo-random bytes. */
export function randomBytes(size: number, seed: number): Uint8Array {
  const rng = new SeededRandom(seed);
  const words = new Uint32Array(Math.ceil(size / 4));
  for (let i = 0; i < words.length; i++) words[i] = rng.next();
  return new Uint8Array(words.buffer, 0, size);
}

export function sha256(chunks: Iterable<Uint8Array>): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}

/** The error code thrown by `fn`, or undefined if it did not throw. */
export function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof GatesockError ? err.code : `not a GatesockError: ${String(err)}`;
  }
  return undefined;
}

/** Records the lifecycle events of a stream from the moment it exists. */
class Watch {
  ends = 0;
  closes: (GatesockError | undefined)[] = [];
  constructor(stream: ByteStream) {
    stream.on('end', () => this.ends++);
    stream.on('close', (err) => this.closes.push(err));
  }
}

/** Collect everything `stream` emits (resuming it) until `end`. */
function readAll(stream: ByteStream): { chunks: Uint8Array[]; bytes: () => number; done: Promise<void> } {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const done = next(stream, 'end', 20_000).then(() => undefined);
  done.catch(() => {}); // awaited by the tests that need it; not a stray rejection otherwise
  stream.on('data', (c) => {
    chunks.push(c);
    total += c.length;
  });
  stream.resume();
  return { chunks, bytes: () => total, done };
}

/**
 * Write `data` in chunks of varying size, honouring backpressure; resolves
 * once everything is written. Reports whether `write()` ever returned false.
 */
async function writeAll(stream: ByteStream, data: Uint8Array, maxChunk: number): Promise<{ sawFalse: boolean }> {
  let sawFalse = false;
  const sizes = new SeededRandom(7);
  for (let offset = 0; offset < data.length; ) {
    const size = 1 + (sizes.next() % maxChunk);
    const ok = stream.write(data.subarray(offset, offset + size));
    offset += size;
    if (!ok) {
      sawFalse = true;
      await next(stream, 'drain');
    }
  }
  return { sawFalse };
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const untext = (chunks: Uint8Array[]): string => Buffer.concat(chunks).toString('utf8');

/**
 * Run the ByteStream conformance suite over `makePair`, in both directions:
 * once with `a` as the writer, once with `b`.
 */
export function describeByteStreamConformance(name: string, makePair: () => Promise<StreamPair>, traits: TransportTraits): void {
  for (const direction of ['a→b', 'b→a'] as const) {
    describe(`${name} conformance (${direction})`, () => {
      let pair: StreamPair | undefined;
      let writer: ByteStream;
      let reader: ByteStream;
      let w: Watch;
      let r: Watch;

      async function open(): Promise<void> {
        pair = await makePair();
        [writer, reader] = direction === 'a→b' ? [pair.a, pair.b] : [pair.b, pair.a];
        w = new Watch(writer);
        r = new Watch(reader);
      }

      afterEach(async () => {
        pair?.a.destroy();
        pair?.b.destroy();
        await pair?.cleanup?.();
        pair = undefined;
      });

      it('names its transport in info', async () => {
        await open();
        expect([pair!.a.info.kind, pair!.b.info.kind]).toEqual(traits.kinds);
        expect(writer.closed).toBe(false);
      });

      it('starts paused: nothing is emitted before resume() and no byte is lost', async () => {
        await open();
        writer.write(text('hello '));
        writer.write(text('world'));
        await sleep(30);
        const got: Uint8Array[] = [];
        reader.on('data', (c) => got.push(c));
        await sleep(20);
        expect(got).toEqual([]);
        reader.resume();
        await until(() => untext(got).length >= 11, 'both writes');
        expect(untext(got)).toBe('hello world');
      });

      it('delivers a multi-MiB transfer in order and intact (SHA-256)', async () => {
        await open();
        const data = randomBytes(4 * 1024 * 1024 + 13, 1);
        const sink = readAll(reader);
        await writeAll(writer, data, 64 * 1024);
        writer.end();
        await sink.done;
        expect(sink.bytes()).toBe(data.length);
        expect(sha256(sink.chunks)).toBe(sha256([data]));
      });

      it('does not keep the written chunk: the caller may reuse its buffer at once', async () => {
        await open();
        const sink = readAll(reader);
        const buf = new Uint8Array(100_000);
        for (const fill of [1, 2, 3]) {
          buf.fill(fill);
          writer.write(buf);
        }
        buf.fill(9);
        writer.end();
        await sink.done;
        const got = Buffer.concat(sink.chunks);
        expect(got.length).toBe(300_000);
        for (const [i, fill] of [1, 2, 3].entries()) {
          expect(got.subarray(i * 100_000, (i + 1) * 100_000).every((x) => x === fill)).toBe(true);
        }
      });

      it('returns false from write() under load, then emits drain', async () => {
        await open();
        readAll(reader);
        const chunk = new Uint8Array(64 * 1024);
        let ok = true;
        for (let i = 0; i < 4096 && ok; i++) ok = writer.write(chunk);
        expect(ok).toBe(false);
        await next(writer, 'drain');
      });

      it('a paused reader makes the remote writer see backpressure until it resumes', async () => {
        await open();
        const chunk = randomBytes(64 * 1024, 2);
        let written = 0;
        let stalled = false;
        while (!stalled) {
          if (written > STALL_LIMIT_BYTES) throw new Error('writer never saw backpressure');
          const ok = writer.write(chunk);
          written += chunk.length;
          if (ok) continue;
          // Waiting for drain: it may come while buffers between us still fill.
          stalled = await next(writer, 'drain', STALL_MS).then(
            () => false,
            () => true,
          );
        }
        let drained = false;
        writer.once('drain', () => (drained = true));
        await sleep(STALL_MS);
        expect(drained).toBe(false);
        const sink = readAll(reader);
        await until(() => drained, 'drain after the reader resumed');
        writer.end();
        await sink.done;
        expect(sink.bytes()).toBe(written);
      });

      it(`half-close: end() reaches the peer as end${traits.halfClose ? ', and the other direction still works' : ', then both close (no half-close)'}`, async () => {
        await open();
        const toReader = readAll(reader);
        writer.write(text('ping'));
        writer.end();
        await toReader.done;
        expect(untext(toReader.chunks)).toBe('ping');
        expect(thrownCode(() => writer.write(text('x')))).toBe('GS_ERR_TRANSPORT_CLOSED');
        if (traits.halfClose) {
          const toWriter = readAll(writer);
          await sleep(10);
          expect(reader.closed).toBe(false);
          reader.write(text('pong'));
          reader.end();
          await toWriter.done;
          expect(untext(toWriter.chunks)).toBe('pong');
        } else {
          writer.resume();
        }
        await until(() => w.closes.length > 0 && r.closes.length > 0, 'close on both sides');
        expect(w.closes).toEqual([undefined]);
        expect(r.closes).toEqual([undefined]);
        expect(writer.closed && reader.closed).toBe(true);
        expect(thrownCode(() => reader.write(text('x')))).toBe('GS_ERR_TRANSPORT_CLOSED');
      });

      it('destroy() closes both sides', async () => {
        await open();
        readAll(reader);
        writer.resume();
        writer.write(text('some bytes'));
        await sleep(10);
        writer.destroy();
        expect(writer.closed).toBe(true);
        expect(w.closes).toEqual([undefined]);
        await until(() => r.closes.length > 0, 'the peer to close');
        expect(reader.closed).toBe(true);
      });

      it('destroy(error) closes with that error as a GatesockError', async () => {
        await open();
        reader.resume();
        writer.destroy(new Error('boom'));
        expect(w.closes).toHaveLength(1);
        expect(w.closes[0]).toBeInstanceOf(GatesockError);
        expect(w.closes[0]?.message).toContain('boom');
        await until(() => r.closes.length > 0, 'the peer to close');
      });

      it('emits close exactly once, whatever is called afterwards', async () => {
        await open();
        readAll(reader);
        writer.resume();
        writer.end();
        reader.end();
        await until(() => w.closes.length > 0 && r.closes.length > 0, 'close on both sides');
        writer.end();
        writer.destroy();
        reader.destroy(new Error('late'));
        reader.resume();
        await sleep(30);
        expect(w.closes).toHaveLength(1);
        expect(r.closes).toHaveLength(1);
        expect(w.ends).toBe(1);
        expect(r.ends).toBe(1);
      });

      it('throws GS_ERR_TRANSPORT_CLOSED on write after end or destroy', async () => {
        await open();
        writer.end();
        expect(thrownCode(() => writer.write(text('x')))).toBe('GS_ERR_TRANSPORT_CLOSED');
        expect(thrownCode(() => writer.write(new Uint8Array(0)))).toBe('GS_ERR_TRANSPORT_CLOSED');
        reader.destroy();
        expect(thrownCode(() => reader.write(text('x')))).toBe('GS_ERR_TRANSPORT_CLOSED');
      });
    });
  }
}
