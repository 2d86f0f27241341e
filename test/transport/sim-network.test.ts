/**
 * The seeded simulated datagram network and its virtual clock: determinism,
 * loss models converging to their parameters, delay/jitter and the rate
 * limit in virtual time, queue overflow, close, and a 1,000-member group.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, TransportError } from '../../src/errors/index.js';
import { averageLossOf, gilbertElliott, gilbertElliottLoss, independentLoss, type LossModel } from '../../src/transport/loss.js';
import { isMulticastAddress, MAX_DATAGRAM_BYTES, SimNetwork, type LinkModel } from '../../src/transport/sim-network.js';
import { SimEvent, VirtualClock } from '../../src/transport/virtual-clock.js';
import type { DatagramSocket } from '../../src/transport/datagram.js';

const GROUP = 'ff15::1';
const PORT = 7000;

/** A datagram carrying a 32-bit sequence number, padded to `size` bytes. */
function packet(seq: number, size = 100): Uint8Array {
  const b = new Uint8Array(size);
  new DataView(b.buffer).setUint32(0, seq);
  return b;
}
const seqOf = (d: Uint8Array): number => new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0);

/**
 * One sender and `n` receivers in GROUP; the sender multicasts `count`
 * datagrams, `perMs` per virtual millisecond. Returns what each receiver got
 * (sequence numbers in arrival order, and arrival times).
 */
function multicastRun(opts: { seed: number; n: number; count: number; downlink?: LinkModel; perMs?: number; size?: number; share?: boolean }) {
  const net = new SimNetwork({ seed: opts.seed, sharePayloads: opts.share ?? false });
  const sender = net.addHost({ name: 'sender' });
  const got: number[][] = [];
  const times: number[][] = [];
  for (let i = 0; i < opts.n; i++) {
    const s = net.addHost({ downlink: opts.downlink }).bind(PORT);
    s.joinGroup(GROUP);
    const mine: number[] = [];
    const when: number[] = [];
    got.push(mine);
    times.push(when);
    s.on('message', (d) => {
      mine.push(seqOf(d));
      when.push(net.clock.now());
    });
  }
  const out = sender.bind();
  const perMs = opts.perMs ?? 10;
  let next = 0;
  const tick = (): void => {
    for (let k = 0; k < perMs && next < opts.count; k++) out.send(packet(next++, opts.size), { address: GROUP, port: PORT });
    if (next < opts.count) net.clock.setTimer(tick, 1);
  };
  tick();
  const result = net.run({ maxTimeMs: 600_000 });
  return { net, got, times, result };
}

