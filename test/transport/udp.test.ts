/**
 * Real UDP over loopback: multicast (IPv6 and IPv4) to several sockets in
 * this process and in child processes, unicast replies, close, and the
 * errors a host without multicast (or a taken port) gives.
 *
 * IPv6 multicast on lo needs `ip -6 route add local ff00::/8 dev lo table
 * local` (scripts/multicast-loopback.sh); without it those tests are skipped
 * with a line saying so. IPv4 needs nothing when the interface is named.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DeliveryError, TransportError } from '../../src/errors/index.js';
import type { DatagramSocket } from '../../src/transport/datagram.js';
import { udpBind } from '../../src/transport/udp.js';
// The one loopback-multicast probe, shared with the updater's process tests.
import { loopbackMulticastProblem } from '../delivery/fixtures/multicast-probe.js';

const FAMILIES = [
  { family: 'ipv6' as const, group: 'ff15::4753:1', loopback: '::1' },
  { family: 'ipv4' as const, group: '239.255.71.83', loopback: '127.0.0.1' },
];

const tsRegister = new URL('../../scripts/ts-register.mjs', import.meta.url).pathname;
const member = new URL('./fixtures/udp-member.ts', import.meta.url).pathname;

function seqPacket(seq: number): Uint8Array {
  const b = new Uint8Array(32);
  new DataView(b.buffer).setUint32(0, seq);
  return b;
}
const seqOf = (d: Uint8Array): number => new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0);

/** Wait until `cond()` or `ms` pass; true when it held. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

// Probed once, before the tests are collected, so they can be skipped by name.
const missing = new Map<string, string | undefined>();
for (const f of FAMILIES) {
  const why = await loopbackMulticastProblem(f.family, f.group);
  missing.set(f.family, why);
  if (why !== undefined) {
    console.log(`udp.test: ${f.family} multicast on loopback is not available here, skipping those tests: ${why}. Fix: sudo bash scripts/multicast-loopback.sh`);
  }
}

describe.each(FAMILIES)('UDP $family', ({ family, group, loopback }) => {
  const noMulticast = missing.get(family) !== undefined;
  const open: DatagramSocket[] = [];
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const s of open) s.close();
    for (const c of children) c.kill();
  });
  const bind = async (o: Parameters<typeof udpBind>[0]) => {
    const s = await udpBind({ family, ...o });
    open.push(s);
    return s;
  };

  it.skipIf(noMulticast)('delivers a multicast datagram to every member socket sharing the port, and unicast replies back', async () => {
    const first = await bind({ groups: [group], interface: 'lo' });
    const port = first.localAddress.port;
    const members = [first, await bind({ port, groups: [group], interface: 'lo' }), await bind({ port, groups: [group], interface: 'lo' })];
    const sender = await bind({ interface: 'lo', hopLimit: 0 });
    const got = members.map(() => new Set<number>());
    members.forEach((m, i) =>
      m.on('message', (d, from) => {
        got[i]!.add(seqOf(d));
        m.send(seqPacket(1000 * (i + 1) + seqOf(d)), from);
      }),
    );
    const replies: number[] = [];
    sender.on('message', (d, from) => {
      replies.push(seqOf(d));
      expect(from.address).toBe(loopback);
    });
    for (let seq = 0; seq < 20; seq++) sender.send(seqPacket(seq), { address: group, port });
    expect(await until(() => got.every((g) => g.size === 20) && replies.length === 60, 3000)).toBe(true);
    expect(replies.sort((a, b) => a - b)).toEqual([1, 2, 3].flatMap((i) => [...Array(20).keys()].map((s) => 1000 * i + s)));
    // Once every socket on the port has left, nothing arrives. (While one of
    // them is still a member, Linux delivers the group to every socket bound
    // to the port: IP_MULTICAST_ALL, which Node cannot switch off.)
    for (const m of members) m.leaveGroup(group);
    sender.send(seqPacket(99), { address: group, port });
    await new Promise((r) => setTimeout(r, 100));
    expect(got.some((g) => g.has(99))).toBe(false);
  });

  it.skipIf(noMulticast)('multicasts to member processes that answer by unicast', async () => {
    const probeSocket = await bind({ reuseAddr: true });
    const port = probeSocket.localAddress.port;
    probeSocket.close();
    const procs = await Promise.all(
      [0, 1, 2].map(
        (id) =>
          new Promise<{ child: ChildProcess; done: Promise<{ done: boolean; got: number[] }> }>((resolve, reject) => {
            const child = spawn(process.execPath, ['--import', tsRegister, member, family, group, String(port), 'lo', '30', String(id)], { stdio: ['pipe', 'pipe', 'inherit'] });
            children.push(child);
            const lines = createInterface({ input: child.stdout! });
            let resolveDone!: (v: { done: boolean; got: number[] }) => void;
            const done = new Promise<{ done: boolean; got: number[] }>((r) => (resolveDone = r));
            lines.on('line', (line) => {
              const msg = JSON.parse(line) as { ready?: boolean; done?: boolean; got?: number[] };
              if (msg.ready === true) resolve({ child, done });
              else resolveDone(msg as { done: boolean; got: number[] });
            });
            child.once('exit', (code) => reject(new Error(`member exited with ${code} before it was ready`)));
          }),
      ),
    );
    const sender = await bind({ interface: 'lo' });
    const acks = new Map<string, Set<number>>();
    sender.on('message', (d, from) => {
      expect(from.address).toBe(loopback);
      const key = `member ${new DataView(d.buffer, d.byteOffset).getUint32(4)}`;
      if (!acks.has(key)) acks.set(key, new Set());
      acks.get(key)!.add(seqOf(d));
    });
    // Repeat rounds for what some member has not acked, like the updater does.
    for (let round = 0; round < 20; round++) {
      for (let seq = 0; seq < 30; seq++) {
        if (acks.size < 3 || [...acks.values()].some((s) => !s.has(seq))) sender.send(seqPacket(seq), { address: group, port });
      }
      if (await until(() => acks.size === 3 && [...acks.values()].every((s) => s.size === 30), 300)) break;
    }
    const results = await Promise.all(procs.map((p) => p.done));
    for (const r of results) expect(r).toEqual({ done: true, got: [...Array(30).keys()] });
    expect(acks.size).toBe(3);
  }, 30_000);

  it.skipIf(noMulticast)('names the interface by one of its addresses as well as by name', async () => {
    const r = await bind({ groups: [group], interface: loopback });
    const s = await bind({ interface: loopback });
    let got = 0;
    r.on('message', () => got++);
    s.send(seqPacket(5), { address: group, port: r.localAddress.port });
    expect(await until(() => got === 1, 2000)).toBe(true);
  });

  it.skipIf(noMulticast)('close stops delivery at once; send after close throws GS_ERR_TRANSPORT_CLOSED', async () => {
    const r = await bind({ groups: [group], interface: 'lo' });
    const s = await bind({ interface: 'lo' });
    let got = 0;
    let closes = 0;
    r.on('message', () => got++);
    r.on('close', () => closes++);
    s.send(seqPacket(1), { address: group, port: r.localAddress.port });
    r.close();
    r.close();
    await new Promise((res) => setTimeout(res, 50));
    expect(got).toBe(0);
    expect(closes).toBe(1);
    expect(() => r.send(seqPacket(1), { address: loopback, port: 9 })).toThrow(expect.objectContaining({ code: 'GS_ERR_TRANSPORT_CLOSED' }));
    expect(() => r.joinGroup(group)).toThrow(TransportError);
  });

  it('reports a taken port as GS_ERR_LISTEN_FAILED and bad options by name', async () => {
    const a = await bind({ address: loopback });
    await expect(udpBind({ family, address: loopback, port: a.localAddress.port })).rejects.toMatchObject({ code: 'GS_ERR_LISTEN_FAILED', message: /EADDRINUSE/ });
    await expect(udpBind({ family, interface: 'no-such-if0' })).rejects.toThrow(/interface names no interface/);
    await expect(udpBind({ family, groups: [loopback] })).rejects.toThrow(ConfigError);
    await expect(udpBind({ family, hopLimit: 256 })).rejects.toThrow(/hopLimit/);
    const other = family === 'ipv6' ? '127.0.0.1' : '::1';
    expect(() => a.send(seqPacket(0), { address: other, port: 9 })).toThrow(/is not an/);
    expect(() => a.send(new Uint8Array(70_000), { address: loopback, port: 9 })).toThrow(/at most 65507/);
  });
});

/** A network namespace with only lo up (no multicast route), or why there is none. */
function makeBareNamespace(name: string): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (add.status !== 0) return `ip netns add failed: ${add.stderr.trim()}`;
  spawnSync('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  return undefined;
}

