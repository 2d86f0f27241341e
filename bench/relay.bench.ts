/**
 * Relay figures (issue 3, "Measured in `npm run bench`"): throughput and
 * added round-trip time through a gateway against a plain `net` pipe relay,
 * memory per idle server session at one gateway against plain idle TCP
 * connections, controller logins per CPU second against Node's TLS 1.3, and
 * re-home time after a gateway is killed against a cold start. Ours and the
 * baseline run side by side in each figure, every role in its own process
 * (bench/relay-measure.ts does the measuring; the experiment scripts in
 * examples/experiments/ print the same measurements as tables).
 */
import { defineFigures, median } from './harness.js';
import { idleMemory, logins, rehome, roundTrips, throughput, withPaths, type Direction, type IdleMemory } from './relay-measure.js';

const KiB = 1024;
const TOTAL_MIB = 256;
const RTT_ROUNDS = 1000;
const SESSIONS = 10_000;
const REHOME_SERVERS = 1000;

/** Print the spread of a figure's samples to stderr (stdout carries one line per figure). */
function spread(name: string, unit: string, samples: Record<string, readonly number[]>): void {
  const parts = Object.entries(samples).map(([k, xs]) => `${k} [${xs.map((x) => x.toFixed(x >= 100 ? 0 : 1)).join(', ')}]`);
  process.stderr.write(`${name}: ${unit} ${parts.join(' | ')}\n`);
}

function throughputFigure(direction: Direction, endToEnd: boolean) {
  const arrow = direction === 'client-to-server' ? 'client→server' : 'server→client';
  const name = `relay throughput ${arrow} ${endToEnd ? 'e2e' : 'no-e2e'} native ${TOTAL_MIB}MiB/256KiB`;
  return {
    name,
    unit: 'MB/s',
    // One connection: this process (client) → gateway process → server
    // process (relay server and the app); the baseline: this process → plain
    // relay process → the same server process's plain TCP app. The issue's
    // bound is ≥ 0.5 of the plain relay with the end-to-end layer on; without
    // it there is less work, so the same bound applies.
    target: { better: 'higher' as const, ratio: 0.5 },
    async run() {
      const r = await withPaths((paths) => throughput(paths, direction, endToEnd, { totalMiB: TOTAL_MIB, rounds: 8 }));
      spread(name, 'MB/s', { ours: r.ours, 'plain-net-relay': r.plain });
      return { ours: median(r.ours), baseline: median(r.plain), baselineName: 'plain-net-relay' };
    },
  };
}

function rttFigure(endToEnd: boolean) {
  const name = `relay added rtt 8B ${endToEnd ? 'e2e' : 'no-e2e'} native x${RTT_ROUNDS * 2}`;
  return {
    name,
    unit: 'µs',
    // Added round-trip time of an 8-byte ping-pong over a direct loopback
    // connection to the same app: median(through the relay) − median(direct),
    // for ours (gateway process, relay server) and for the plain net relay,
    // the seed's (C − (A + B)) on one machine. The seed measured 0.212 ms
    // added on a LAN, as (C − (A + B)) / 2 = 0.423 / 2; we hold our whole
    // added round trip to the seed's half.
    target: { better: 'lower' as const, ours: 212 },
    async run() {
      const r = await withPaths((paths) => roundTrips(paths, endToEnd, { rounds: RTT_ROUNDS, repeats: 2 }));
      const direct = median(r.direct);
      process.stderr.write(`${name}: median RTT µs: direct ${direct.toFixed(1)}, plain relay ${median(r.plain).toFixed(1)}, ours ${median(r.ours).toFixed(1)} (p99 ours ${[...r.ours].sort((a, b) => a - b)[Math.floor(r.ours.length * 0.99)]!.toFixed(0)})\n`);
      return { ours: median(r.ours) - direct, baseline: median(r.plain) - direct, baselineName: 'plain-net-relay' };
    },
  };
}

