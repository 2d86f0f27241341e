/**
 * Key-address listener figures: connection set-up time through the
 * key-address listener against a plain listener, in the same run and the
 * same network namespace (issue 6's target: within 10%).
 *
 * The bench creates a namespace with a random ULA /64 routed locally
 * (`ip -6 route add local PREFIX/64 dev lo`, and for the `bind` figure
 * `net.ipv6.ip_nonlocal_bind=1`), runs bench/keyaddress-net-worker.ts in it
 * (Node cannot enter a namespace in-process) and deletes the namespace
 * afterwards. One sample = CONNECTIONS sequential connect + accept + first
 * byte round trips, in µs per connection:
 *
 * - ours: each to the client's next key address (the sample's addresses
 *   are taken from KeyAddressClient.next() before the clock starts: the
 *   figure is the listener's cost, not the client's), admitted by a
 *   KeyAddressListener over a KeyAddressServer window (admit(): lookup,
 *   retirement, window refill — one chain step), then the byte;
 * - baseline `plain-listener`: a plain `net` server on `[::]:PORT`, each
 *   connection to one fixed address of the same /64, then the byte.
 *
 * A third figure (`… vs fresh addresses`) takes as baseline the plain
 * listener dialled at a fresh random address of the /64 every time: the
 * kernel's own cost for a new destination per connection (which key
 * addresses pay by design), so its ratio is what the admission itself
 * (window lookup, retirement, refill) costs.
 *
 * A fourth (`…, listener only`) runs the admission listener over the same
 * key addresses in an O(1) window (a list computed before timing, admit()
 * one comparison): the listener's own cost, without the ratchet's
 * per-admission derivation in KeyAddressServer.admit(). The gap between it
 * and the first figure is what the window costs.
 *
 * A fifth (`…, client thread`) runs the client loop in a worker thread of
 * the worker process (its own event loop, as a client on another host has):
 * the server's work after it hands a connection over (the deferred
 * look-ahead refill, one chain step) then overlaps the client's work
 * instead of adding to it. Its CPU line still counts both threads.
 *
 * A sixth and seventh (`…, client in its own namespace` and the same
 * `…, listener only`), and an eighth (`…, own CPUs`: the sixth with the
 * server bound to CPU 1 and the client to CPU 0 by `taskset`, so they never
 * share one, as a client and a server on two hosts do not; needs two CPUs)
 * measure it as a deployment runs it: the client in its
 * own process in a second namespace, joined to the server's by a veth pair
 * with the /64 routed to the server (test/keyaddress/fixtures/netns.ts
 * namespacePair()); both listeners in one server process, dialled
 * alternately by the one client process, warm. The server's work after an
 * accept (the deferred refill) then runs on the server's own event loop,
 * not the client's. Wall time is the client's; stderr gives the CPU per
 * connection of each process (for the server also its event-loop thread
 * alone, without V8's background GC and compiler threads), the plain
 * listener dialled at fresh random addresses (sampled after each baseline
 * sample: what a new destination per connection costs the kernels), and
 * the TCP metrics cache size in each namespace (`ip tcp_metrics show`).
 * Both namespaces run with `net.ipv4.tcp_no_metrics_save=1`, the setting
 * docs/keyaddress.md recommends on key-address hosts (without it the cache
 * keeps one entry per key address dialled); it holds for both sides.
 *
 * In the first five, both listeners live in the one worker process and are measured
 * alternately (harness `sideBySide`), after WARMUP connections to each
 * (the first two thousand or so connections of a process are slower for
 * both, the key-address path more: JIT). Before timing, the worker checks that
 * a fresh key address is admitted, the same address again and a random
 * address of the /64 are refused, and the plain server answers.
 *
 * Each figure also prints, on stderr, the CPU time per connection of the
 * worker (client and server sides together, user + system) for ours and the
 * baseline, and the load average: on a machine shared with other work CPU
 * time moves far less than the wall-clock figure.
 *
 * Where namespaces cannot be created (not root, not Linux, or
 * GATESOCK_NO_NETNS set) the figures are left out with one stderr line,
 * never failed.
 */
import { execFile } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ip, localNamespace, namespacePair, namespacesAvailable, runInNamespace, type NsChild } from '../test/keyaddress/fixtures/netns.js';
import { defineFigures, median, sideBySide, type Figure } from './harness.js';

const CONNECTIONS = 300;
const ROUNDS = 7;
/**
 * Rounds of the namespace-pair figures: cross-process wake-ups make single
 * samples swing more (a round is ≈ 0.1 s per side, so 15 are cheap).
 */
const PAIR_ROUNDS = 15;
/**
 * Warm-up connections per side before timing. The first thousand or two
 * connections of a process are slower (JIT): the server's admission path is
 * optimised only after ≈ 2,000 connections (--trace-opt).
 */
