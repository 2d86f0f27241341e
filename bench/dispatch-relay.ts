/**
 * The relay dispatch measurement: a real controller and gateway on loopback
 * (one process, bench/relay-node.ts), agents as relay servers in
 * {@link AGENT_PROCESSES} processes (bench/dispatch-agent-node.ts, each
 * agent with its own identity, the end-to-end layer on), and the center in
 * this process reaching them with RelayAgentConnector (a clientConnect per
 * agent, MSID checked end to end).
 *
 * The same agent processes also hold as many plain relay servers (their own
 * identities, same options) for the baseline: per agent, a clientConnect
 * through the same controller and gateway (same end-to-end layer, MSID
 * checked alike) and the plain run/done exchange, with the same
 * concurrency. Rounds alternate ours and the baseline (harness sideBySide).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DispatchCenter, RelayAgentConnector, type AgentRef } from '../src/delivery/dispatch/index.js';
import { loadPki } from '../src/relay/index.js';
import { generateIdentityKey } from '../src/session/index.js';
import { clientConnect } from '../src/socket/index.js';
import { CONCURRENCY, LIMIT_MS, checkSummary, cpuSeconds } from './dispatch-memory.js';
import { lanes, plainRound, within } from './dispatch-plain.js';
import { median } from './harness.js';
import { ensureServerIdentities, tempPki, withNodes, type RelayNode } from './relay-procs.js';

/** Processes the agents (and the plain servers) are spread over. */
export const AGENT_PROCESSES = 2;
/** First cached identity used here (the in-memory figure uses the first 5,000). */
const FIRST_IDENTITY = 5000;

/** The agents' child process (answers relay-procs' IPC calls: ping, agents, plain, close). */
const AGENT_NODE = join(dirname(fileURLToPath(import.meta.url)), 'dispatch-agent-node.ts');


/** Seconds per round of each side, and setup detail. */
export interface RelayRun {
  readonly ours: number[];
  readonly plain: number[];
  readonly detail: string;
}

/** `count` agents over the loopback relay: `rounds` dispatches (ours) and plain rounds, alternating. */
export async function dispatchOverRelay(count: number, rounds: number): Promise<RelayRun> {
  ensureServerIdentities(FIRST_IDENTITY + 2 * count);
  const pki = await tempPki(1);
  const work = mkdtempSync(join(tmpdir(), 'gatesock-bench-dispatch-relay-'));
  const nodes: RelayNode[] = [];
  let center: DispatchCenter | undefined;
  try {
    return await withNodes(async (start) => {
      try {
        const relay = await start('dispatch-relay');
        const { address: controller } = await relay.call<{ address: string }>('controller', { pki: pki.dir });
        await relay.call('gateway', { pki: pki.dir, name: 'gateway-1', controller, capacity: 100_000 });
        const root = (await loadPki(pki.dir)).root;
        const key = generateIdentityKey();

        for (let p = 0; p < AGENT_PROCESSES; p++) nodes.push(await start(`dispatch-agents-${p}`, { entry: AGENT_NODE }));
        const per = Math.ceil(count / AGENT_PROCESSES);
        const t0 = performance.now();
        const parts = await Promise.all(
          nodes.map(async (n, p) => {
            const size = Math.min(per, count - p * per);
            const common = { pki: pki.dir, controller, count: size };
            const agents = await n.call<AgentRef[]>('agents', { ...common, from: FIRST_IDENTITY + p * per, prefix: `dp-agent-${p}-`, centerKey: `ed25519:${Buffer.from(key.publicKey).toString('base64url')}`, work: join(work, `p${p}`) });
            const plain = await n.call<AgentRef[]>('plain', { ...common, from: FIRST_IDENTITY + count + p * per, prefix: `dp-plain-${p}-` });
            return { agents, plain };
          }),
        );
        const agents = parts.flatMap((x) => x.agents);
        const plain = parts.flatMap((x) => x.plain);
        const online = (performance.now() - t0) / 1000;
        if (agents.length !== count || plain.length !== count) throw new Error(`only ${agents.length} agents and ${plain.length} plain servers online`);

        const relayOptions = { controller, roots: [root], endToEnd: true, link: { backend: 'native' as const } };
        center = await DispatchCenter.open({ key, store: join(work, 'center', 'center.sqlite'), connector: new RelayAgentConnector(relayOptions), logPath: join(work, 'center', 'evidence.log') });
        const bundle = await center.createBundle({ name: 'noop', version: 1, code: 'export default async () => {}' });
        const c = center;

        const ours = async (waves?: number[]): Promise<number> => {
          const t = performance.now();
          const summary = await within(c.dispatch({ bundle: bundle.digest, agents, ...(waves ? { waves } : {}) }).done, LIMIT_MS, `relay dispatch to ${count} agents`);
          const s = (performance.now() - t) / 1000;
          checkSummary(summary, count);
          return s;
        };
        const baseline = async (): Promise<number> => {
          const t = performance.now();
          const all = lanes(count, CONCURRENCY, async (i) => {
            const ref = plain[i]!;
            const sock = await clientConnect(ref.pcid, { ...relayOptions, timeoutMs: 15_000 });
            if (sock.info.peerMsid?.toUpperCase() !== ref.msid.toUpperCase() || sock.info['endToEnd'] !== true) {
              void sock.disconnect();
              throw new Error(`plain: ${ref.pcid} is ${sock.info.peerMsid}, not ${ref.msid} end to end`);
            }
            await plainRound(sock, i, ref.msid);
          });
          await within(all, LIMIT_MS, `plain relay exchange with ${count} servers`);
          return (performance.now() - t) / 1000;
        };
        // One unmeasured round of each first (JIT, first logins of the center's client links).
        await ours();
        await baseline();
        const a: number[] = [];
        const b: number[] = [];
        // CPU of this process (the center, or the plain client side) per side, summed over the rounds.
        let cpuOurs = 0;
        let cpuPlain = 0;
        const timed = async (side: () => Promise<number>, into: number[]): Promise<number> => {
          const c0 = process.cpuUsage();
          into.push(await side());
          return cpuSeconds(c0);
        };
        for (let i = 0; i < rounds; i++) {
          if (i % 2 === 0) (cpuOurs += await timed(ours, a), cpuPlain += await timed(baseline, b));
          else (cpuPlain += await timed(baseline, b), cpuOurs += await timed(ours, a));
        }
        // Context, not a figure: one round of ours in a single wave (no canary
        // barriers), to show how much of the ratio the default waves cost.
        const oneWave = await ours([]);
        await c.close();
        center = undefined;
        return {
          ours: a,
          plain: b,
          detail: `${count} agents + ${count} plain servers online in ${online.toFixed(1)} s over ${AGENT_PROCESSES} processes; median ours ${median(a).toFixed(2)} s (default waves [1, 10 %, rest]; one round in a single wave: ${oneWave.toFixed(2)} s), plain ${median(b).toFixed(2)} s; CPU of the center process per agent: ours ${((cpuOurs * 1000) / (rounds * count)).toFixed(1)} ms, plain client ${((cpuPlain * 1000) / (rounds * count)).toFixed(1)} ms`,
        };
      } finally {
        // Agents first close their servers (graceful logout), then withNodes ends the processes.
        await center?.close().catch(() => undefined);
        await Promise.allSettled(nodes.map((n) => n.call('close', undefined, 15_000).catch(() => undefined)));
      }
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
    pki.remove();
  }
}
