/**
 * Real UDP multicast between network namespaces (the benchmark's topology,
 * bench/multicast-net.ts): a sender process and receiver processes on a
 * bridge, over eth0 rather than loopback, with the nftables loss rule on each
 * receiver's ingress. Checks that the harness's loss is what it says (so
 * the benchmark's "loss L%" means L%) and that unicast acks come back from
 * each receiver's own address. Needs root, iproute2 and nftables; skipped
 * with a line saying so otherwise.
 */
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { createMulticastNet, netnsUnavailable, type MulticastNet } from '../../bench/multicast-net.js';

const tsRegister = new URL('../../scripts/ts-register.mjs', import.meta.url).pathname;
const member = new URL('./fixtures/udp-member.ts', import.meta.url).pathname;
const senderFixture = new URL('./fixtures/udp-sender.ts', import.meta.url).pathname;

const why = netnsUnavailable();
if (why !== undefined) console.log(`udp-netns.test: network namespaces unavailable (${why}); skipping. Run as root with iproute2 and nftables.`);

describe('UDP multicast across network namespaces', () => {
  let net: MulticastNet | undefined;
  afterAll(() => net?.destroy());

  it.skipIf(why !== undefined).each([
    { family: 'ipv6' as const, group: 'ff15::4753:2' },
    { family: 'ipv4' as const, group: '239.255.71.2' },
  ])('$family: every receiver loses about the configured 10% and acks by unicast', async ({ family, group }) => {
    net ??= createMulticastNet({ receivers: 3, lossPercent: 10 });
    const count = 3000;
    const members = await Promise.all(
      net.receivers.map(
        (r, id) =>
          new Promise<{ end: () => Promise<{ got: number[] }> }>((resolve, reject) => {
            const child = net!.spawnIn(r, process.execPath, ['--import', tsRegister, member, family, group, '7100', 'eth0', String(count), String(id)], {
              stdio: ['pipe', 'pipe', 'inherit'],
            });
            const lines = createInterface({ input: child.stdout! });
            let last: ((v: { got: number[] }) => void) | undefined;
            const done = new Promise<{ got: number[] }>((res) => (last = res));
            lines.on('line', (line) => {
              const msg = JSON.parse(line) as { ready?: boolean; got?: number[] };
              if (msg.ready === true) resolve({ end: () => (child.stdin!.end(), done) });
              else last!(msg as { got: number[] });
            });
            child.once('exit', (code) => reject(new Error(`member in ${r.ns} exited with ${code} before it was ready`)));
          }),
      ),
    );
    const before = net.senderUdp();
    const droppedBefore = net.receivers.map((r) => net!.droppedBy(r));
    const bufferBefore = net.receivers.map((r) => net!.receiveBufferDrops(r));
    const sent = await net.runIn(net.sender, process.execPath, ['--import', tsRegister, senderFixture, family, group, '7100', 'eth0', String(count)], 20_000);
    expect(sent.stderr).toBe('');
    const report = JSON.parse(sent.stdout) as { sent: number; acks: number; from: string[] };
    const results = await Promise.all(members.map((m) => m.end()));
    results.forEach((r, i) => {
      const host = net!.receivers[i]!;
      const injected = net!.droppedBy(host) - droppedBefore[i]!;
      expect(injected / count).toBeGreaterThan(0.07);
      expect(injected / count).toBeLessThan(0.13);
      // Every datagram missing is one the rule dropped, or (on a starved
      // machine) one the member's full receive buffer dropped: the harness
      // loses nothing else.
      expect(count - r.got.length).toBe(injected + (net!.receiveBufferDrops(host) - bufferBefore[i]!));
    });
    // Acks leave through the receivers' egress (no loss there), so nearly
    // every datagram a member got comes back acked, from its own address
    // (a few may still be on their way when the sender stops listening).
    const got = results.reduce((n, r) => n + r.got.length, 0);
    expect(report.acks).toBeLessThanOrEqual(got);
    expect(report.acks).toBeGreaterThan(0.98 * got);
    expect(report.from).toEqual(net.receivers.map((r) => (family === 'ipv6' ? r.address6 : r.address4)).sort());
    const after = net.senderUdp();
    expect(after.packets - before.packets).toBe(count);
    expect(after.payloadBytes - before.payloadBytes).toBe(count * 1200);
  }, 60_000);

  it.skipIf(why !== undefined)('multicastLoopback decides whether members on the sending host get its datagrams', async () => {
    net ??= createMulticastNet({ receivers: 3, lossPercent: 10 });
    const udp = new URL('../../src/transport/udp.ts', import.meta.url).pathname;
    const script = `
      import { udpBind } from ${JSON.stringify(udp)};
      const got = {};
      for (const loop of [true, false]) {
        const member = await udpBind({ family: 'ipv6', groups: ['ff15::4753:3'], interface: 'eth0' });
        const sender = await udpBind({ family: 'ipv6', interface: 'eth0', multicastLoopback: loop });
        let n = 0;
        member.on('message', () => n++);
        for (let i = 0; i < 5; i++) sender.send(new Uint8Array(8), { address: 'ff15::4753:3', port: member.localAddress.port });
        await new Promise((r) => setTimeout(r, 200));
        got[String(loop)] = n;
        member.close();
        sender.close();
      }
      console.log(JSON.stringify(got));
    `;
    const run = await net.runIn(net.sender, process.execPath, ['--import', tsRegister, '--input-type=module', '-e', script], 20_000);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ true: 5, false: 0 });
  }, 30_000);
});
