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
import { FEW_RECEIVERS_LEFT, ROUND_SHORTFALL, nextRate, proactiveRepair, requestLoss, roundRepair } from '../../src/delivery/update/rounds.js';

const ROUND_SHORTFALL_OK = 1 - ROUND_SHORTFALL;
import { VirtualClock, independentLoss, type Clock } from '../../src/transport/index.js';

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
      // No burst allowance: round 1 paced from its first datagram, so it is still running at 205 ms.
      sender: { maxRequests: 2, burstMs: 0 },
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

  it('on a port of its own it hears no datagram of its own, and takes the requests by unicast', () => {
    const own = runSimUpdate({ receivers: 12, loss: 0.05, fileSize: 400_000, seed: 11, dir: tmp(), senderPort: 0 });
    expect(own.correct).toBe(12);
    expect(own.report.echoes).toBe(0);
    // Requests reached it: it counted them per host, and repaired.
    expect(own.report.receivers.reduce((n, r) => n + r.requests, 0)).toBeGreaterThan(0);
    expect(own.report.rounds).toBeGreaterThan(1);
    // On the receivers' port it joins the data group, and multicast loopback hands it back what it sends.
    const shared = runSimUpdate({ receivers: 12, loss: 0.05, fileSize: 400_000, seed: 11, dir: tmp() });
    expect(shared.correct).toBe(12);
    expect(shared.report.echoes).toBeGreaterThanOrEqual(Math.ceil(400_000 / 1_400));
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
  it('with few receivers left, a repair round is the fewest symbols that leave the largest need short at most 1 % of the time', () => {
    // P[at least `need` of `n` arrive], each lost with probability q: the binomial sum, term by term.
    const arrive = (n: number, need: number, q: number): number => {
      let sum = 0;
      for (let got = need; got <= n; got++) {
        let c = 1;
        for (let i = 0; i < got; i++) c = (c * (n - i)) / (i + 1);
        sum += c * (1 - q) ** got * q ** (n - got);
      }
      return sum;
    };
    for (const q of [0.01, 0.05, 0.2]) {
      for (const need of [1, 2, 5, 10, 30, 60]) {
        const n = roundRepair(need, q, 16);
        expect(arrive(n, need, q)).toBeGreaterThanOrEqual(ROUND_SHORTFALL_OK);
        expect(n === need || arrive(n - 1, need, q) < ROUND_SHORTFALL_OK).toBe(true);
      }
    }
    expect(roundRepair(5, 0.05, 16)).toBe(7); // one standard deviation would send 6: short 3.3 % of the time
  });
  it('with many receivers left, a repair round is the mean plus one standard deviation', () => {
    expect(roundRepair(5, 0.05, FEW_RECEIVERS_LEFT + 1)).toBe(Math.ceil(5 / 0.95 + Math.sqrt((5 / 0.95) * 0.05)));
    expect(roundRepair(30, 0.05, 1000)).toBe(33);
    expect(roundRepair(30, 0.05, 1000)).toBeLessThan(roundRepair(30, 0.05, FEW_RECEIVERS_LEFT));
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

  /** The clock's view with timers that fire `lateMs` late (a busy machine); `jitter` varies it by timer. */
  const lateClock = (clock: VirtualClock, lateMs: number, jitter = 0): Clock => {
    let n = 0;
    return {
      now: () => clock.now(),
      setTimer: (fn, ms) => clock.setTimer(fn, ms + lateMs + (jitter * ((n++ * 37) % 11)) / 10),
      clearTimer: (h) => clock.clearTimer(h),
    };
  };

  /** Max bytes sent in any window of `w` ms, from (time, bytes) sends. */
  const maxInWindow = (sends: Array<[number, number]>, w: number): number => {
    let best = 0;
    let sum = 0;
    let lo = 0;
    for (let hi = 0; hi < sends.length; hi++) {
      sum += sends[hi]![1];
      while (sends[hi]![0] - sends[lo]![0] > w) sum -= sends[lo++]![1];
      best = Math.max(best, sum);
    }
    return best;
  };

  it('burst allowance in time: capped at burstMs of the rate, never below the minimum, follows setRate', () => {
    const clock = new VirtualClock();
    const p = new Pacer(clock, 100_000_000, 24_000, 20);
    expect(p.burstBytes).toBe(250_000); // 20 ms at 100 Mbit/s
    p.setRate(1_000_000);
    expect(p.burstBytes).toBe(24_000); // 20 ms at 1 Mbit/s is 2,500 B: the minimum rules
    expect(new Pacer(clock, 100_000_000, 3_000).burstBytes).toBe(3_000); // no burstMs: bytes only
  });

  it('never exceeds rate × window + burst over any window ≥ 1 s, with late timers and odd sizes', () => {
    const clock = new VirtualClock();
    const rate = 8_000_000; // 1,000 B/ms
    const pacer = new Pacer(lateClock(clock, 3, 9), rate, 3_000, 20); // burst 20,000 B; timers 3–12 ms late
    const sends: Array<[number, number]> = [];
    // A producer that keeps the queue full, with sizes up to past the burst (one of 30,000 B).
    let pushed = 0;
    const feed = (): void => {
      for (let i = 0; i < 50 && pushed < 4_000; i++, pushed++) {
        const size = pushed === 1_000 ? 30_000 : 200 + ((pushed * 7919) % 1_300);
        pacer.push(new Uint8Array(size), () => sends.push([clock.now(), size]));
      }
      if (pushed < 4_000) pacer.whenDrained(feed);
    };
    feed();
    clock.run({ until: () => pushed >= 4_000 && pacer.queued === 0, maxTimeMs: 60_000 });
    expect(pacer.queued).toBe(0);
    const burst = pacer.burstBytes;
    for (const w of [1_000, 1_500, 2_000]) {
      expect(maxInWindow(sends, w)).toBeLessThanOrEqual((rate * w) / 8000 + burst);
    }
    // The bound is not loose: the busiest second is close to it.
    expect(maxInWindow(sends, 1_000)).toBeGreaterThan((rate * 1_000) / 8000 * 0.95);
  });

  it('late timers do not reduce throughput: credit accrues by elapsed time up to the allowance', () => {
    // A clock whose timers fire `lateMs` late, like Node's on a busy machine.
    const run = (burstMs: number, lateMs: number): number => {
      const clock = new VirtualClock();
      const pacer = new Pacer(lateClock(clock, lateMs), 80_000_000, 16 * 1500, burstMs); // 10,000 B/ms
      let sent = 0;
      for (let i = 0; i < 10_000; i++) pacer.push(new Uint8Array(1_200), () => (sent += 1_200));
      let end = -1;
      pacer.whenDrained(() => (end = clock.now()));
      clock.run({ maxTimeMs: 60_000 });
      expect(sent).toBe(12_000_000);
      return end;
    };
    const ideal = 12_000_000 / 10_000; // 1,200 ms at the rate
    // 5 ms late timers: a 20 ms allowance keeps the rate …
    expect(run(20, 5)).toBeLessThan(ideal * 1.02);
    expect(run(20, 5)).toBeGreaterThan(ideal * 0.97); // … and does not beat it
    // … where 16 datagrams (1.9 ms of credit) lose most of each timer's lateness.
    expect(run(0, 5)).toBeGreaterThan(ideal * 2);
  });
});
