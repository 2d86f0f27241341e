/**
 * Diagnosis (not a figure): CPU per MiB in each process of one relayed
 * connection — client (this process), relay (gateway+controller process, or
 * the plain relay's), server (relay server + app process) — for ours with
 * the end-to-end layer and pass-through (`ours-e2e`), with it but every hop
 * sealed (`ours-e2e-seal`: a client and a server that do not offer
 * pass-through, the same gateway), without the layer, and the plain `net`
 * relay, both directions, side by side in one run.
 *
 *   node --import ./scripts/ts-register.mjs bench/hop-cpu.ts [MiB per sample] [samples]
 *
 * HOP_ONLY=ours-e2e,plain runs those paths only, in that order; HOP_DIR=c2s (or s2c) one direction;
 * HOP_MEM=1 adds this process's heap after each sample (with BENCH_RELAY_PROFILE=DIR, for
 * CPU profiles of each process).
 */
import { loadPki, relayConnect, type Certificate } from '../src/relay/index.js';
import { dialTcp, pull, push, type AppStream, type Dial } from './relay-app.js';
import { ensureServerIdentities, tempPki, withNodes, type RelayNode } from './relay-procs.js';

const MiB = 1 << 20;
const total = Number(process.argv[2] ?? 128);
const rounds = Number(process.argv[3] ?? 3);

const cpuOf = async (n: RelayNode) => {
  const c = await n.call<{ user: number; system: number }>('cpu');
  return c.user + c.system;
};
const selfCpu = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

const pki = await tempPki(1);
ensureServerIdentities(2);
try {
  await withNodes(async (start) => {
    const [gw, srv, relay] = await Promise.all([start('gateway'), start('server'), start('plain-relay')]);
    const { address: controller } = await gw.call<{ address: string }>('controller', { pki: pki.dir });
    await gw.call('gateway', { pki: pki.dir, name: 'gateway-1', controller });
    const { port: appPort } = await srv.call<{ port: number }>('app');
    const { pcids } = await srv.call<{ pcids: string[] }>('servers', { pki: pki.dir, controller, from: 0, count: 1, endToEnd: false });
    const { pcids: sealedPcids } = await srv.call<{ pcids: string[] }>('servers', { pki: pki.dir, controller, from: 1, count: 1, endToEnd: false, passThrough: false });
    const { port: relayPort } = await relay.call<{ port: number }>('plainRelay', { target: appPort });
    const root: Certificate = (await loadPki(pki.dir)).root;
    const ours = (endToEnd: boolean, passThrough = true): Dial => async () =>
      (await relayConnect((passThrough ? pcids : sealedPcids)[0]!, { controller, roots: [root], endToEnd, passThrough, link: { backend: 'native' } })).stream as unknown as AppStream;
    const paths: [string, Dial, RelayNode][] = [
      ['ours-e2e', ours(true), gw],
      ['ours-e2e-seal', ours(true, false), gw],
      ['ours-no-e2e', ours(false), gw],
      ['plain', dialTcp(relayPort), relay],
    ];
    const only = process.env.HOP_ONLY;
    if (only) paths.splice(0, paths.length, ...only.split(',').map((name) => paths.find((p) => p[0] === name)!));
    for (const [dirName, move] of ([['c2s', push], ['s2c', pull]] as const).filter((d) => !process.env.HOP_DIR || d[0] === process.env.HOP_DIR)) {
      for (const [name, dial] of paths) await move(dial, 32 * MiB, { chunk: 256 * 1024, timeoutMs: 120_000 });
      for (let r = 0; r < rounds; r++) {
        for (const [name, dial, mid] of paths) {
          const c0 = selfCpu(), m0 = await cpuOf(mid), s0 = await cpuOf(srv);
          const t = await move(dial, total * MiB, { chunk: 256 * 1024, timeoutMs: 120_000 });
          const c1 = selfCpu(), m1 = await cpuOf(mid), s1 = await cpuOf(srv);
          const per = (d: number) => (d / 1000 / total).toFixed(2);
          console.log(`${dirName} ${name.padEnd(12)} ${t.mbPerSecond.toFixed(0).padStart(5)} MB/s  ms CPU/MiB: client ${per(c1 - c0)} relay ${per(m1 - m0)} server ${per(s1 - s0)} total ${per(c1 - c0 + m1 - m0 + s1 - s0)}${process.env.HOP_MEM ? ` heap ${(process.memoryUsage().heapUsed / 1048576).toFixed(0)} MiB ext ${(process.memoryUsage().external / 1048576).toFixed(0)} MiB` : ''}`);
        }
      }
    }
  });
} finally {
  pki.remove();
}
