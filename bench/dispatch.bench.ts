/**
 * Verifiable dispatch figures (issue 7, "Measured in `npm run bench`"):
 * a no-op bundle dispatched to 5,000 agents in this process and to 100
 * agents over a real loopback relay, each result verified (agent signature,
 * evidence value, bundle digest) before it counts; the time to all
 * verified, the center's memory growth, and the time per agent. The
 * baseline in every figure is the same request/response round trip per
 * agent over the same transport and concurrency with nothing signed or
 * verified (bench/dispatch-plain.ts), so the ratio is what verification
 * costs. Set-ups and what is counted: bench/dispatch-memory.ts,
 * bench/dispatch-relay.ts.
 *
 * The time per agent is the wall time to all verified divided by the number
 * of agents, with 64 agents worked on at once (the center's default), not
 * one agent's latency. The seed measured about 380 ms per agent.
 */
import { defineFigures, median } from './harness.js';
import { dispatchInMemory, growthMB, plainInMemory, type MemoryRun } from './dispatch-memory.js';
import { dispatchOverRelay, type RelayRun } from './dispatch-relay.js';
import { loadavg } from 'node:os';

const AGENTS = 5000;
const WARM_UP_AGENTS = 100;
const RELAY_AGENTS = 100;
const RELAY_ROUNDS = 5;

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

// The in-memory figures share one run (the plain baseline first, then
// ours), the relay figures another: the first figure that runs measures.
let memory: Promise<{ ours: MemoryRun; plain: MemoryRun }> | undefined;
const inMemory = () =>
  (memory ??= (async () => {
    process.stderr.write(`dispatch in-memory: ${AGENTS} agents, load average ${load()}\n`);
    // Warm-up (JIT, module imports, SQLite driver): a small run of each, discarded.
    await plainInMemory(WARM_UP_AGENTS);
    await dispatchInMemory(WARM_UP_AGENTS);
    const plain = await plainInMemory(AGENTS);
    process.stderr.write(`dispatch in-memory: ${plain.detail}\n`);
    const ours = await dispatchInMemory(AGENTS);
    process.stderr.write(`dispatch in-memory: ${ours.detail}; load average ${load()}\n`);
    return { ours, plain };
  })());

let relay: Promise<RelayRun> | undefined;
const overRelay = () =>
  (relay ??= (async () => {
    process.stderr.write(`dispatch relay: ${RELAY_AGENTS} agents, load average ${load()}\n`);
    const r = await dispatchOverRelay(RELAY_AGENTS, RELAY_ROUNDS);
    const s = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');
    process.stderr.write(`dispatch relay: ${r.detail}; s per round: ours [${s(r.ours)}] | plain [${s(r.plain)}]; load average ${load()}\n`);
    return r;
  })());

export const figures = defineFigures([
  {
    name: `dispatch ${AGENTS} agents in-memory: time to all verified`,
    unit: 's',
    // The bound: all 5,000 verified within 30 s on this machine.
    target: { better: 'lower', ours: 30 },
    async run() {
      const { ours, plain } = await inMemory();
      return { ours: ours.seconds, baseline: plain.seconds, baselineName: 'plain-json-exchange' };
    },
  },
  {
    name: `dispatch ${AGENTS} agents: center memory growth`,
    unit: 'MB',
    // The bound: center memory growth ≤ 100 MB. V8 heap + external
    // still held once the agents are closed and dropped (dispatch-memory.ts).
    target: { better: 'lower', ours: 100 },
    async run() {
      const { ours, plain } = await inMemory();
      return { ours: growthMB(ours.before, ours.after), baseline: growthMB(plain.before, plain.after), baselineName: 'plain-json-exchange' };
    },
  },
  {
    name: `dispatch ${AGENTS} agents in-memory: per-agent time`,
    unit: 'ms',
    // 30 s / 5,000 agents, the bound per agent.
    target: { better: 'lower', ours: 6 },
    async run() {
      const { ours, plain } = await inMemory();
      return { ours: (ours.seconds * 1000) / AGENTS, baseline: (plain.seconds * 1000) / AGENTS, baselineName: 'plain-json-exchange' };
    },
  },
  {
    name: `dispatch ${RELAY_AGENTS} agents over loopback relay: time to all verified`,
    unit: 's',
    // The seed's 380 ms per agent for 100 agents.
    target: { better: 'lower', ours: 38 },
    async run() {
      const r = await overRelay();
      return { ours: median(r.ours), baseline: median(r.plain), baselineName: 'plain-sockio-relay' };
    },
  },
  {
    name: `dispatch ${RELAY_AGENTS} agents over loopback relay: per-agent time`,
    unit: 'ms',
    // The seed measured about 380 ms per agent.
    target: { better: 'lower', ours: 380 },
    async run() {
      const r = await overRelay();
      return { ours: (median(r.ours) * 1000) / RELAY_AGENTS, baseline: (median(r.plain) * 1000) / RELAY_AGENTS, baselineName: 'plain-sockio-relay' };
    },
  },
]);
