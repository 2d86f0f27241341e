/**
 * The relay measurements (issue 3, "Measured in `npm run bench`"), shared by
 * bench/relay.bench.ts and the experiment scripts in examples/experiments/.
 * Each function starts the processes it needs (bench/relay-procs.ts), runs
 * ours and the baseline in the same run, kills every process it started, and
 * returns raw samples; the callers turn them into a bench line or a table.
 * Everything is on 127.0.0.1, with the native crypto backend.
 */
import { loadPki, relayConnect, type Certificate } from '../src/relay/index.js';
import { checkPath, dialTcp, pingPong, pull, push, type AppStream, type Dial } from './relay-app.js';
import { ensureServerIdentities, tempPki, withNodes, type RelayNode } from './relay-procs.js';

const MiB = 1 << 20;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- paths

/**
 * The three paths of the throughput and latency figures, every hop its own
 * process:
 *
 * ```
 *   direct    this process ──────────────────────────► app     (server process)
 *   plain     this process ──► plain net pipe relay ──► app     (relay process → server process)
 *   ours      this process ──► gateway (+controller) ──► relay server → app (gateway process → server process)
 * ```
 *
 * The relay server is started with `endToEnd: false`, which lets each client
 * choose: with the end-to-end layer a client runs the inner handshake and the
 * server its half, exactly as with the default; without it, bytes go as they are.
 */
export interface Paths {
  readonly direct: Dial;
  readonly plain: Dial;
  ours(endToEnd: boolean): Dial;
}

export async function withPaths<T>(body: (paths: Paths) => Promise<T>): Promise<T> {
  const pki = await tempPki(1);
  ensureServerIdentities(1);
  try {
    return await withNodes(async (start) => {
      const [gw, srv, relay] = await Promise.all([start('gateway'), start('server'), start('plain-relay')]);
      const { address: controller } = await gw.call<{ address: string }>('controller', { pki: pki.dir });
      await gw.call('gateway', { pki: pki.dir, name: 'gateway-1', controller });
      const { port: appPort } = await srv.call<{ port: number }>('app');
      const { pcids } = await srv.call<{ pcids: string[] }>('servers', { pki: pki.dir, controller, from: 0, count: 1, endToEnd: false });
      const { port: relayPort } = await relay.call<{ port: number }>('plainRelay', { target: appPort });
      const root: Certificate = (await loadPki(pki.dir)).root;
      const ours = (endToEnd: boolean): Dial => async () =>
        (await relayConnect(pcids[0]!, { controller, roots: [root], endToEnd, link: { backend: 'native', ...(process.env.BENCH_RELAY_MUX ? { mux: JSON.parse(process.env.BENCH_RELAY_MUX) as object } : {}) } })).stream as unknown as AppStream;
      return await body({ direct: dialTcp(appPort), plain: dialTcp(relayPort), ours });
    });
  } finally {
    pki.remove();
  }
}

// ---------------------------------------------------------------- throughput

export type Direction = 'client-to-server' | 'server-to-client';

export interface ThroughputOptions {
  /** Bytes timed per path, split into `rounds` transfers. Default 256 MiB. */
  totalMiB?: number;
  /** Transfers per path, ours and the baseline alternating. Default 8. */
  rounds?: number;
  /** Bytes per write. Default 256 KiB. */
  chunk?: number;
  /** Untimed warm-up per path (JIT), MiB. Default 64. */
  warmupMiB?: number;
}

