/**
 * The sender's rules, on small simulated networks: expected hosts that never
 * answer are reported and not waited for, a silent host is dropped after its
 * timeout, a host past maxRequests is dropped, the rate limit always holds,
 * and heavy loss lowers the rate. Plus the arithmetic of rounds.ts and the
 * pacer on a virtual clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runSimUpdate, tempDirs } from '../../bench/multicast-sim-run.js';
import { Pacer } from '../../src/delivery/update/pacer.js';
import { nextRate, proactiveRepair, requestLoss, roundRepair } from '../../src/delivery/update/rounds.js';
import { VirtualClock, independentLoss } from '../../src/transport/index.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());
const tmp = (): string => dirs.make();

describe('UpdateSender', () => {
  it('reports an expected host that never answers, and does not wait for it', () => {
    const r = runSimUpdate({
      receivers: 3,
      loss: 0,
      fileSize: 50_000,
      seed: 1,
      dir: tmp(),
      sender: { expectedHosts: ['r0', 'r1', 'r2', 'ghost'], joinWindowMs: 1_000 },
    });
    expect(r.correct).toBe(3);
    const ghost = r.report.receivers.find((o) => o.host === 'ghost');
    expect(ghost).toMatchObject({ joined: false, completed: false });
    expect(ghost?.dropped).toMatch(/never answered/);
    expect(r.report.receivers.filter((o) => o.completed)).toHaveLength(3);
    expect(r.virtualMs).toBeLessThan(5_000);
  });

  it('ends the join as soon as every expected host answered', () => {
    const r = runSimUpdate({ receivers: 3, loss: 0, fileSize: 50_000, seed: 2, dir: tmp(), sender: { expectedHosts: ['r0', 'r1', 'r2'], joinWindowMs: 60_000 } });
    expect(r.correct).toBe(3);
    expect(r.virtualMs).toBeLessThan(2_000);
  });

  it('drops a host that goes silent, with the reason, and finishes', () => {
    const r = runSimUpdate({
      receivers: 4,
      loss: 0.05,
      fileSize: 400_000,
      seed: 3,
      dir: tmp(),
      sender: { silentTimeoutMs: 3_000 },
      setup(ctx) {
        // r1 dies for good in the middle of round 1.
        ctx.net.clock.setTimer(() => ctx.receivers[1]!.close(), 215);
      },
    });
    const r1 = r.report.receivers.find((o) => o.host === 'r1');
    expect(r1?.completed).toBe(false);
    expect(r1?.dropped).toMatch(/silent/);
    expect(r.correct).toBe(3);
    expect(r.report.receivers.filter((o) => o.completed)).toHaveLength(3);
  });

  it('drops a host that sends more requests than maxRequests', () => {
    const r = runSimUpdate({
      receivers: 5,
      loss: 0.02,
      fileSize: 200_000,
      seed: 4,
      dir: tmp(),
      sender: { maxRequests: 2 },
      setup(ctx) {
        // r0's link loses most of what it carries once the transfer runs: it keeps asking.
        ctx.net.clock.setTimer(() => ctx.receiverHosts[0]!.configure({ downlink: { delayMs: 5, loss: independentLoss(0.9) } }), 205);
      },
    });
    expect(r.report.receivers.find((o) => o.host === 'r0')?.dropped).toMatch(/too many requests/);
    for (const o of r.report.receivers) expect(o.completed || o.dropped !== undefined).toBe(true);
  });

  it('keeps to the rate limit, and lowers it when requests show heavy loss', () => {
    const rateBps = 5_000_000;
    const r = runSimUpdate({ receivers: 5, loss: 0.4, fileSize: 300_000, seed: 6, dir: tmp(), sender: { rateBps, heavyLossThreshold: 0.25 } });
    // At 40 % loss each way a host may miss every announcement; every host that joined completes.
    const joined = r.report.receivers.filter((o) => o.joined);
    expect(joined.length).toBeGreaterThan(0);
    for (const o of joined) expect(o.completed, o.host).toBe(true);
    expect(r.correct).toBeGreaterThanOrEqual(joined.length);
    // The bytes could not have left faster than the limit allows.
    expect(r.report.durationMs).toBeGreaterThanOrEqual(((r.report.bytesSent - 16 * 1500) * 8) / rateBps * 1000);
    expect(r.report.rateBps).toBeLessThan(rateBps);
    const clean = runSimUpdate({ receivers: 5, loss: 0.01, fileSize: 300_000, seed: 6, dir: tmp(), sender: { rateBps } });
    expect(clean.report.rateBps).toBe(rateBps);
  });

  it('counts every datagram it sends in bytesSent, by kind', () => {
    const r = runSimUpdate({ receivers: 10, loss: 0.05, fileSize: 200_000, seed: 8, dir: tmp() });
    const k = r.report.bytesByKind;
    expect(k.announce + k.manifest + k.data + k.repair + k.round + k.ack).toBe(r.report.bytesSent);
    expect(r.ctx.senderHost.counters.sentBytes).toBe(r.report.bytesSent);
    expect(k.repair).toBeGreaterThan(0);
  });
});

describe('rounds arithmetic', () => {
  it('proactive repair is the mean loss, bounded by the pool', () => {
    expect(proactiveRepair(192, 0, 64)).toBe(0);
    expect(proactiveRepair(192, 0.05, 64)).toBe(11);
    expect(proactiveRepair(192, 0.6, 64)).toBe(64);
  });
  it('a repair round sends more than the need when there is loss, exactly it without', () => {
    expect(roundRepair(0, 0.05)).toBe(0);
    expect(roundRepair(10, 0)).toBe(10);
    expect(roundRepair(10, 0.05)).toBeGreaterThan(10);
    expect(roundRepair(10, 0.05)).toBeLessThan(16);
  });
  it('request loss and the back-off rule', () => {
    expect(requestLoss(100, 110, 5)).toBeCloseTo(15 / 110);
    expect(nextRate(100, 0.3, 0.25, 100, 10)).toBe(50);
    expect(nextRate(12, 0.3, 0.25, 100, 10)).toBe(10);
    expect(nextRate(50, 0.2, 0.25, 100, 10)).toBe(50);
    expect(nextRate(50, 0.05, 0.25, 100, 10)).toBe(62.5);
    expect(nextRate(90, 0, 0.25, 100, 10)).toBe(100);
  });
});

describe('Pacer', () => {
  it('sends at the rate on a virtual clock, in order, and counts bytes', () => {
    const clock = new VirtualClock();
    const pacer = new Pacer(clock, 8_000_000, 3_000); // 1 byte per µs, a 3,000-byte bucket
    const sentAt: number[] = [];
    for (let i = 0; i < 10; i++) pacer.push(new Uint8Array(1_000), () => sentAt.push(clock.now()));
    let drained = -1;
    pacer.whenDrained(() => (drained = clock.now()));
    clock.run();
    expect(sentAt).toHaveLength(10);
    expect(sentAt.slice(0, 3)).toEqual([0, 0, 0]); // the burst
    expect(sentAt[9]).toBeCloseTo(7, 5); // then 1 ms per 1,000 bytes
    expect(drained).toBeCloseTo(7, 5);
    expect(pacer.bytes).toBe(10_000);
    pacer.close();
    pacer.push(new Uint8Array(1), () => sentAt.push(-1));
    clock.run();
    expect(sentAt).toHaveLength(10);
  });
});
