/**
 * The loss injector for real sockets: drops a seeded share of arrivals
 * (checked on the simulated network, where arrivals are exact, and on
 * loopback UDP), passes sends through, and closes with its socket.
 */
import { describe, expect, it } from 'vitest';
import { gilbertElliottLoss, independentLoss, type LossModel } from '../../src/transport/loss.js';
import { withLoss } from '../../src/transport/lossy.js';
import { SimNetwork } from '../../src/transport/sim-network.js';
import { udpBind } from '../../src/transport/udp.js';

function pair() {
  const net = new SimNetwork({ seed: 1 });
  const a = net.addHost({ name: 'a' }).bind(1);
  const b = net.addHost({ name: 'b' }).bind(2);
  return { net, a, b };
}

describe('withLoss', () => {
  it('drops a seeded share of arrivals, the same ones for the same seed', () => {
    const received = (seed: number, loss: LossModel = independentLoss(0.2)) => {
      const { net, a, b } = pair();
      const lossy = withLoss(b, { loss, seed });
      const got: number[] = [];
      lossy.on('message', (d) => got.push(d[0]! | (d[1]! << 8)));
      for (let i = 0; i < 5000; i++) a.send(Uint8Array.of(i & 255, i >> 8), { address: 'b', port: 2 });
      net.run();
      expect(lossy.dropped + lossy.passed).toBe(5000);
      expect(lossy.passed).toBe(got.length);
      return got;
    };
    const once = received(4);
    expect(Math.abs(1 - once.length / 5000 - 0.2)).toBeLessThan(0.03);
    expect(received(4)).toEqual(once);
    expect(received(5)).not.toEqual(once);
    // Bursty: runs of consecutive drops average the configured length.
    const ge = received(6, gilbertElliottLoss({ averageLoss: 0.1, meanBurstLength: 5 }));
    const kept = new Set(ge);
    let lost = 0;
    let bursts = 0;
    for (let i = 0; i < 5000; i++) {
      if (!kept.has(i)) {
        lost++;
        if (i === 0 || kept.has(i - 1)) bursts++;
      }
    }
    expect(lost / bursts).toBeGreaterThan(3);
  });

  it('passes sends, groups and the clock through, and closes with its socket', () => {
    const { net, a, b } = pair();
    const lossy = withLoss(b, { loss: independentLoss(1), seed: 0 });
    expect(lossy.localAddress).toEqual({ address: 'b', port: 2 });
    expect(lossy.clock).toBe(net.clock);
    let atA = 0;
    a.on('message', () => atA++);
    lossy.send(Uint8Array.of(1), { address: 'a', port: 1 });
    lossy.joinGroup('ff15::9');
    a.send(Uint8Array.of(1), { address: 'ff15::9', port: 2 });
    let atB = 0;
    lossy.on('message', () => atB++);
    net.run();
    expect(atA).toBe(1);
    expect(atB).toBe(0);
    expect(lossy.dropped).toBe(1);
    let closes = 0;
    lossy.on('close', () => closes++);
    b.close();
    expect(closes).toBe(1);
    expect(() => lossy.send(Uint8Array.of(1), { address: 'a', port: 1 })).toThrow(expect.objectContaining({ code: 'GS_ERR_TRANSPORT_CLOSED' }));
    expect(() => withLoss(a, { loss: independentLoss(0.1), seed: -1 })).toThrow(/seed/);
  });

  it('injects loss into real loopback UDP', async () => {
    const raw = await udpBind({ family: 'ipv4', address: '127.0.0.1' });
    const lossy = withLoss(raw, { loss: independentLoss(0.3), seed: 2 });
    const sender = await udpBind({ family: 'ipv4', address: '127.0.0.1' });
    try {
      let got = 0;
      lossy.on('message', () => got++);
      // In batches, so the kernel's receive buffer never overflows.
      const end = Date.now() + 5000;
      for (let i = 0; i < 400; i++) {
        sender.send(Uint8Array.of(i & 255), { address: '127.0.0.1', port: raw.localAddress.port });
        if (i % 50 === 49) while (lossy.dropped + lossy.passed < i + 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
      }
      expect(lossy.dropped + lossy.passed).toBe(400);
      expect(got).toBe(lossy.passed);
      expect(lossy.dropped).toBeGreaterThan(80);
      expect(lossy.dropped).toBeLessThan(160);
    } finally {
      lossy.close();
      sender.close();
    }
  });
});