// Both memory figures come from one run (it takes a minute): the first
// figure that runs measures, the other reuses it.
let memory: Promise<IdleMemory> | undefined;
const measureMemory = () =>
  (memory ??= idleMemory({ sessions: SESSIONS, serverProcesses: 2, log: (s) => process.stderr.write(`relay idle memory: ${s}\n`) }).then((m) => {
    const kib = (x: { before: { rss: number; heapUsed: number; external: number }; after: { rss: number; heapUsed: number; external: number } }) =>
      `rss ${((x.after.rss - x.before.rss) / KiB / m.sessions).toFixed(2)}, heap ${((x.after.heapUsed - x.before.heapUsed) / KiB / m.sessions).toFixed(2)}, external ${((x.after.external - x.before.external) / KiB / m.sessions).toFixed(2)}`;
    process.stderr.write(`relay idle memory KiB per session: ours ${kib(m.ours)} | plain ${kib(m.plain)}\n`);
    return m;
  }));

function memoryFigure(kind: 'rss' | 'heap') {
  return {
    name: `relay idle server session memory ${kind} x${SESSIONS}`,
    unit: 'KiB',
    // The gateway alone in its process; 10,000 relay servers with default
    // options in two other processes; memory after a full GC, before and
    // after, divided by 10,000. `heap` is V8's heap plus memory held outside
    // it by JS objects (Buffers): what the gateway's own code keeps per
    // session. Baseline: a plain `net` server process accepting as many idle
    // connections, measured the same way.
    target: { better: 'lower' as const, ours: 20 },
    async run() {
      const m = await measureMemory();
      const per = (x: IdleMemory['plain']) =>
        (kind === 'rss' ? x.after.rss - x.before.rss : x.after.heapUsed + x.after.external - x.before.heapUsed - x.before.external) / KiB / m.sessions;
      return { ours: per(m.ours), baseline: per(m.plain), baselineName: 'plain-net-idle-tcp' };
    },
  };
}

function loginFigure(pool: number) {
  const name = `relay controller logins native ${pool === 256 ? '256 known servers' : `${pool} servers (beyond the cert cache)`}`;
  return {
    name,
    unit: 'logins/CPU-s',
    // Logins the controller answers per second of its one core: answered
    // logins / the controller process's CPU time, with 64 in flight from a
    // load process (each a fresh TCP connection, XX handshake with
    // certificates, one login request: a pick, a signed token). Baseline:
    // Node's TLS 1.3 with client certificates and one request/reply line per
    // connection — the same work a conventional SSL controller (the seed's)
    // does per login, minus the store and the token — with the same load
    // and identities, counted the same way. Plain TCP request/reply would
    // only measure the kernel; handshakes alone would leave out the request.
    target: { better: 'higher' as const, ours: 1000 },
    async run() {
      const r = await logins({ pool, logins: 3000, concurrency: 64, runs: 3, log: (s) => process.stderr.write(`${name}: ${s}\n`) });
      spread(name, 'logins/CPU-s', { ours: r.ours.map((x) => x.perCpuSecond), 'node-tls1.3': r.tls.map((x) => x.perCpuSecond) });
      return { ours: median(r.ours.map((x) => x.perCpuSecond)), baseline: median(r.tls.map((x) => x.perCpuSecond)), baselineName: 'node-tls1.3-mutual+request' };
    },
  };
}

export const figures = defineFigures([
  throughputFigure('client-to-server', true),
  throughputFigure('client-to-server', false),
  throughputFigure('server-to-client', true),
  throughputFigure('server-to-client', false),
  rttFigure(true),
  rttFigure(false),
  memoryFigure('rss'),
  memoryFigure('heap'),
  loginFigure(4096),
  loginFigure(256),
  {
    name: `relay re-home ${REHOME_SERVERS} servers after SIGKILL of their gateway`,
    unit: 's',
    // 1,000 relay servers (default backoff) on gateway-1, two more gateways,
    // every gateway and the servers in their own processes: SIGKILL
    // gateway-1 and time until every server is online on another. Baseline:
    // 1,000 fresh servers coming online at once from a cold start on the
    // same system, in the same run.
    target: { better: 'lower' as const, ours: 10 },
    async run() {
      const r = await rehome({ servers: REHOME_SERVERS, others: 2 });
      process.stderr.write(`relay re-home: ${(r.rehomeMs / 1000).toFixed(2)} s; cold start of as many ${(r.coldMs / 1000).toFixed(2)} s\n`);
      return { ours: r.rehomeMs / 1000, baseline: r.coldMs / 1000, baselineName: 'cold-start-1000-servers' };
    },
  },
]);
