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
 * Both listeners live in the one worker process and are measured
 * alternately (harness `sideBySide`), after WARMUP connections to each
 * (the first thousand or so connections of a process are slower for both,
 * the key-address path more: JIT). Before timing, the worker checks that
 * a fresh key address is admitted, the same address again and a random
 * address of the /64 are refused, and the plain server answers.
 *
 * Each figure also prints, on stderr, the CPU time per connection of the
 * worker (client and server sides together, user + system) for ours and the
 * baseline: on a machine shared with other work it moves far less than the
 * wall-clock figure.
 *
 * Where namespaces cannot be created (not root, not Linux, or
 * GATESOCK_NO_NETNS set) the figures are left out with one stderr line,
 * never failed.
 */
import { fileURLToPath } from 'node:url';
import { localNamespace, namespacesAvailable, runInNamespace } from '../test/keyaddress/fixtures/netns.js';
import { defineFigures, median, sideBySide, type Figure } from './harness.js';

const CONNECTIONS = 300;
const ROUNDS = 7;
const WARMUP = 1500;
const worker = fileURLToPath(new URL('./keyaddress-net-worker.ts', import.meta.url));

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
        const ask = async (cmd: string): Promise<Record<string, unknown>> => {
          child.child.stdin!.write(cmd + '\n');
          const line = await child.next(60_000);
          if (line.error !== undefined) throw new Error(`worker: ${String(line.error)}`);
          return line;
        };
        await child.next(30_000); // ready
        const check = await ask('check');
        if (check.ok !== true) throw new Error(`check before timing failed: ${String(check.why)}`);
        await ask(`${cmd('ours')} ${WARMUP}`); // warm-up (JIT) of both paths
        await ask(`${cmd(baseline)} ${WARMUP}`);
        const cpu = { ours: [] as number[], baseline: [] as number[] };
        const sample = async (cmd: string, into: number[]) => {
          const r = await ask(`${cmd} ${CONNECTIONS}`);
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
        console.error(`${name}: CPU per connection ${o.toFixed(1)} µs vs ${b.toFixed(1)} µs (ratio ${(o / b).toFixed(2)})`);
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

const available = await namespacesAvailable();
if (!available.ok) console.error(`keyaddress-net.bench.ts: skipping the key-address listener figures: ${available.why}`);

export const figures = defineFigures(
  available.ok
    ? [figure('admit'), figure('admit', 'fresh'), figure('admit', 'plain', 'list'), figure('admit', 'plain', 'ratchet', 'thread'), figure('bind')]
    : [],
);