const WARMUP = 3000;
/** Warm-up of the `fresh` info sample of the namespace-pair figure. */
const FRESH_WARMUP = 1000;
const worker = fileURLToPath(new URL('./keyaddress-net-worker.ts', import.meta.url));
/**
 * Set to 1 in both namespaces of the namespace-pair figures: the kernel's
 * TCP metrics cache otherwise records every key address dialled (docs:
 * "What the kernel keeps"), and key-address hosts are told to turn it off.
 */
const NO_METRICS_SAVE = 'net.ipv4.tcp_no_metrics_save';

function figure(mode: 'admit' | 'bind', baseline: 'plain' | 'fresh' = 'plain', window: 'ratchet' | 'list' = 'ratchet', client: 'same' | 'thread' = 'same'): Figure {
  const name =
    `keyaddress-listener set-up ${mode} x ${CONNECTIONS}${baseline === 'fresh' ? ' vs fresh addresses' : ''}` +
    `${window === 'list' ? ', listener only' : ''}${client === 'thread' ? ', client thread' : ''}`;
  const cmd = (what: string) => (client === 'thread' ? `${what}-t` : what);
  return {
    name,
    unit: 'µs/connection',
    // The target for the admission listener: within 10% of plain.
    // `bind` (a socket per acceptable address, rebinding as the window
    // moves) costs a close and a bind per session: informational, 1.5×.
    target: { better: 'lower', ratio: mode === 'admit' ? 1.1 : 1.5 },
    async run() {
      const ns = await localNamespace({ nonlocalBind: mode === 'bind' });
      const child = runInNamespace(ns.ns, worker, [ns.prefix, mode, window]);
      try {
        await child.next(30_000); // ready
        const check = await ask(child, 'check');
        if (check.ok !== true) throw new Error(`check before timing failed: ${String(check.why)}`);
        await ask(child, `${cmd('ours')} ${WARMUP}`); // warm-up (JIT) of both paths
        await ask(child, `${cmd(baseline)} ${WARMUP}`);
        const cpu = { ours: [] as number[], baseline: [] as number[] };
        const sample = async (cmd: string, into: number[]) => {
          const r = await ask(child, `${cmd} ${CONNECTIONS}`);
          into.push(r.cpu as number);
          return r.us as number;
        };
        const m = await sideBySide(
          ROUNDS,
          () => sample(cmd('ours'), cpu.ours),
          () => sample(cmd(baseline), cpu.baseline),
        );
        // CPU time per connection moves far less than wall time when other
        // processes load the machine: an info line beside the figure.
        const o = median(cpu.ours);
        const b = median(cpu.baseline);
        console.error(`${name}: CPU per connection ${o.toFixed(1)} µs vs ${b.toFixed(1)} µs (ratio ${(o / b).toFixed(2)}); load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
        return { ...m, baselineName: baseline === 'plain' ? 'plain-listener' : 'plain-listener-fresh-addresses' };
      } finally {
        child.child.stdin!.end();
        child.kill('SIGKILL');
        await child.exited;
        await ns.destroy();
      }
    },
  };
}

/** Send one command line to a worker and wait for its JSON answer (throws on {"error"}). */
async function ask(child: NsChild, cmd: string): Promise<Record<string, unknown>> {
  child.child.stdin!.write(cmd + '\n');
  const line = await child.next(60_000);
  if (line.error !== undefined) throw new Error(`worker: ${String(line.error)}`);
  return line;
}

/** Entries in a namespace's TCP metrics cache (`ip tcp_metrics show`), IPv6. */
async function tcpMetrics(ns: string): Promise<number> {
  // One line per entry (≈ 120 bytes): more than execFile's default 1 MB after ≈ 9,000 connections.
  const out = await new Promise<string>((resolve, reject) =>
    execFile('ip', ['-n', ns, '-6', 'tcp_metrics', 'show'], { timeout: 10_000, maxBuffer: 64 << 20 }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
  );
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

/**
 * Admit mode with the client in its own process, in a second namespace
 * joined to the server's by a veth pair, the /64 routed to the server
 * (test/keyaddress/fixtures/netns.ts namespacePair()), as a deployment runs
 * it: the server's work after an accept (the deferred refill) no longer
 * runs on the client's event loop. Both listeners (ours and the plain
 * baseline) live in the one server process and are dialled alternately by
 * the one client process, warm (WARMUP each). Wall time is the client's;
 * the stderr line gives CPU per connection of each process (client and
 * server) for ours and the baseline, and how many TCP metrics entries
 * (`ip tcp_metrics show`) each namespace holds at the end.
 */
function pairFigure(window: 'ratchet' | 'list', pinned = false): Figure {
  const name = `keyaddress-listener set-up admit x ${CONNECTIONS}, client in its own namespace${window === 'list' ? ', listener only' : ''}${pinned ? ', own CPUs' : ''}`;
  return {
    name,
    unit: 'µs/connection',
    target: { better: 'lower', ratio: 1.1 },
    async run() {
      const pair = await namespacePair();
      // The deployment docs/keyaddress.md recommends on key-address hosts
      // ("What the kernel keeps"), set in both namespaces before anything
      // runs, so it holds for ours and the plain baseline alike.
      for (const ns of [pair.server, pair.client]) await ip(['netns', 'exec', ns, 'sysctl', '-q', '-w', `${NO_METRICS_SAVE}=1`]);
      // Pinned: the server on CPU 1 and the client on CPU 0, as on two hosts; unpinned, the scheduler
      // may put both on one CPU, and then the wall time is the two processes' CPU added up.
      const server = runInNamespace(pair.server, worker, [pair.prefix, 'admit', window, 'server'], pinned ? 1 : undefined);
      const client = runInNamespace(pair.client, worker, [pair.prefix, 'admit', window, 'client'], pinned ? 0 : undefined);
      try {
        await Promise.all([server.next(30_000), client.next(30_000)]); // ready
        const check = await ask(client, 'check');
        if (check.ok !== true) throw new Error(`check before timing failed: ${String(check.why)}`);
        await ask(client, `ours ${WARMUP}`);
        await ask(client, `plain ${WARMUP}`);
        await ask(client, `fresh ${FRESH_WARMUP}`);
        type Side = { ours: number[]; plain: number[]; fresh: number[] };
        const cpu: { client: Side; server: Side; loop: Side } = {
          client: { ours: [], plain: [], fresh: [] },
          server: { ours: [], plain: [], fresh: [] },
          loop: { ours: [], plain: [], fresh: [] },
        };
        const fresh: number[] = [];
        const sample = async (what: 'ours' | 'plain' | 'fresh') => {
          const s0 = await ask(server, 'cpu');
          const r = await ask(client, `${what} ${CONNECTIONS}`);
          const s1 = await ask(server, 'cpu');
          cpu.client[what].push(r.cpu as number);
          cpu.server[what].push(((s1.cpu as number) - (s0.cpu as number)) / CONNECTIONS);
          cpu.loop[what].push(((s1.loop as number) - (s0.loop as number)) / CONNECTIONS);
          return r.us as number;
        };
        // The plain listener dialled at a fresh random address each time
        // (what the kernels cost for a new destination per connection, which
        // key addresses pay by design) is sampled right after each baseline
        // sample: an info line, not the figure's baseline.
        const m = await sideBySide(
          PAIR_ROUNDS,
          () => sample('ours'),
          async () => {
            const b = await sample('plain');
            fresh.push(await sample('fresh'));
            return b;
          },
        );
        const line = (side: 'client' | 'server' | 'loop', label: string = side) => {
          const o = median(cpu[side].ours);
          const b = median(cpu[side].plain);
          return `${label} ${o.toFixed(1)} vs ${b.toFixed(1)} µs (${(o / b).toFixed(2)}; fresh ${median(cpu[side].fresh).toFixed(1)})`;
        };
        const total = (what: 'ours' | 'plain' | 'fresh') => median(cpu.client[what].map((c, i) => c + cpu.server[what][i]!));
        const metrics = `tcp_metrics entries: client ns ${await tcpMetrics(pair.client)}, server ns ${await tcpMetrics(pair.server)}`;
        console.error(
          `${name}: CPU per connection ${line('server')} (${line('loop', 'its event-loop thread')}); ${line('client')}; ` +
            `both ${total('ours').toFixed(1)} vs ${total('plain').toFixed(1)} µs (${(total('ours') / total('plain')).toFixed(2)}; fresh ${total('fresh').toFixed(1)}); ` +
            `plain at fresh addresses ${median(fresh).toFixed(1)} µs/connection wall (${(median(fresh) / m.baseline).toFixed(2)} × plain); ${metrics} (${NO_METRICS_SAVE}=1); ` +
            `load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
        );
        return { ...m, baselineName: 'plain-listener' };
      } finally {
        for (const c of [client, server]) {
          c.child.stdin!.end();
          c.kill('SIGKILL');
        }
        await Promise.all([client.exited, server.exited]);
        await pair.destroy();
      }
    },
  };
}

const available = await namespacesAvailable();
if (!available.ok) console.error(`keyaddress-net.bench.ts: skipping the key-address listener figures: ${available.why}`);

export const figures = defineFigures(
  available.ok
    ? [
        figure('admit'),
        figure('admit', 'fresh'),
        figure('admit', 'plain', 'list'),
        figure('admit', 'plain', 'ratchet', 'thread'),
        pairFigure('ratchet'),
        pairFigure('list'),
        ...(availableParallelism() >= 2 ? [pairFigure('ratchet', true)] : []),
        figure('bind'),
      ]
    : [],
);