describe('UDP on a host without multicast routes', () => {
  const ns = `gs-udp-${process.pid}`;
  let why: string | undefined;
  beforeAll(() => {
    why = makeBareNamespace(ns);
    if (why !== undefined) console.log(`udp.test: cannot make a network namespace (${why}); skipping the no-multicast error tests. Run as root with iproute2.`);
  });
  afterAll(() => {
    if (why === undefined) spawnSync('ip', ['netns', 'del', ns]);
  });

  const notRoot = process.getuid?.() !== 0;
  if (notRoot) console.log('udp.test: not root, so no network namespace; skipping the no-multicast error test (run as root with iproute2)');
  it.skipIf(notRoot)('fails with GS_ERR_DELIVERY_NO_MULTICAST and the command that fixes it', async () => {
    expect(why).toBeUndefined();
    const script = `
      import { udpBind } from ${JSON.stringify(new URL('../../src/transport/udp.js', import.meta.url).pathname.replace(/\.js$/, '.ts'))};
      const out = {};
      try { await udpBind({ family: 'ipv4', groups: ['239.1.2.3'] }); out.v4 = 'joined'; } catch (e) { out.v4 = e.code + ' ' + e.message; }
      const s = await udpBind({ family: 'ipv6', interface: 'lo' });
      s.on('error', (e) => { out.v6 = e.code + ' ' + e.message; });
      s.send(new Uint8Array(4), { address: 'ff15::1', port: 7000 });
      await new Promise((r) => setTimeout(r, 200));
      out.closed = s.closed;
      console.log(JSON.stringify(out));
    `;
    const run = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--import', tsRegister, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(run.stderr).toBe('');
    const out = JSON.parse(run.stdout) as { v4: string; v6: string; closed: boolean };
    expect(out.v4).toMatch(/^GS_ERR_DELIVERY_NO_MULTICAST cannot join 239\.1\.2\.3: .*ENODEV.*ip route add 224\.0\.0\.0\/4 dev/);
    expect(out.v6).toMatch(/^GS_ERR_DELIVERY_NO_MULTICAST cannot send to group ff15::1 .*ENETUNREACH.*ip -6 route add local ff00::\/8 dev lo table local/);
    expect(out.closed).toBe(true);
    expect(new DeliveryError('GS_ERR_DELIVERY_NO_MULTICAST', 'x').code).toBe('GS_ERR_DELIVERY_NO_MULTICAST');
  }, 30_000);
});