describe('VirtualClock', () => {
  it('fires timers in time order, same-time timers in the order set, and cancels in O(log n)', () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    clock.setTimer(() => seen.push(`b@${clock.now()}`), 20);
    clock.setTimer(() => seen.push(`a@${clock.now()}`), 10);
    clock.setTimer(() => seen.push(`c@${clock.now()}`), 20);
    const gone = clock.setTimer(() => seen.push('never'), 15);
    clock.setTimer(() => clock.setTimer(() => seen.push(`nested@${clock.now()}`), 0), 30);
    clock.clearTimer(gone);
    clock.clearTimer(gone); // twice is harmless
    clock.clearTimer({}); // not ours: ignored
    expect(clock.run()).toEqual({ outcome: 'idle', events: 5, now: 30 });
    expect(seen).toEqual(['a@10', 'b@20', 'c@20', 'nested@30']);
  });

  it('stops on the condition, the virtual-time limit or the event limit, and says which', () => {
    const clock = new VirtualClock();
    let n = 0;
    const every = (): void => {
      n++;
      clock.setTimer(every, 5);
    };
    clock.setTimer(every, 5);
    expect(clock.run({ until: () => n === 3 })).toEqual({ outcome: 'condition', events: 3, now: 15 });
    expect(clock.run({ maxTimeMs: 12 })).toEqual({ outcome: 'time-limit', events: 2, now: 27 });
    expect(clock.run({ maxEvents: 4 })).toEqual({ outcome: 'event-limit', events: 4, now: 45 });
    // A condition already true runs nothing.
    expect(clock.run({ until: () => true })).toEqual({ outcome: 'condition', events: 0, now: 45 });
    expect(() => clock.run({ maxTimeMs: -1 })).toThrow(ConfigError);
  });

  it('many timers set and cleared leave the heap consistent', () => {
    const clock = new VirtualClock();
    const fired: number[] = [];
    const handles: unknown[] = [];
    for (let i = 0; i < 2000; i++) handles.push(clock.setTimer(() => fired.push(i), (i * 7919) % 1000));
    for (let i = 0; i < 2000; i += 3) clock.clearTimer(handles[i]);
    clock.run();
    const expected = [...Array(2000).keys()].filter((i) => i % 3 !== 0).sort((a, b) => ((a * 7919) % 1000) - ((b * 7919) % 1000) || a - b);
    expect(fired).toEqual(expected);
  });

  it('schedules reusable event records without a closure each', () => {
    const clock = new VirtualClock();
    const times: number[] = [];
    class Tick extends SimEvent {
      fire(): void {
        times.push(clock.now());
        if (times.length < 3) clock.schedule(this, clock.now() + 7);
      }
    }
    const tick = new Tick();
    clock.schedule(tick, 5);
    expect(() => clock.schedule(tick, 6)).toThrow(/already scheduled/);
    clock.run();
    expect(times).toEqual([5, 12, 19]);
    clock.schedule(tick, 1); // in the past: due now
    clock.cancel(tick);
    expect(clock.run().events).toBe(0);
  });

  it('runAsync lets promises started by an event settle before time moves on', async () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    const work = async (): Promise<number> => 2;
    clock.setTimer(async () => {
      for (let i = 0; i < 10; i++) await work();
      seen.push(`settled@${clock.now()}`);
      clock.setTimer(() => seen.push(`after@${clock.now()}`), 5);
    }, 10);
    clock.setTimer(() => seen.push(`later@${clock.now()}`), 11);
    const r = await clock.runAsync();
    expect(r.outcome).toBe('idle');
    expect(seen).toEqual(['settled@10', 'later@11', 'after@15']);
  });
});

describe('loss models', () => {
  it('gilbertElliottLoss hits the target average and burst length in its parameters', () => {
    const ge = gilbertElliottLoss({ averageLoss: 0.05, meanBurstLength: 4 });
    expect(ge.pBadToGood).toBe(0.25);
    expect(averageLossOf(ge)).toBeCloseTo(0.05, 12);
    const soft = gilbertElliottLoss({ averageLoss: 0.1, meanBurstLength: 10, lossInBad: 0.5, lossInGood: 0.01 });
    expect(averageLossOf(soft)).toBeCloseTo(0.1, 12);
    expect(averageLossOf(independentLoss(0.2))).toBe(0.2);
  });

  it('rejects impossible parameters by name', () => {
    expect(() => independentLoss(1.5)).toThrow(/p must be a probability/);
    expect(() => gilbertElliottLoss({ averageLoss: 0.5, meanBurstLength: 0.5 })).toThrow(/meanBurstLength/);
    expect(() => gilbertElliottLoss({ averageLoss: 1, meanBurstLength: 3 })).toThrow(/averageLoss/);
    expect(() => gilbertElliottLoss({ averageLoss: 0.9, meanBurstLength: 1 })).toThrow(/pGoodToBad > 1/);
    expect(() => gilbertElliott({ pGoodToBad: 2, pBadToGood: 0.1, lossInGood: 0, lossInBad: 1 })).toThrow(/pGoodToBad/);
    const net = new SimNetwork();
    expect(() => net.addHost({ downlink: { loss: { kind: 'nope' } as unknown as LossModel } })).toThrow(/downlink.loss.kind/);
    expect(() => net.addHost({ downlink: { delayMs: -1 } })).toThrow(/downlink.delayMs/);
  });
});

