/**
 * Shaping of the in-memory pair: latency, bandwidth, jitter without
 * reordering, backpressure across a shaped link, and a schedule fixed by the
 * seed (checked exactly under fake timers, and on the sans-I/O shaper).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/errors/index.js';
import { memoryPair, type ByteStream, type MemoryPairOptions } from '../../src/transport/index.js';
import { SeededRandom } from '../../src/transport/random.js';
import { LinkShaper } from '../../src/transport/shaper.js';
import { next, sleep, until } from './conformance.js';

/** Receive everything on `b` (resumed), stamping each chunk with performance.now(). */
function stamp(b: ByteStream): { at: number[]; bytes: number[]; total: () => number } {
  const at: number[] = [];
  const bytes: number[] = [];
  b.on('data', (c) => {
    at.push(performance.now());
    bytes.push(c.length);
  });
  b.resume();
  return { at, bytes, total: () => bytes.reduce((s, n) => s + n, 0) };
}

describe('memoryPair shaping', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('adds the configured latency', async () => {
    const [a, b] = memoryPair({ latencyMs: 40 });
    const got = stamp(b);
    const sent = performance.now();
    a.write(new Uint8Array(100));
    await until(() => got.total() === 100, 'delivery');
    expect(got.at[0]! - sent).toBeGreaterThanOrEqual(40);
    a.destroy();
  });

  it('bounds throughput by bandwidthBps', async () => {
    const bandwidthBps = 8_000_000; // 1 MB/s
    const size = 128 * 1024;
    const [a, b] = memoryPair({ bandwidthBps });
    const got = stamp(b);
    const sent = performance.now();
    a.write(new Uint8Array(size));
    await until(() => got.total() === size, 'delivery');
    const elapsedMs = got.at.at(-1)! - sent;
    const floorMs = (size * 8 * 1000) / bandwidthBps; // 131 ms
    expect(elapsedMs).toBeGreaterThanOrEqual(floorMs);
    expect(elapsedMs).toBeLessThan(floorMs + 1_000);
    // Bytes arrive progressively (segments), not all at the end.
    expect(got.bytes.length).toBeGreaterThan(1);
    a.destroy();
  });

  it('never reorders bytes, however large the jitter', async () => {
    const [a, b] = memoryPair({ latencyMs: 1, jitterMs: 25, seed: 3 });
    const received: number[] = [];
    b.on('data', (c) => received.push(...c));
    b.resume();
    for (let i = 0; i < 200; i++) a.write(Uint8Array.of(i));
    await until(() => received.length === 200, 'all 200 writes');
    expect(received).toEqual(Array.from({ length: 200 }, (_, i) => i));
    a.destroy();
  });

  it('counts bytes in flight against the high-water mark, and drains on arrival', async () => {
    const [a, b] = memoryPair({ latencyMs: 20, highWaterMark: 64 * 1024 });
    b.resume();
    const sent = performance.now();
    expect(a.write(new Uint8Array(64 * 1024))).toBe(false);
    await next(a, 'drain');
    expect(performance.now() - sent).toBeGreaterThanOrEqual(20);
    a.destroy();
  });

  it('end() arrives after the bytes ahead of it, and both sides close', async () => {
    const [a, b] = memoryPair({ latencyMs: 5, jitterMs: 5, seed: 9 });
    const got = stamp(b);
    let ended = false;
    b.on('end', () => (ended = true));
    a.resume();
    a.write(new Uint8Array(1000));
    a.end();
    await until(() => ended, 'end');
    expect(got.total()).toBe(1000);
    b.end();
    await until(() => a.closed && b.closed, 'both closed');
  });

  it('same seed gives the same arrival schedule; another seed does not', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const schedule = async (options: MemoryPairOptions): Promise<number[]> => {
      const [a, b] = memoryPair(options);
      const got = stamp(b);
      const start = performance.now();
      for (let i = 0; i < 20; i++) {
        a.write(new Uint8Array(3000 + i * 100));
        await vi.advanceTimersByTimeAsync(1);
      }
      await vi.advanceTimersByTimeAsync(1_000);
      a.destroy();
      return got.at.map((t) => t - start);
    };
    const shape = { latencyMs: 10, jitterMs: 30, bandwidthBps: 20e6 };
    const first = await schedule({ ...shape, seed: 1234 });
    const again = await schedule({ ...shape, seed: 1234 });
    const other = await schedule({ ...shape, seed: 4321 });
    expect(first).toHaveLength(20);
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);
  });

  it('rejects bad options by name', () => {
    const bad: MemoryPairOptions[] = [{ latencyMs: -1 }, { jitterMs: Number.NaN }, { bandwidthBps: -5 }, { seed: 1.5 }, { highWaterMark: 0 }];
    for (const options of bad) {
      const name = Object.keys(options)[0]!;
      expect(() => memoryPair(options)).toThrow(ConfigError);
      expect(() => memoryPair(options)).toThrow(name);
    }
  });

  it('destroy() resets the peer with GS_ERR_TRANSPORT_CLOSED and cancels what is in flight', async () => {
    const [a, b] = memoryPair({ latencyMs: 20 });
    const got = stamp(b);
    const closed = next<[Error | undefined]>(b, 'close');
    a.write(new Uint8Array(10));
    a.destroy();
    const [err] = await closed;
    expect(err).toMatchObject({ code: 'GS_ERR_TRANSPORT_CLOSED' });
    await sleep(40);
    expect(got.total()).toBe(0);
  });
});

describe('LinkShaper (sans-I/O schedule)', () => {
  it('serialises at the link rate, then adds latency', () => {
    const shaper = new LinkShaper({ latencyMs: 10, jitterMs: 0, bandwidthBps: 8000 }, new SeededRandom(1));
    expect(shaper.arrivalTime(1000, 0)).toBe(1010); // 8000 bits at 8000 bit/s = 1 s
    expect(shaper.arrivalTime(1000, 0)).toBe(2010); // queued behind the first
    expect(shaper.arrivalTime(0, 5000)).toBe(5010); // an idle link starts fresh
  });

  it('is a pure function of its inputs and seed, and never goes backwards', () => {
    const run = (seed: number): number[] => {
      const shaper = new LinkShaper({ latencyMs: 5, jitterMs: 50, bandwidthBps: 1e6 }, new SeededRandom(seed));
      return Array.from({ length: 100 }, (_, i) => shaper.arrivalTime(100 + (i % 7) * 50, i * 0.5));
    };
    const a = run(77);
    expect(run(77)).toEqual(a);
    expect(run(78)).not.toEqual(a);
    for (let i = 1; i < a.length; i++) expect(a[i]!).toBeGreaterThanOrEqual(a[i - 1]!);
  });
});
