/**
 * The in-process dispatch measurement (issue 7, "Measured in npm run
 * bench"): one DispatchCenter and N DispatchAgents in this process over
 * MemoryAgentConnector, and the plain baseline (bench/dispatch-plain.ts)
 * over the same connector, with the same concurrency.
 *
 * Ours, as a user gets it: the center on a SQLite store in a temp folder
 * (so bundles in `<store>.bundles`), the evidence log on, the default
 * concurrency (64) and canary waves ([1, 10 %], then the rest); the bundle
 * is code only (`export default async () => {}`, no target program). The
 * agents use the InlineExecutor (the loader in this process, not a Node
 * process per agent) and `syncState: false` (state.json written without
 * fsync; 5,000 fsyncs would measure the disk), their folders on tmpfs
 * (see AGENT_ROOT).
 *
 * Memory: V8 heap used + external (ArrayBuffers included), after forced
 * garbage collections, at three points:
 *   before   nothing made yet
 *   agents   the agents made and registered (before the center exists)
 *   after    the dispatch done and checked, the agents closed and dropped
 * `center growth = after − before`: what the center (its store's JS side,
 * run state, results) still holds once every agent is gone, so the agents'
 * own memory is not counted. SQLite's own C allocations are not in V8's
 * counters; RSS growth is printed beside it as context (it includes
 * whatever the agents' freed memory left in the allocator). `peak` is the
 * growth from `agents` to the end of the dispatch with the agents still
 * alive (center + agents' per-dispatch state), printed as context.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DISPATCH_DEFAULTS, DispatchAgent, DispatchCenter, InlineExecutor, MemoryAgentConnector, verifyEvidenceLog, type DispatchSummary } from '../src/delivery/dispatch/index.js';
import { generateIdentityKey, type Identity } from '../src/session/index.js';
import { lanes, plainRound, plainServe, within } from './dispatch-plain.js';
import { ensureServerIdentities, serverIdentities } from './relay-procs.js';

/** The center's default concurrency (64), used by ours (the default) and the baseline alike. */
export const CONCURRENCY: number = DISPATCH_DEFAULTS.concurrency;
/** Longest a measured dispatch (or plain exchange) may take before the figure fails. */
export const LIMIT_MS = 120_000;

/** A memory sample: bytes. */
export interface MemSample {
  readonly heap: number;
  readonly external: number;
  readonly rss: number;
}

/** What one side of the in-memory measurement gives. */
export interface MemoryRun {
  /** Seconds from the dispatch call to every result verified (ours) or answered (plain). */
  readonly seconds: number;
  readonly before: MemSample;
  readonly agents: MemSample;
  /** Right after the dispatch, agents still alive. */
  readonly done: MemSample;
  /** Agents closed and dropped, center (or plain results) still held. */
  readonly after: MemSample;
  /** One line of detail for stderr. */
  readonly detail: string;
}

/**
 * Where the in-process agents keep their state and work folders: tmpfs
 * when the machine has one. On a real fleet every agent writes its own
 * disk; 5,000 of them sharing this machine's disk would measure the disk
 * (and deleting 10,000 folders after the run takes longer than the run).
 * The center's store and log stay in the system temp folder, as a user's.
 */
const AGENT_ROOT = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

let gcFn: (() => void) | undefined;
/** A full garbage collection (exposing `gc` at run time if the process was not started with --expose-gc). */
function gc(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') gcFn = g;
    else {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    }
  }
  gcFn();
}

const tick = () => new Promise((r) => setImmediate(r));

/** Memory after settling: a few turns of the loop and full collections. */
async function sample(): Promise<MemSample> {
  for (let i = 0; i < 3; i++) {
    await tick();
    gc();
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.external, rss: m.rss };
}