describe('SimNetwork', () => {
  it('is deterministic: the same seed gives the same trace, another seed another', () => {
    const downlink: LinkModel = { delayMs: 3, jitterMs: 4, loss: gilbertElliottLoss({ averageLoss: 0.1, meanBurstLength: 3 }), rateBps: 10e6, queueBytes: 4000 };
    const trace = (seed: number) => {
      const { got, times } = multicastRun({ seed, n: 20, count: 300, downlink });
      return JSON.stringify([got, times]);
    };
    expect(trace(11)).toBe(trace(11));
    expect(trace(11)).not.toBe(trace(12));
  });

  it('independent loss converges to p on every receiver, independently', () => {
    const p = 0.1;
    const count = 4000;
    const { got, net } = multicastRun({ seed: 3, n: 30, count, downlink: { loss: independentLoss(p) } });
    let total = 0;
    for (const g of got) {
      const lossRate = 1 - g.length / count;
      expect(Math.abs(lossRate - p)).toBeLessThan(0.025); // > 5 sigma at n = 4000
      total += count - g.length;
    }
    expect(Math.abs(total / (30 * count) - p)).toBeLessThan(0.005);
    expect(net.counters.lostDatagrams).toBe(total);
    // Different receivers lose different datagrams.
    expect(JSON.stringify(got[0])).not.toBe(JSON.stringify(got[1]));
  });

  it('Gilbert–Elliott loss converges to the target average and mean burst length', () => {
    const count = 20_000;
    const n = 10;
    const { got } = multicastRun({ seed: 5, n, count, perMs: 50, downlink: { loss: gilbertElliottLoss({ averageLoss: 0.05, meanBurstLength: 4 }) } });
    let lost = 0;
    let bursts = 0;
    for (const g of got) {
      const have = new Uint8Array(count);
      for (const s of g) have[s] = 1;
      let run = 0;
      for (let i = 0; i <= count; i++) {
        if (i < count && have[i] === 0) {
          run++;
          lost++;
        } else if (run > 0) {
          bursts++;
          run = 0;
        }
      }
    }
    expect(Math.abs(lost / (n * count) - 0.05)).toBeLessThan(0.008);
    expect(Math.abs(lost / bursts - 4)).toBeLessThan(0.4);
    // Bursty, unlike independent loss at the same average (mean burst 1/(1-p) ≈ 1.05).
    expect(lost / bursts).toBeGreaterThan(2);
  });

  it('honours delay and jitter in virtual time, uplink plus downlink', () => {
    const net = new SimNetwork({ seed: 1 });
    const a = net.addHost({ name: 'a', uplink: { delayMs: 2 } }).bind(1000);
    const b = net.addHost({ name: 'b', downlink: { delayMs: 10, jitterMs: 5 } }).bind(2000);
    const arrivals: number[] = [];
    b.on('message', (_d, from) => {
      arrivals.push(net.clock.now());
      expect(from).toEqual({ address: 'a', port: 1000 });
    });
    for (let i = 0; i < 500; i++) a.send(packet(i), { address: 'b', port: 2000 });
    net.run();
    expect(arrivals).toHaveLength(500);
    expect(Math.min(...arrivals)).toBeGreaterThanOrEqual(12);
    expect(Math.max(...arrivals)).toBeLessThan(17);
    // Jitter spreads arrivals over the whole window.
    expect(Math.max(...arrivals) - Math.min(...arrivals)).toBeGreaterThan(4.5);
  });

  it('paces datagrams at the rate limit and drops (and counts) what overflows the queue', () => {
    const net = new SimNetwork();
    // 8 Mbit/s = 1 byte per microsecond: a 1000-byte datagram takes 1 ms.
    const r = net.addHost({ name: 'r', downlink: { rateBps: 8e6, queueBytes: 10_000 } });
    const rs = r.bind(2000);
    const s = net.addHost({ name: 's' }).bind(1000);
    const at: number[] = [];
    rs.on('message', () => at.push(net.clock.now()));
    for (let i = 0; i < 100; i++) s.send(packet(i, 1000), { address: 'r', port: 2000 });
    net.run();
    expect(at).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(r.counters.queueDroppedDatagrams).toBe(90);
    expect(r.counters.queueDroppedBytes).toBe(90_000);
    expect(net.counters.queueDroppedDatagrams).toBe(90);
    expect(r.counters.deliveredDatagrams).toBe(10);

    // Sent at the rate, nothing is dropped and every datagram waits only for itself.
    const at2: number[] = [];
    rs.removeAllListeners('message');
    rs.on('message', () => at2.push(net.clock.now()));
    const t0 = net.clock.now();
    let i = 0;
    const tick = (): void => {
      s.send(packet(i, 1000), { address: 'r', port: 2000 });
      if (++i < 50) net.clock.setTimer(tick, 1);
    };
    tick();
    net.run();
    expect(at2).toHaveLength(50);
    at2.forEach((t, k) => expect(t - t0).toBeCloseTo(k + 1, 9));
    expect(r.counters.queueDroppedDatagrams).toBe(90);
  });

  it('queues unicast at a rate-limited downlink in the order it gets there, not the order it was sent', () => {
    const net = new SimNetwork();
    const far = net.addHost({ name: 'far', uplink: { delayMs: 10 } }).bind(1);
    const near = net.addHost({ name: 'near' }).bind(1);
    const r = net.addHost({ name: 'r', downlink: { rateBps: 8e6 } }).bind(2);
    const seen: string[] = [];
    r.on('message', (_d, from) => seen.push(`${from.address}@${net.clock.now()}`));
    far.send(packet(0, 1000), { address: 'r', port: 2 }); // reaches r's link at 10 ms
    net.clock.setTimer(() => near.send(packet(1, 1000), { address: 'r', port: 2 }), 1); // at 1 ms
    net.run();
    expect(seen).toEqual(['near@2', 'far@11']);
  });

  it('sends a multicast datagram through the sender uplink once: its rate paces all copies, its loss loses every copy', () => {
    const net = new SimNetwork({ seed: 2 });
    // 8 Mbit/s: 1000 bytes take 1 ms; a third of datagrams lost on the way up.
    const sender = net.addHost({ name: 's', uplink: { rateBps: 8e6, loss: independentLoss(1 / 3) } });
    const hosts = [0, 1, 2].map((i) => net.addHost({ name: `r${i}`, downlink: { delayMs: 2 } }));
    const got = hosts.map(() => [] as Array<[number, number]>);
    hosts.forEach((h, i) => {
      const s = h.bind(PORT);
      s.joinGroup(GROUP);
      s.on('message', (d) => got[i]!.push([seqOf(d), net.clock.now()]));
    });
    const out = sender.bind();
    for (let i = 0; i < 300; i++) out.send(packet(i, 1000), { address: GROUP, port: PORT });
    net.run();
    // Every receiver got the same datagrams, at the same times: one uplink decision per datagram.
    expect(got[1]).toEqual(got[0]);
    expect(got[2]).toEqual(got[0]);
    const lost = 300 - got[0]!.length;
    expect(Math.abs(lost / 300 - 1 / 3)).toBeLessThan(0.1);
    expect(sender.counters.lostDatagrams).toBe(lost);
    expect(hosts.every((h) => h.counters.lostDatagrams === 0)).toBe(true);
    // Datagram i left the uplink after i + 1 ms of serialization, then 2 ms down.
    for (const [seq, at] of got[0]!) expect(at).toBeCloseTo(seq + 1 + 2, 9);
  });

  it('delivers unicast replies to the sender, multicast to members only, and respects loopback', () => {
    const net = new SimNetwork();
    const sender = net.addHost({ name: 'sender' });
    const out = sender.bind(5000);
    const quiet = sender.bind(5001, { multicastLoopback: false });
    const local = sender.bind(PORT);
    local.joinGroup(GROUP);
    const r1 = net.addHost({ name: 'r1' }).bind(PORT);
    const r2 = net.addHost({ name: 'r2' }).bind(PORT);
    const r3 = net.addHost({ name: 'r3' }).bind(PORT + 1); // other port
    r1.joinGroup(GROUP);
    r2.joinGroup(GROUP);
    r3.joinGroup(GROUP);
    const log: string[] = [];
    const listen = (name: string, s: DatagramSocket) =>
      s.on('message', (d, from) => {
        log.push(`${name}<${from.address}:${from.port}:${seqOf(d)}`);
        if (name !== 'out' && name !== 'local') s.send(packet(100 + seqOf(d)), from);
      });
    listen('out', out);
    listen('local', local);
    listen('r1', r1);
    listen('r2', r2);
    listen('r3', r3);
    out.send(packet(1), { address: GROUP, port: PORT });
    quiet.send(packet(2), { address: GROUP, port: PORT });
    net.run();
    expect(log.sort()).toEqual(
      [
        'local<sender:5000:1',
        'r1<sender:5000:1',
        'r2<sender:5000:1',
        'r1<sender:5001:2',
        'r2<sender:5001:2',
        'out<r1:7000:101',
        'out<r2:7000:101',
      ].sort(),
    );
    // Leaving the group stops delivery.
    log.length = 0;
    r2.leaveGroup(GROUP);
    out.send(packet(3), { address: GROUP, port: PORT });
    net.run();
    expect(log.filter((l) => l.startsWith('r'))).toEqual(['r1<sender:5000:3']);
  });

  it('close stops delivery at once (in-flight datagrams are discarded) and later sends throw', () => {
    const net = new SimNetwork();
    const a = net.addHost({ name: 'a' }).bind(1);
    const bHost = net.addHost({ name: 'b', downlink: { delayMs: 10 } });
    const b = bHost.bind(2);
    b.joinGroup(GROUP);
    let got = 0;
    let closes = 0;
    b.on('message', () => got++);
    b.on('close', () => closes++);
    a.send(packet(0), { address: 'b', port: 2 });
    a.send(packet(1), { address: GROUP, port: 2 });
    net.clock.setTimer(() => b.close(), 5);
    net.run();
    b.close();
    expect(got).toBe(0);
    expect(closes).toBe(1);
    expect(bHost.counters.discardedDatagrams).toBe(2);
    expect(() => b.send(packet(0), { address: 'a', port: 1 })).toThrow(TransportError);
    try {
      b.send(packet(0), { address: 'a', port: 1 });
    } catch (e) {
      expect((e as TransportError).code).toBe('GS_ERR_TRANSPORT_CLOSED');
    }
    expect(() => b.joinGroup(GROUP)).toThrow(/closed/);
    // The port is free again.
    expect(bHost.bind(2).localAddress).toEqual({ address: 'b', port: 2 });
  });

  it('checks its inputs by name', () => {
    const net = new SimNetwork();
    const h = net.addHost({ name: 'h' });
    const s = h.bind(9);
    expect(() => h.bind(9)).toThrow(expect.objectContaining({ code: 'GS_ERR_LISTEN_FAILED' }));
    const shared = h.bind(10, { reuseAddr: true });
    expect(h.bind(10, { reuseAddr: true }).localAddress.port).toBe(shared.localAddress.port);
    expect(h.bind().localAddress.port).toBe(49152);
    expect(() => s.joinGroup('10.0.0.1')).toThrow(/group must be a multicast address/);
    expect(() => s.send(new Uint8Array(MAX_DATAGRAM_BYTES + 1), { address: 'h', port: 9 })).toThrow(/data must be at most/);
    expect(() => s.send(new Uint8Array(1), { address: 'h', port: 0 })).toThrow(/to.port/);
    expect(() => net.addHost({ name: 'h' })).toThrow(/already a host/);
    expect(() => net.addHost({ name: 'ff02::1' })).toThrow(/multicast/);
    expect(isMulticastAddress('239.1.2.3')).toBe(true);
    expect(isMulticastAddress('FF02::1')).toBe(true);
    expect(isMulticastAddress('223.1.2.3')).toBe(false);
    expect(isMulticastAddress('fe80::1')).toBe(false);
  });

  it('sends a private copy: the sender may reuse its buffer, each receiver owns its bytes', () => {
    const net = new SimNetwork();
    const out = net.addHost().bind(1);
    const sockets = [0, 1, 2].map(() => net.addHost().bind(PORT));
    const got: Uint8Array[] = [];
    for (const s of sockets) {
      s.joinGroup(GROUP);
      s.on('message', (d) => {
        got.push(d);
        d[0] = 0xee; // listeners own data
      });
    }
    const buf = packet(7);
    out.send(buf, { address: GROUP, port: PORT });
    buf.fill(0xaa);
    net.run();
    expect(got).toHaveLength(3);
    expect(got.map((d) => seqOf(d.subarray(0)) & 0x00ffffff)).toEqual([7, 7, 7]);
    expect(got.every((d) => d.length === 100 && d[1] === 0 && d[0] === 0xee)).toBe(true);
  });

  it('delivers to a 1,000-member group: one copy each, counted', () => {
    const { got, net, result } = multicastRun({ seed: 9, n: 1000, count: 50, downlink: { delayMs: 1, jitterMs: 1 }, share: true });
    expect(result.outcome).toBe('idle');
    for (const g of got) expect([...g].sort((a, b) => a - b)).toEqual([...Array(50).keys()]);
    expect(net.counters.sentDatagrams).toBe(50);
    expect(net.counters.deliveredDatagrams).toBe(50_000);
    expect(net.counters.deliveredBytes).toBe(5_000_000);
    expect(net.hosts[1]!.counters.deliveredDatagrams).toBe(50);
  });
});
