/**
 * The stream styles over SockIo, on each transport: Node Duplex with
 * `stream/promises` pipeline, WHATWG streams, async iteration; each carries
 * data intact and honours backpressure.
 */
import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WritableStream } from 'node:stream/web';
import { afterEach, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/transport/random.js';
import { randomBytes, recvAll, sendAll, sha256, sleep, TRANSPORTS, type SockPair } from './pairs.js';

/** `data` cut into pieces of random size up to `max`. */
function pieces(data: Uint8Array, max: number, seed: number): Uint8Array[] {
  const rng = new SeededRandom(seed);
  const out: Uint8Array[] = [];
  for (let off = 0; off < data.length; ) {
    const n = 1 + (rng.next() % max);
    out.push(data.subarray(off, off + n));
    off += n;
  }
  return out;
}

/** A Node Writable that keeps what it is given. */
function collector(): { sink: Writable; chunks: Uint8Array[] } {
  const chunks: Uint8Array[] = [];
  const sink = new Writable({
    write(chunk: Uint8Array, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return { sink, chunks };
}

for (const [name, makePair] of TRANSPORTS) {
  describe(`SockIo stream adapters over ${name}`, () => {
    let pair: SockPair | undefined;
    afterEach(async () => {
      await pair?.cleanup();
      pair = undefined;
    });

    it('Duplex: pipeline into one end and out of the other, SHA-256 equal; the duplex is one object', async () => {
      pair = await makePair();
      const { a, b } = pair;
      expect(a.toDuplex()).toBe(a.toDuplex());
      const data = randomBytes(1 << 20, 41);
      const { sink, chunks } = collector();
      await Promise.all([pipeline(Readable.from(pieces(data, 40_000, 1)), a.toDuplex()), pipeline(b.toDuplex(), sink)]);
      expect(sha256(chunks)).toBe(sha256([data]));
    });

    it('Duplex: an echo server written as pipeline(duplex, duplex)', async () => {
      pair = await makePair();
      const { a, b } = pair;
      const echo = pipeline(b.toDuplex(), b.toDuplex());
      const data = randomBytes(512 * 1024, 42);
      const [got] = await Promise.all([recvAll(a), sendAll(a, data, 30_000).then(() => a.end()), echo]);
      expect(sha256(got)).toBe(sha256([data]));
    });

    it('Duplex: writes see backpressure when the peer does not read, and nothing is lost once it does', async () => {
      pair = await makePair({ sock: { recvHighWaterMark: 32 * 1024 } });
      const { a, b } = pair;
      const d = a.toDuplex();
      const data = randomBytes(64 << 20, 43);
      let off = 0;
      let stalled = false;
      while (off < data.length && !stalled) {
        const more = d.write(data.subarray(off, off + 65536));
        off += 65536;
        if (!more) stalled = !(await Promise.race([once(d, 'drain').then(() => true), sleep(300).then(() => false)]));
      }
      expect(stalled, 'the Duplex never stalled').toBe(true);
      expect(d.writableNeedDrain).toBe(true);
      const reading = recvAll(b);
      const sent = Math.min(off, data.length);
      d.end();
      expect(sha256(await reading)).toBe(sha256([data.subarray(0, sent)]));
    });

    it('Duplex: the readable side ends at end of stream; destroy disconnects', async () => {
      pair = await makePair();
      const { a, b } = pair;
      await a.send(Uint8Array.of(1, 2, 3));
      a.end();
      const got: Uint8Array[] = [];
      for await (const c of b.toDuplex()) got.push(c as Uint8Array);
      expect(Buffer.concat(got)).toEqual(Buffer.from([1, 2, 3]));
      // Leaving the loop destroyed the Duplex, which disconnects b.
      await sleep(10);
      expect(b.isConnected).toBe(false);
    });

    it('WHATWG: writable to readable, SHA-256 equal; the readable only reads on demand', async () => {
      pair = await makePair();
      const { a, b } = pair;
      expect(b.readable).toBe(b.readable);
      const readable = b.readable;
      await a.send(new Uint8Array(100));
      await sleep(30);
      expect(b.recvBuffered).toBe(100); // nobody asked, so nothing was pulled
      const data = randomBytes(1 << 20, 44);
      const got: Uint8Array[] = [];
      const collecting = readable.pipeTo(
        new WritableStream<Uint8Array>({
          write(c) {
            got.push(c.slice());
          },
        }),
      );
      const writer = a.writable.getWriter();
      for (const p of pieces(data, 50_000, 2)) {
        await writer.ready;
        await writer.write(p);
      }
      await writer.close();
      await collecting;
      expect(sha256(got)).toBe(sha256([new Uint8Array(100), data]));
    });

    it('WHATWG: a write settles only once the socket took it all, so a reader that stops stalls the writer', async () => {
      pair = await makePair({ sock: { recvHighWaterMark: 32 * 1024 } });
      const { a, b } = pair;
      const writer = a.writable.getWriter();
      const data = randomBytes(64 << 20, 45);
      let off = 0;
      let stalled = false;
      while (off < data.length) {
        const w = writer.write(data.subarray(off, off + (1 << 20)));
        const done = await Promise.race([w.then(() => true), sleep(300).then(() => false)]);
        off += 1 << 20;
        if (!done) {
          stalled = true;
          break;
        }
      }
      expect(stalled, 'writes never waited').toBe(true);
      const reading = recvAll(b);
      await writer.close();
      expect(sha256(await reading)).toBe(sha256([data.subarray(0, Math.min(off, data.length))]));
    });

    it('WHATWG: cancelling the readable disconnects, and the peer sees end of stream', async () => {
      pair = await makePair();
      const { a, b } = pair;
      await b.readable.cancel();
      expect(b.isConnected).toBe(false);
      expect((await a.recv()).length).toBe(0);
    });

    it('async iteration yields every chunk until end; break leaves the socket connected', async () => {
      pair = await makePair();
      const { a, b } = pair;
      const data = randomBytes(1 << 20, 46);
      const sending = sendAll(a, data, 20_000).then(() => a.end());
      const got: Uint8Array[] = [];
      for await (const c of b) {
        got.push(c.slice());
        if (got.length === 3) break;
      }
      expect(b.isConnected).toBe(true);
      for await (const c of b) got.push(c.slice());
      await sending;
      expect(sha256(got)).toBe(sha256([data]));
    });
  });
}
