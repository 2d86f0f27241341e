/**
 * The benchmark harness (bench/harness.ts) and the plain-TCP baselines
 * (bench/baselines.ts): the arithmetic behind each printed figure, and the
 * checks that keep a wrong path from printing a figure at all.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BenchCheckError,
  checkPath,
  pingPong,
  pushThrough,
  startPlainRelay,
  startTcpEcho,
  startTcpSink,
  type LoopbackServer,
} from '../bench/baselines.js';
import { defineFigures, evaluate, formatLine, median, sideBySide, type Figure } from '../bench/harness.js';

const figure = (target: Figure['target'], unit = 'MB/s'): Figure => ({
  name: 'f',
  unit,
  target,
  run: async () => ({ ours: 1, baseline: 1, baselineName: 'b' }),
});

describe('harness', () => {
  it('computes ratio = ours / baseline and checks ratio and absolute targets', () => {
    const r = evaluate(figure({ better: 'higher', ratio: 0.5 }), { ours: 400, baseline: 1000, baselineName: 'raw' });
    expect(r).toMatchObject({ ours: 400, baseline: 'raw', baselineValue: 1000, ratio: 0.4, met: false });
    expect(evaluate(figure({ better: 'higher', ours: 2000 }), { ours: 2500, baseline: 9000, baselineName: 'x' }).met).toBe(true);
    // Both bounds must hold.
    expect(evaluate(figure({ better: 'higher', ours: 2000, ratio: 0.5 }), { ours: 2500, baseline: 9000, baselineName: 'x' }).met).toBe(false);
    expect(evaluate(figure({ better: 'lower', ratio: 2 }, 'µs'), { ours: 30, baseline: 16, baselineName: 'x' }).met).toBe(true);
    expect(() => evaluate(figure({ better: 'higher', ratio: 1 }), { ours: NaN, baseline: 1, baselineName: 'x' })).toThrow(RangeError);
  });

  it('prints the one-line format', () => {
    const line = formatLine(
      evaluate(figure({ better: 'higher', ratio: 0.3, ours: 100 }), { ours: 515.2, baseline: 1205, baselineName: 'raw-loopback-tcp' }),
    );
    expect(line).toBe('f: 515 MB/s | raw-loopback-tcp: 1205 MB/s | ratio 0.43 | target ratio ≥ 0.30 and ≥ 100 MB/s | met');
    expect(formatLine(evaluate(figure({ better: 'lower', ratio: 1.5 }, 'µs'), { ours: 38, baseline: 19.3, baselineName: 'raw' }))).toBe(
      'f: 38.0 µs | raw: 19.3 µs | ratio 1.97 | target ratio ≤ 1.50 | NOT met',
    );
  });

  it('rejects malformed figure lists', () => {
    expect(() => defineFigures([figure({ better: 'higher', ratio: 1 }), figure({ better: 'higher', ratio: 1 })])).toThrow(/duplicate/);
    expect(() => defineFigures([figure({ better: 'higher' } as never)])).toThrow(/ratio, ours or both/);
    expect(() => defineFigures([figure({ better: 'up', ratio: 1 } as never)])).toThrow(/better/);
    expect(() => defineFigures([{ ...figure({ better: 'higher', ratio: 1 }), name: '' }])).toThrow(/name/);
  });

  it('takes medians and alternates the order of ours and the baseline', async () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    const order: string[] = [];
    const m = await sideBySide(
      3,
      async () => (order.push('o'), order.length),
      async () => (order.push('b'), 10),
    );
    expect(order.join('')).toBe('obboob');
    expect(m).toEqual({ ours: 4, baseline: 10 });
  });
});

describe('baselines', () => {
  const servers: LoopbackServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  /** A relay that flips one byte at `offset` of the stream, to prove the checks catch it. */
  async function corruptingRelay(target: number, offset: number): Promise<LoopbackServer> {
    const server = net.createServer((c) => {
      const up = net.connect(target, '127.0.0.1');
      let seen = 0;
      c.on('data', (chunk: Buffer) => {
        if (offset >= seen && offset < seen + chunk.length) chunk[offset - seen]! ^= 1;
        seen += chunk.length;
        up.write(chunk);
      });
      c.on('end', () => up.end());
      up.on('data', (d) => c.write(d));
      up.on('end', () => c.end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
  }

  it('pushes bytes directly and through the plain relay, checked', async () => {
    const sink = await startTcpSink();
    const relay = await startPlainRelay(sink.port);
    servers.push(relay, sink);
    const direct = await checkPath(sink.port, sink, 3 << 20);
    expect(await checkPath(relay.port, sink, 3 << 20)).toBe(direct);
    const t = await pushThrough(relay.port, sink, 5_000_001, { chunk: 7_777 });
    expect(t.bytes).toBe(5_000_001);
    expect(t.mbPerSecond).toBeGreaterThan(0);
  });

  it('refuses a path that changes one byte', async () => {
    const sink = await startTcpSink();
    const bad = await corruptingRelay(sink.port, 1_234_567);
    servers.push(bad, sink);
    await expect(checkPath(bad.port, sink, 2 << 20)).rejects.toThrow(BenchCheckError);
    await expect(pushThrough(bad.port, sink, 2 << 20)).rejects.toThrow(/offset 1234567/);
  });

  it('ping-pongs 8-byte messages directly and through the relay', async () => {
    const echo = await startTcpEcho();
    const relay = await startPlainRelay(echo.port);
    servers.push(relay, echo);
    const direct = await pingPong(echo.port, 50, { warmup: 5 });
    const relayed = await pingPong(relay.port, 50, { warmup: 5 });
    expect(direct.samples).toHaveLength(50);
    expect(relayed.medianMicros).toBeGreaterThan(0);
  });
});