/** MB/s samples of ours (one e2e setting) and of the plain relay, in one direction, alternating. */
export async function throughput(paths: Paths, direction: Direction, endToEnd: boolean, o: ThroughputOptions = {}): Promise<{ ours: number[]; plain: number[] }> {
  const rounds = o.rounds ?? 8;
  const bytes = Math.floor(((o.totalMiB ?? 256) * MiB) / rounds);
  const move = direction === 'client-to-server' ? push : pull;
  const kind = direction === 'client-to-server' ? 'push' : 'pull';
  const ours = paths.ours(endToEnd);
  // Check before timing: both paths deliver exactly the pattern (SHA-256).
  if ((await checkPath(ours, kind)) !== (await checkPath(paths.plain, kind))) throw new Error('ours and the plain relay delivered different bytes');
  const opts = { chunk: o.chunk ?? 256 * 1024, timeoutMs: 120_000 };
  const warm = (o.warmupMiB ?? 64) * MiB;
  if (warm > 0) {
    await move(ours, warm, opts);
    await move(paths.plain, warm, opts);
  }
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate which goes first, so drift hits both alike.
    if (i % 2 === 0) {
      a.push((await move(ours, bytes, opts)).mbPerSecond);
      b.push((await move(paths.plain, bytes, opts)).mbPerSecond);
    } else {
      b.push((await move(paths.plain, bytes, opts)).mbPerSecond);
      a.push((await move(ours, bytes, opts)).mbPerSecond);
    }
  }
  return { ours: a, plain: b };
}

// ---------------------------------------------------------------- latency

/** RTT samples (µs) of an 8-byte ping-pong: direct, through the plain relay, through ours. */
export async function roundTrips(paths: Paths, endToEnd: boolean, o: { rounds?: number; repeats?: number } = {}): Promise<{ direct: number[]; plain: number[]; ours: number[] }> {
  const rounds = o.rounds ?? 1000;
  const out = { direct: [] as number[], plain: [] as number[], ours: [] as number[] };
  const ours = paths.ours(endToEnd);
  for (let r = 0; r < (o.repeats ?? 2); r++) {
    const order: (keyof typeof out)[] = r % 2 === 0 ? ['direct', 'plain', 'ours'] : ['ours', 'plain', 'direct'];
    for (const k of order) out[k].push(...(await pingPong(k === 'ours' ? ours : paths[k], rounds)));
  }
  return out;
}

// ---------------------------------------------------------------- idle memory

