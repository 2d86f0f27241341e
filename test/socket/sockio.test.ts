/**
 * SockIo behaviour over each transport (in-memory pair and loopback TCP):
 * round trips, recv limits, end of stream, timeouts, backpressure in both
 * directions, the non-blocking calls, disconnect and reset.
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, SocketError } from '../../src/errors/index.js';
import { SockEvent, SockIo, WOULD_BLOCK } from '../../src/socket/index.js';
import { memoryPair } from '../../src/transport/index.js';
import { concat, randomBytes, recvAll, sendAll, sha256, sleep, TRANSPORTS, type SockPair } from './pairs.js';
import { codeOf, rejectionCodeOf } from '../helpers/error-code.js';

/** Active Node timers right now. */
function timerCount(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

for (const [name, makePair] of TRANSPORTS) {
  describe(`SockIo over ${name}`, () => {
    let pair: SockPair | undefined;
    afterEach(async () => {
      await pair?.cleanup();
      pair = undefined;
    });

    it('carries 1 MiB each way in random piece sizes, SHA-256 equal on arrival', async () => {
      pair = await makePair();
      const { a, b } = pair;
      const ab = randomBytes(1 << 20, 11);
      const ba = randomBytes(1 << 20, 12);
      const [gotAtB, gotAtA] = await Promise.all([
        recvAll(b, 70_000, 3),
        recvAll(a, 5_000, 4),
        sendAll(a, ab, 50_000, 5).then(() => a.end()),
        sendAll(b, ba, 3_000, 6).then(() => b.end()),
      ]);
      expect(sha256(gotAtB)).toBe(sha256([ab]));
      expect(sha256(gotAtA)).toBe(sha256([ba]));
    });

    it('recv(max) returns at most max bytes, gathers across chunks, and keeps the rest in order', async () => {
      pair = await makePair();
      const { a, b } = pair;
      await a.send(Uint8Array.of(1, 2));
      await a.send(Uint8Array.of(3, 4, 5));
      await a.send(Uint8Array.of(6, 7, 8, 9, 10));
      while (b.recvBuffered < 10) await b.getEvent().wait(5000);
      expect(Array.from(await b.recv(3))).toEqual([1, 2, 3]);
      expect(Array.from(await b.recv(1))).toEqual([4]);
      expect(Array.from(await b.recv(100))).toEqual([5, 6, 7, 8, 9, 10]);
      expect(b.recvBuffered).toBe(0);
    });

    it('end of stream gives an empty result, every time, after the data; the other direction still works', async () => {
      pair = await makePair();
      const { a, b } = pair;
      await a.send(Uint8Array.of(42));
      a.end();
      expect(Array.from(await b.recv())).toEqual([42]);
      expect((await b.recv()).length).toBe(0);
      expect((await b.recv()).length).toBe(0);
      expect(b.recvAsync()).toEqual(new Uint8Array(0));
      expect(await rejectionCodeOf(a.send(Uint8Array.of(1)))).toBe('GS_ERR_NOT_CONNECTED');
      // Half-close: b can still send to a.
      await b.send(Uint8Array.of(7, 8));
      b.end();
      expect(concat(await recvAll(a))).toEqual(Uint8Array.of(7, 8));
    });

    it('recv rejects GS_ERR_TIMEOUT past setTimeout and stays usable; 0 turns the timeout off', async () => {
      pair = await makePair();
      const { a, b } = pair;
      a.setTimeout(50);
      const err = await a.recv().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SocketError);
      expect(err).toMatchObject({ code: 'GS_ERR_TIMEOUT' });
      expect(a.isConnected).toBe(true);
      a.setTimeout(0);
      const later = a.recv();
      await sleep(100); // longer than the old timeout
      await b.send(Uint8Array.of(9));
      expect(Array.from(await later)).toEqual([9]);
    });

    it('a reader that does not read: the SockIo pauses at its high-water mark, send waits, times out losing nothing, then resumes', async () => {
      const hwm = 64 * 1024;
      pair = await makePair({ sock: { recvHighWaterMark: hwm } });
      const { a, b } = pair;
      const data = cryptoRandomBytes(64 << 20);
      a.setTimeout(300);
      let off = 0;
      let timedOut: unknown;
      while (off < data.length) {
        try {
          const n = await a.send(data.subarray(off, off + 100_000));
          expect(n).toBeGreaterThan(0);
          off += n;
        } catch (e) {
          timedOut = e;
          break;
        }
      }
      expect(timedOut, `send never waited in ${data.length} bytes`).toMatchObject({ code: 'GS_ERR_TIMEOUT' });
      expect(off).toBeGreaterThan(0);
      // The receiving SockIo stopped reading once its buffer reached the mark.
      expect(b.recvBuffered).toBeGreaterThanOrEqual(hwm);
      expect(b.recvBuffered).toBeLessThanOrEqual(hwm + 128 * 1024);
      // sendAsync agrees that there is no room, and nothing is taken.
      expect(a.sendAsync(data.subarray(off, off + 10))).toBe(WOULD_BLOCK);
      // Now the peer reads; the rest goes through; nothing lost or duplicated.
      const sizeSent = Math.min(data.length, off + (4 << 20));
      const received = recvAll(b, 65536, 9);
      a.setTimeout(10_000);
      await sendAll(a, data.subarray(off, sizeSent), 100_000, 10);
      a.end();
      expect(sha256(await received)).toBe(sha256([data.subarray(0, sizeSent)]));
    });

    it('send waits for room rather than failing when no timeout is set', async () => {
      pair = await makePair({ sock: { recvHighWaterMark: 16 * 1024 } });
      const { a, b } = pair;
      const data = randomBytes(24 << 20, 21);
      let blocked = false;
      let finished = false;
      const sending = (async () => {
        for (let off = 0; off < data.length; ) {
          const r = a.sendAsync(data.subarray(off, off + 65536));
          if (r === WOULD_BLOCK) {
            blocked = true;
            off += await a.send(data.subarray(off, off + 65536));
          } else off += r;
        }
        a.end();
        finished = true;
      })();
      while (!blocked && !finished) await sleep(5);
      expect(blocked, 'sendAsync never returned WOULD_BLOCK').toBe(true);
      const got = await recvAll(b);
      await sending;
      expect(sha256(got)).toBe(sha256([data]));
    });

    it('recvAsync returns WOULD_BLOCK until data arrives, and the event announces it', async () => {
      pair = await makePair();
      const { a, b } = pair;
      expect(b.recvAsync()).toBe(WOULD_BLOCK);
      expect(b.getEvent().isSet).toBe(false);
      await a.send(Uint8Array.of(1, 2, 3));
      expect(await b.getEvent().wait(5000)).toBe(true);
      expect(Array.from(b.recvAsync(2) as Uint8Array)).toEqual([1, 2]);
      expect(Array.from(b.recvAsync(2) as Uint8Array)).toEqual([3]);
      expect(b.recvAsync()).toBe(WOULD_BLOCK);
      a.end();
      expect(await b.getEvent().wait(5000)).toBe(true);
      expect(b.recvAsync()).toEqual(new Uint8Array(0));
    });

    it('replaceEvent: the new event is set at once and gets later signals; the old one gets none', async () => {
      pair = await makePair();
      const { a, b } = pair;
      const old = b.getEvent();
      const shared = new SockEvent();
      b.replaceEvent(shared);
      expect(b.getEvent()).toBe(shared);
      expect(await shared.wait(0)).toBe(true); // set once on replacement
      await a.send(Uint8Array.of(1));
      expect(await shared.wait(5000)).toBe(true);
      expect(old.isSet).toBe(false);
      expect(Array.from(b.recvAsync() as Uint8Array)).toEqual([1]);
    });

    it('sendAsync returns WOULD_BLOCK under backpressure; the event is set when room returns', async () => {
      pair = await makePair({ sock: { recvHighWaterMark: 32 * 1024 } });
      const { a, b } = pair;
      const piece = randomBytes(65536, 31);
      const sent: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        const r = a.sendAsync(piece);
        if (r === WOULD_BLOCK) break;
        expect(r).toBeGreaterThan(0);
        sent.push(piece.subarray(0, r));
        total += r;
        expect(total, 'sendAsync never returned WOULD_BLOCK').toBeLessThan(256 << 20);
        if (total % (1 << 20) < 65536) await sleep(0); // let the transport move bytes
      }
      a.getEvent().reset();
      const reading = recvAll(b);
      expect(await a.getEvent().wait(10_000)).toBe(true);
      const r = a.sendAsync(piece);
      expect(r).not.toBe(WOULD_BLOCK);
      sent.push(piece.subarray(0, r as number));
      a.end();
      expect(sha256(await reading)).toBe(sha256(sent));
    });

    it('disconnect: our calls fail with GS_ERR_NOT_CONNECTED, waiting calls too; the peer gets the data then end of stream', async () => {
      pair = await makePair();
      const { a, b } = pair;
      const waiting = a.recv();
      await a.send(Uint8Array.of(5, 6));
      const closed = a.disconnect();
      expect(await rejectionCodeOf(waiting)).toBe('GS_ERR_NOT_CONNECTED');
      expect(a.isConnected).toBe(false);
      expect(await rejectionCodeOf(a.send(Uint8Array.of(1)))).toBe('GS_ERR_NOT_CONNECTED');
      expect(await rejectionCodeOf(a.recv())).toBe('GS_ERR_NOT_CONNECTED');
      expect(codeOf(() => a.sendAsync(Uint8Array.of(1)))).toBe('GS_ERR_NOT_CONNECTED');
      expect(codeOf(() => a.recvAsync())).toBe('GS_ERR_NOT_CONNECTED');
      expect(concat(await recvAll(b))).toEqual(Uint8Array.of(5, 6));
      expect(b.isConnected).toBe(true); // half-closed by the peer, not closed
      // Whatever b still sends is discarded; b's disconnect finishes both sides.
      await b.send(Uint8Array.of(1, 2, 3));
      await b.disconnect();
      await closed;
      expect(pair.streams[0].closed).toBe(true);
      expect(a.disconnect()).toBeInstanceOf(Promise); // again: harmless
    });

    it('a peer that never finishes its side is destroyed after lingerMs', async () => {
      pair = await makePair({ sock: { lingerMs: 100 } });
      const { a, b } = pair;
      await a.disconnect(); // b never ends: the linger timer closes a's stream
      expect(pair.streams[0].closed).toBe(true);
      expect((await b.recv()).length).toBe(0);
    });

    it('no linger timer is left behind when the stream closes inside disconnect() (the peer had ended)', async () => {
      // Only setTimeout is faked, so the count sees unref'd timers too; the memory transport does not use it.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        for (let i = 0; i < 20; i++) {
          const [x, y] = memoryPair();
          const near = SockIo.fromStream(x, {}, { lingerMs: 600_000 });
          const far = SockIo.fromStream(y, {}, { lingerMs: 600_000 });
          near.end();
          expect((await far.recv()).length).toBe(0); // far sees the end…
          await far.disconnect(); // …so its own end closes the stream at once: nothing to linger for
          await near.disconnect();
        }
        // A leaked 10-minute timer per connection would keep each SockIo and its streams alive that long.
        expect(vi.getTimerCount()).toBe(0);
      } finally {
        vi.useRealTimers();
      }
    });

    it('a reset connection: buffered bytes are still read, then GS_ERR_NOT_CONNECTED', async () => {
      pair = await makePair();
      const { a, b } = pair;
      await a.send(Uint8Array.of(1, 2, 3));
      while (b.recvBuffered < 3) await b.getEvent().wait(5000);
      pair.streams[0].destroy();
      while (b.isConnected) await b.getEvent().wait(5000);
      expect(Array.from(await b.recv())).toEqual([1, 2, 3]);
      const err = await b.recv().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'GS_ERR_NOT_CONNECTED' });
      expect(await rejectionCodeOf(b.send(Uint8Array.of(1)))).toBe('GS_ERR_NOT_CONNECTED');
    });

    it('leaves no timers or listeners behind after many calls', async () => {
      pair = await makePair();
      const { a, b } = pair;
      const listeners = () => ['data', 'end', 'drain', 'close'].map((e) => pair!.streams[1].listenerCount(e as 'data'));
      const before = listeners();
      const timers = timerCount();
      b.setTimeout(60_000);
      for (let i = 0; i < 300; i++) {
        const got = b.recv();
        await a.send(Uint8Array.of(i & 255));
        expect(Array.from(await got)).toEqual([i & 255]);
      }
      b.setTimeout(1);
      for (let i = 0; i < 20; i++) expect(await rejectionCodeOf(b.recv())).toBe('GS_ERR_TIMEOUT');
      expect(timerCount()).toBeLessThanOrEqual(timers);
      expect(listeners()).toEqual(before);
    });
  });
}