/** CPU seconds (user + system) this process used since `since`: context beside wall time on a shared machine. */
export function cpuSeconds(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

/** heap + external growth from `a` to `b`, MB (10^6 bytes). */
export const growthMB = (a: MemSample, b: MemSample): number => (b.heap + b.external - (a.heap + a.external)) / 1e6;
const rssMB = (a: MemSample, b: MemSample): number => (b.rss - a.rss) / 1e6;

/** Agent identities from the bench's cache (made once, kept in the temp folder; see relay-procs.ts). */
function identities(count: number): Identity[] {
  ensureServerIdentities(count);
  return serverIdentities(0, count);
}

/** Ours: N DispatchAgents and one DispatchCenter in this process. */
export async function dispatchInMemory(count: number): Promise<MemoryRun> {
  const ids = identities(count);
  const work = mkdtempSync(join(tmpdir(), 'gatesock-bench-dispatch-'));
  const agentDirs = mkdtempSync(join(AGENT_ROOT, 'gatesock-bench-dispatch-agents-'));
  const key = generateIdentityKey();
  let agents: DispatchAgent[] = [];
  let connector: MemoryAgentConnector | undefined = new MemoryAgentConnector();
  let center: DispatchCenter | undefined;
  try {
    const before = await sample();
    const executor = new InlineExecutor();
    await lanes(count, 16, async (i) => {
      const a = await DispatchAgent.open({
        identity: ids[i]!,
        centerKey: key.publicKey,
        stateDir: join(agentDirs, String(i), 'state'),
        workDir: join(agentDirs, String(i), 'work'),
        executor,
        syncState: false,
      });
      agents[i] = a;
      connector!.register(a.msid, (sock) => void a.serve(sock));
    });
    const refs = agents.map((a, i) => ({ msid: a.msid, pcid: `agent-${i}` }));
    const withAgents = await sample();

    const logPath = join(work, 'center', 'evidence.log');
    center = await DispatchCenter.open({ key, store: join(work, 'center', 'center.sqlite'), connector, logPath });
    const bundle = await center.createBundle({ name: 'noop', version: 1, code: 'export default async () => {}' });
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const run = center.dispatch({ bundle: bundle.digest, agents: refs });
    const summary = await within(run.done, LIMIT_MS, `dispatch to ${count} agents`);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(cpu0);
    checkSummary(summary, count);
    const done = await sample();

    // The agents go: closed, unregistered, dropped. What stays is the center's.
    await Promise.all(agents.map((a) => a.close()));
    for (const r of refs) connector.unregister(r.msid);
    agents = [];
    const after = await sample();

    await center.close();
    center = undefined;
    connector = undefined;
    // Check: the evidence log verifies offline and holds one result per agent.
    const log = verifyEvidenceLog(readFileSync(logPath, 'utf8'), key.publicKey, { head: readFileSync(`${logPath}.head`, 'utf8') });
    if (log.kinds.result !== count || log.kinds.issued !== count) throw new Error(`evidence log: ${log.kinds.result} results and ${log.kinds.issued} issued for ${count} agents`);
    return memoryRun(`ours: ${count} verified in ${seconds.toFixed(2)} s using ${cpu.toFixed(2)} s of CPU (center and agents); log ${log.entries} entries verified (${JSON.stringify(log.kinds)})`, seconds, before, withAgents, done, after);
  } finally {
    await center?.close().catch(() => undefined);
    await Promise.allSettled(agents.map((a) => a.close()));
    rmSync(work, { recursive: true, force: true });
    rmSync(agentDirs, { recursive: true, force: true });
  }
}

/** Throws unless the run is done and every one of its `count` targets verified with outcome `ran`. */
export function checkSummary(s: DispatchSummary, count: number): void {
  const bad = s.targets.filter((t) => t.state !== 'verified' || t.outcome !== 'ran');
  if (s.state !== 'done' || s.total !== count || s.targets.length !== count || bad.length > 0) {
    throw new Error(`dispatch ${s.state}: ${s.total} targets, ${bad.length} not verified as ran (first: ${JSON.stringify(bad[0])})`);
  }
}

/** The baseline: the same N round trips as plain JSON over the same connector and concurrency. */
export async function plainInMemory(count: number): Promise<MemoryRun> {
  const ids = identities(count);
  let connector: MemoryAgentConnector | undefined = new MemoryAgentConnector();
  const before = await sample();
  for (const id of ids) {
    const msid = id.msid;
    connector.register(msid, (sock) => void plainServe(sock, msid));
  }
  const refs = ids.map((id, i) => ({ msid: id.msid, pcid: `agent-${i}` }));
  const withAgents = await sample();
  // The plain center keeps what a center must: one result per agent.
  const results = new Map<string, { id: number; at: number }>();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const all = lanes(count, CONCURRENCY, async (i) => {
    const ref = refs[i]!;
    await plainRound(await connector!.connect(ref), i, ref.msid);
    results.set(ref.msid, { id: i, at: Date.now() });
  });
  await within(all, LIMIT_MS, `plain exchange with ${count} agents`);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(cpu0);
  if (results.size !== count) throw new Error(`plain exchange: ${results.size} of ${count} answered`);
  const done = await sample();
  for (const r of refs) connector.unregister(r.msid);
  const after = await sample();
  connector = undefined;
  return memoryRun(`plain: ${count} answered in ${seconds.toFixed(2)} s using ${cpu.toFixed(2)} s of CPU`, seconds, before, withAgents, done, after);
}

/** A {@link MemoryRun} from its samples, with the detail line. */
function memoryRun(what: string, seconds: number, before: MemSample, agents: MemSample, done: MemSample, after: MemSample): MemoryRun {
  const mb = (a: MemSample, b: MemSample) => growthMB(a, b).toFixed(1);
  return {
    seconds,
    before,
    agents,
    done,
    after,
    detail: `${what}; heap+external MB: agents made +${mb(before, agents)}, during the dispatch (agents alive) +${mb(agents, done)}, center after agents dropped +${mb(before, after)} (rss +${rssMB(before, after).toFixed(1)})`,
  };
}