export interface MemorySample {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

export interface IdleMemory {
  readonly sessions: number;
  /** The gateway process before and after `sessions` server sessions attached. */
  readonly ours: { before: MemorySample; after: MemorySample; attachSeconds: number };
  /** A plain `net` server process before and after accepting as many idle connections. */
  readonly plain: { before: MemorySample; after: MemorySample };
}

/**
 * Memory per idle server session at one gateway: the gateway alone in its
 * own process (run with --expose-gc), `sessions` relay servers with default
 * options in `serverProcesses` other processes, measured after a full GC
 * before any server attached and once all have (and `settleMs` passed);
 * the baseline is the same for plain idle TCP connections into a plain `net`
 * server process.
 */
export async function idleMemory(o: { sessions?: number; serverProcesses?: number; concurrency?: number; settleMs?: number; log?: (s: string) => void } = {}): Promise<IdleMemory> {
  const sessions = o.sessions ?? 10_000;
  const procs = o.serverProcesses ?? 2;
  const log = o.log ?? (() => undefined);
  ensureServerIdentities(sessions);
  const pki = await tempPki(1);
  try {
    return await withNodes(async (start) => {
      // Ours.
      const ctl = await start('controller');
      const { address: controller } = await ctl.call<{ address: string }>('controller', { pki: pki.dir });
      const gw = await start('gateway', { gc: true });
      await gw.call('gateway', { pki: pki.dir, name: 'gateway-1', controller, capacity: sessions * 2 });
      await sleep(200);
      const before = await gw.call<MemorySample>('memory');
      const per = Math.ceil(sessions / procs);
      const crowds = await Promise.all(Array.from({ length: procs }, () => start('servers')));
      const t0 = performance.now();
      await Promise.all(
        crowds.map((c, i) =>
          c.call('servers', { pki: pki.dir, controller, from: i * per, count: Math.min(per, sessions - i * per), concurrency: o.concurrency ?? 100, timeoutMs: 600_000 }, 620_000),
        ),
      );
      const attachSeconds = (performance.now() - t0) / 1000;
      log(`${sessions} server sessions attached in ${attachSeconds.toFixed(1)} s`);
      await sleep(o.settleMs ?? 2000);
      const held = (await gw.call<{ gatewaySessions: number }>('cpu')).gatewaySessions;
      if (held !== sessions) throw new Error(`the gateway holds ${held} server sessions, expected ${sessions}`);
      const after = await gw.call<MemorySample>('memory');
      await Promise.all(crowds.map((c) => c.kill()));
      await gw.kill();
      // Baseline.
      const idle = await start('idle-server', { gc: true });
      const { port } = await idle.call<{ port: number }>('idleListen');
      await sleep(200);
      const pBefore = await idle.call<MemorySample>('memory');
      const dialers = await Promise.all(Array.from({ length: procs }, () => start('idle-clients')));
      await Promise.all(dialers.map((d, i) => d.call('idleDial', { port, count: Math.min(per, sessions - i * per) })));
      await sleep(o.settleMs ?? 2000);
      const pAfter = await idle.call<MemorySample>('memory');
      return { sessions, ours: { before, after, attachSeconds }, plain: { before: pBefore, after: pAfter } };
    });
  } finally {
    pki.remove();
  }
}

// ---------------------------------------------------------------- logins

export interface LoginRun {
  /** Logins answered. */
  readonly ok: number;
  readonly failed: Record<string, number>;
  /** Wall-clock seconds of the run. */
  readonly seconds: number;
  /** CPU seconds the serving process used (user + system). */
  readonly cpuSeconds: number;
  /** `ok / cpuSeconds`: logins one core of the server can answer per second. */
  readonly perCpuSecond: number;
  /** `ok / seconds`. */
  readonly perSecond: number;
}

export interface LoginOptions {
  /** Logins per run. Default 3000. */
  logins?: number;
  /** In flight at once. Default 64. */
  concurrency?: number;
  /**
   * Distinct server identities cycled through. Default 4096, more than the
   * controller's certificate verification cache (1024), so every login
   * brings a chain the controller has not just verified (a crowd of servers
   * coming back); with 256 every chain is cached (the same servers again).
   */
  pool?: number;
  /** Runs of ours and the baseline, alternating. Default 3. */
  runs?: number;
  /** Run the TLS baseline too. Default true. */
  baseline?: boolean;
  log?: (s: string) => void;
}

/**
 * Controller logins: a controller (native backend) alone in its process, one
 * gateway registered from another, and a load process making fresh links
 * with one login request each. Baseline: the same load against Node's TLS
 * 1.3 with client certificates and one request/reply line per connection,
 * in its own process, with the same identities. Both sides' figure is
 * answered logins per CPU second of the serving process.
 */
export async function logins(o: LoginOptions = {}): Promise<{ ours: LoginRun[]; tls: LoginRun[] }> {
  const pool = o.pool ?? 4096;
  const count = o.logins ?? 3000;
  const concurrency = o.concurrency ?? 64;
  ensureServerIdentities(pool);
  const pki = await tempPki(1);
  try {
    return await withNodes(async (start) => {
      const [ctl, gw, tlsd, load] = await Promise.all([start('controller'), start('gateway'), start('tls-server'), start('load')]);
      const { address: controller } = await ctl.call<{ address: string }>('controller', { pki: pki.dir });
      await gw.call('gateway', { pki: pki.dir, name: 'gateway-1', controller, capacity: 10_000_000 });
      const { port } = await tlsd.call<{ port: number }>('tlsListen', { pki: pki.dir });
      const run = async (server: RelayNode, command: string, args: object, n: number): Promise<LoginRun> => {
        const c0 = await server.call<{ user: number; system: number }>('cpu');
        const r = await load.call<{ ok: number; failed: Record<string, number>; seconds: number }>(command, { pki: pki.dir, from: 0, pool, logins: n, concurrency, timeoutMs: 60_000, ...args });
        const c1 = await server.call<{ user: number; system: number }>('cpu');
        const cpuSeconds = (c1.user + c1.system - c0.user - c0.system) / 1e6;
        return { ...r, cpuSeconds, perCpuSecond: r.ok / cpuSeconds, perSecond: r.ok / r.seconds };
      };
      const ours = (n: number) => run(ctl, 'loginLoad', { controller }, n);
      const tls = (n: number) => run(tlsd, 'tlsLoad', { port }, n);
      // Warm-up, untimed: JIT, the identities' first parse in the load process.
      const withTls = o.baseline ?? true;
      await ours(Math.min(500, count));
      if (withTls) await tls(Math.min(500, count));
      const out = { ours: [] as LoginRun[], tls: [] as LoginRun[] };
      for (let i = 0; i < (o.runs ?? 3); i++) {
        const order = i % 2 === 0 ? (['ours', 'tls'] as const) : (['tls', 'ours'] as const);
        for (const k of order.filter((k) => withTls || k === 'ours')) {
          const r = await (k === 'ours' ? ours : tls)(count);
          if (Object.keys(r.failed).length > 0) throw new Error(`${k}: failed logins ${JSON.stringify(r.failed)}`);
          o.log?.(`${k}: ${r.ok} logins in ${r.seconds.toFixed(2)} s, server CPU ${r.cpuSeconds.toFixed(2)} s → ${r.perCpuSecond.toFixed(0)}/CPU-s, ${r.perSecond.toFixed(0)}/s wall`);
          out[k].push(r);
        }
      }
      return out;
    });
  } finally {
    pki.remove();
  }
}

// ---------------------------------------------------------------- re-home

export interface RehomeResult {
  /** Milliseconds from SIGKILL of the gateway to every server online elsewhere. */
  readonly rehomeMs: number;
  /** Milliseconds for as many fresh servers to come online from a cold start (all at once); NaN when not measured. */
  readonly coldMs: number;
}

/** One snapshot of who holds what, as the servers see it. */
export interface Tick {
  readonly ms: number;
  readonly online: number;
  /** Servers per gateway name. */
  readonly byGateway: Record<string, number>;
}

/**
 * Re-home: a controller, gateway-1 with `servers` relay servers (default
 * options: backoff from 250 ms up to 10 s, full jitter) in one process, then
 * `others` more gateways; SIGKILL gateway-1 and time until every server is
 * online on another gateway (polled every `pollMs`). Baseline: `servers`
 * fresh servers coming online at once on the surviving gateways, from a cold
 * start (identities already loaded). Each gateway is its own process.
 * `onTick` sees the state at each poll (the failover experiment prints it).
 */
export async function rehome(
  o: { servers?: number; others?: number; pollMs?: number; timeoutMs?: number; onTick?: (t: Tick) => void; stop?: 'kill' | 'drain'; coldStart?: boolean } = {},
): Promise<RehomeResult> {
  const n = o.servers ?? 1000;
  const others = o.others ?? 2;
  const pollMs = o.pollMs ?? 50;
  ensureServerIdentities(o.coldStart === false ? n : 2 * n);
  const pki = await tempPki(others + 1);
  try {
    return await withNodes(async (start) => {
      const [ctl, crowd, ...procs] = await Promise.all([start('controller'), start('servers'), ...Array.from({ length: others + 1 }, (_, i) => start(`gateway-${i + 1}`))]);
      const { address: controller } = await ctl.call<{ address: string }>('controller', { pki: pki.dir });
      const names = new Map<string, string>();
      const gws: RelayNode[] = [];
      const addGateway = async (i: number): Promise<void> => {
        const g = procs[i - 1]!;
        const { msid } = await g.call<{ msid: string }>('gateway', { pki: pki.dir, name: `gateway-${i}`, controller, capacity: 10 * n });
        names.set(msid, `gateway-${i}`);
        gws.push(g);
      };
      await addGateway(1);
      await crowd.call('servers', { pki: pki.dir, controller, from: 0, count: n, concurrency: 100 });
      for (let i = 2; i <= others + 1; i++) await addGateway(i);
      const status = async (node: RelayNode): Promise<Tick & { raw: Record<string, number> }> => {
        const s = await node.call<{ online: number; byGateway: Record<string, number> }>('serversStatus');
        const byGateway: Record<string, number> = {};
        for (const [msid, c] of Object.entries(s.byGateway)) byGateway[names.get(msid) ?? msid] = c;
        return { ms: 0, online: s.online, byGateway, raw: s.byGateway };
      };
      const first = await status(crowd);
      if (first.byGateway['gateway-1'] !== n) throw new Error(`expected ${n} servers on gateway-1, found ${JSON.stringify(first.byGateway)}`);
      const deadline = o.timeoutMs ?? 60_000;
      const t0 = performance.now();
      if (o.stop === 'drain') await gws[0]!.call('drain', undefined, 5000).catch(() => undefined);
      else await gws[0]!.kill();
      let rehomeMs = NaN;
      for (;;) {
        const s = await status(crowd);
        const ms = performance.now() - t0;
        o.onTick?.({ ms, online: s.online, byGateway: s.byGateway });
        if (s.online === n && !s.byGateway['gateway-1']) {
          rehomeMs = ms;
          break;
        }
        if (ms > deadline) throw new Error(`after ${deadline} ms only ${s.online} of ${n} servers are back: ${JSON.stringify(s.byGateway)}`);
        await sleep(pollMs);
      }
      // Baseline: as many fresh servers, cold, all at once, on the surviving gateways.
      if (o.coldStart === false) return { rehomeMs, coldMs: NaN };
      const fresh = await start('servers');
      const { ms: coldMs } = await fresh.call<{ ms: number }>('servers', { pki: pki.dir, controller, from: n, count: n, concurrency: 0, timeoutMs: deadline });
      return { rehomeMs, coldMs };
    });
  } finally {
    pki.remove();
  }
}

// ---------------------------------------------------------------- balancing

/**
 * Balancing: a controller with `strategy`, one gateway process per capacity,
 * `servers` relay servers logging in (`concurrency` at a time); returns how
 * many each gateway holds, by the controller's table.
 */
export async function balancing(o: { capacities: number[]; servers: number; strategy: 'least-sessions' | 'weighted'; concurrency?: number }): Promise<{ capacity: number; servers: number }[]> {
  ensureServerIdentities(o.servers);
  const pki = await tempPki(o.capacities.length);
  try {
    return await withNodes(async (start) => {
      const ctl = await start('controller');
      const { address: controller } = await ctl.call<{ address: string }>('controller', { pki: pki.dir, strategy: o.strategy });
      const [crowd, ...gws] = await Promise.all([start('servers'), ...o.capacities.map((_, i) => start(`gateway-${i + 1}`))]);
      const msids: string[] = [];
      for (let i = 0; i < o.capacities.length; i++) {
        msids.push((await gws[i]!.call<{ msid: string }>('gateway', { pki: pki.dir, name: `gateway-${i + 1}`, controller, capacity: o.capacities[i] })).msid);
      }
      await crowd.call('servers', { pki: pki.dir, controller, from: 0, count: o.servers, concurrency: o.concurrency ?? 50 });
      await sleep(300); // the last session deltas
      const table = await ctl.call<{ msid: string; servers: number }[]>('gateways');
      return msids.map((m, i) => ({ capacity: o.capacities[i]!, servers: table.find((g) => g.msid === m)?.servers ?? 0 }));
    });
  } finally {
    pki.remove();
  }
}