describe('SockIo construction and arguments', () => {
  it('info is a frozen copy that names the transport', async () => {
    const { memoryPair } = await import('../../src/transport/index.js');
    const [x, y] = memoryPair();
    const given = { connectionId: 7, peerMsid: 'MSID-ab' };
    const s = SockIo.fromStream(x, given);
    given.connectionId = 8;
    expect(s.info).toMatchObject({ connectionId: 7, peerMsid: 'MSID-ab', transport: { kind: 'memory' } });
    expect(Object.isFrozen(s.info)).toBe(true);
    x.destroy();
    y.destroy();
  });

  it('refuses bad options and arguments by name', async () => {
    const { memoryPair } = await import('../../src/transport/index.js');
    const [x, y] = memoryPair();
    expect(() => SockIo.fromStream(x, {}, { recvHighWaterMark: 0 })).toThrow(/recvHighWaterMark/);
    expect(() => SockIo.fromStream(x, {}, { lingerMs: -1 })).toThrow(ConfigError);
    expect(() => SockIo.fromStream(null as never)).toThrow(/stream/);
    const s = SockIo.fromStream(x);
    expect(() => s.setTimeout(-1)).toThrow(ConfigError);
    expect(() => s.setTimeout(1.5)).toThrow(/ms/);
    await expect(s.recv(0)).rejects.toThrow(/max/);
    await expect(s.send('text' as never)).rejects.toThrow(ConfigError);
    expect(() => s.recvAsync(-1)).toThrow(ConfigError);
    expect(() => s.replaceEvent({} as never)).toThrow(/event/);
    expect(await s.send(new Uint8Array(0))).toBe(0);
    x.destroy();
    y.destroy();
  });

  it('a stream that is already closed gives a SockIo that is not connected', async () => {
    const { memoryPair } = await import('../../src/transport/index.js');
    const [x, y] = memoryPair();
    y.destroy();
    const s = SockIo.fromStream(x);
    expect(s.isConnected).toBe(false);
    expect(await rejectionCodeOf(s.recv())).toBe('GS_ERR_NOT_CONNECTED');
  });
});
