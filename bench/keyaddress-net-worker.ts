/**
 * The in-namespace half of bench/keyaddress-net.bench.ts, run as
 * `ip netns exec NS node --import scripts/ts-register.mjs bench/keyaddress-net-worker.ts PREFIX MODE [WINDOW]`
 * in a namespace whose /64 is routed locally on `lo`.
 *
 * Two listeners in this process: a KeyAddressListener (admission mode
 * `admit`, or `bind`; parallel model) over a real KeyAddressServer window,
 * (WINDOW `ratchet`, the default; or `list`, the same addresses in an O(1)
 * window, to time the listener alone), and a plain `net` server on `::`. Each sends one byte to every connection
 * it keeps. Commands on stdin, one JSON line each on stdout:
 *
 *   check        verify before timing: a fresh key address is admitted and
 *                gets its byte, the same address again is refused, a random
 *                address of the /64 is refused, the plain server answers →
 *                {"ok":true} or {"ok":false,"why"}
 *   ours N       N sequential connect + accept + first byte round trips, each
 *                to the client's next key address (the N addresses taken from
 *                the client before timing) → {"us": mean wall-clock µs per
 *                connection, "cpu": this process's CPU µs (user + system) per
 *                connection — client and server sides both, as both run here}
 *   plain N      the same to the plain server at one fixed address of the /64
 *                (`PREFIX::1`) → {"us": …}
 *   fresh N      the same to the plain server, each connection at a fresh
 *                random address of the /64 (what the kernel costs for a new
 *                destination every time, without any admission) → {"us": …}
 *
 *   ours-t N, plain-t N, fresh-t N
 *                the same, with the client loop in a worker thread (its own
 *                event loop, as a client on another host would have): the
 *                server's work after handing a connection over (the
 *                deferred look-ahead refill) then overlaps the client's
 *                instead of delaying it → {"us", "cpu" (both threads)}
 *
 * Each timed connection is checked (the byte arrived; ours admitted, not
 * reset) and the worker answers {"error"} otherwise.
 *
 * ROLE (4th argument) splits the two halves over two processes, for the
 * figure whose client runs in its own namespace (a client on another host):
 *
 *   both     (default) listeners and client loop in this one process, as above
 *   server   only the two listeners (same ports); commands: `cpu` →
 *            {"cpu": this process's CPU µs so far (user + system, all
 *            threads), "loop": its main thread's alone (the event loop that
 *            accepts and admits; the rest is V8's GC and compiler threads)}
 *   client   only the client loop, dialling across the veth pair to the
 *            server namespace's /64; commands `check`, `ours N`, `plain N`,
 *            `fresh N` as above ("cpu" then counts the client process alone)
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
// Narrow imports (not the folder's index): the child loads only what it runs.
import { formatIpv6, parsePrefix } from '../src/keyaddress/address.js';
import { KeyAddressClient } from '../src/keyaddress/client.js';
import { KeyAddressServer } from '../src/keyaddress/server.js';
import { KeyAddressListener, type AdmissionWindow, type ListenerMode } from '../src/keyaddress/listener.js';

const [prefix, mode, windowKind = 'ratchet', role = 'both'] = process.argv.slice(2) as [string, ListenerMode, ('ratchet' | 'list')?, ('both' | 'server' | 'client')?];
const SECRET = { passphrase: 'bench passphrase', kdf: { N: 16, r: 1, p: 1 } };
const OURS_PORT = 7400;
/** Addresses in the `list` window and taken from the client: more than any run takes (warm-up 3,000 + up to 15 rounds × 300 + checks). */
const LIST_LENGTH = 8000;
const PLAIN_PORT = 7401;

const client = KeyAddressClient.fromPassphraseSync(SECRET, { prefix });
const serves = role !== 'client';
const window: AdmissionWindow | undefined = !serves ? undefined : windowKind === 'list' ? listWindow() : KeyAddressServer.fromPassphraseSync(SECRET, { prefix });

/**
 * `list`: the same key addresses (a second client of the same passphrase,
 * computed before anything is timed) in a window whose admit() is one
 * comparison — so a figure over it measures the listener alone, without
 * the ratchet's per-admission derivation.
 */
function listWindow(): AdmissionWindow {
  const twin = KeyAddressClient.fromPassphraseSync(SECRET, { prefix });
  const list = Array.from({ length: LIST_LENGTH }, () => twin.next().address);
  let pos = 0;
  return {
    acceptable: () => (pos < list.length ? [list[pos]!] : []),
    admit: (address) => {
      if (address !== list[pos]) return { ok: false, reason: list.indexOf(address) >= 0 ? 'retired' : 'unknown' };
      pos++;
      return { ok: true };
    },
  };
}
const greet = (socket: Socket) => {
  socket.on('error', () => undefined);
  socket.write(Buffer.of(0x2a));
  socket.on('end', () => socket.end());
};
const listener = window ? await KeyAddressListener.listen({ prefix, port: OURS_PORT, windows: [window], mode, model: 'parallel' }, greet) : undefined;
const plain = serves ? createServer({ noDelay: true }, greet) : undefined;
if (plain) await new Promise<void>((r) => plain.listen({ port: PLAIN_PORT, host: '::', backlog: 511 }, r));
const fixed = (() => {
  const b = parsePrefix(prefix).bytes;
  b[15] = 1;
  return formatIpv6(b);
})();
const random = () => {
  const b = parsePrefix(prefix).bytes;
  b.set(randomBytes(8), 8);
  return formatIpv6(b);
};

/**
 * The client's addresses, taken from `client.next()` in one go at start
 * (LIST_LENGTH of them), so that no client-side ratchet work, nor its
 * garbage, falls just before or inside a timed loop.
 */
const clientAddresses = role === 'server' ? [] : Array.from({ length: LIST_LENGTH }, () => client.next().address);
let taken = 0;
function nextAddress(): string {
  const a = clientAddresses[taken++];
  if (a === undefined) throw new Error(`the worker's ${LIST_LENGTH} client addresses are used up`);
  return a;
}

/** One connect + first byte; resolves 'byte', 'reset' or 'refused'. */
function once(host: string, port: number): Promise<'byte' | 'reset' | 'refused'> {
  return new Promise((resolve) => {
    const s = connect({ host, port, noDelay: true });
    let done = false;
    const finish = (r: 'byte' | 'reset' | 'refused') => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(r);
    };
    s.once('data', () => finish('byte'));
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNREFUSED' ? 'refused' : 'reset'));
    s.on('close', () => finish('reset'));
  });
}

/**
 * The client loop of run(), as a worker thread's source (plain JS: the
 * thread needs only node:net). Message in: { targets, port }; out:
 * { us } or { error }.
 */
const CLIENT_THREAD = `
const { connect } = require('node:net');
const { parentPort } = require('node:worker_threads');
${once.toString() /* this file runs type-stripped: once() is plain JS using only connect() */}
parentPort.on('message', async ({ targets, port }) => {
  try {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < targets.length; i++) {
      const r = await once(targets[i], port);
      if (r !== 'byte') throw new Error('connection ' + i + ' was ' + r);
    }
    parentPort.postMessage({ us: Number(process.hrtime.bigint() - t0) / 1000 / targets.length });
  } catch (error) {
    parentPort.postMessage({ error: String(error) });
  }
});
`;
let clientThread: Worker | undefined;

async function runInThread(n: number, target: 'ours' | 'plain' | 'fresh'): Promise<{ us: number; cpu: number }> {
  const ours = target === 'ours';
  const targets = Array.from({ length: n }, () => (ours ? nextAddress() : target === 'fresh' ? random() : fixed));
  clientThread ??= new Worker(CLIENT_THREAD, { eval: true });
  const thread = clientThread;
  const c0 = process.cpuUsage();
  const r = await new Promise<{ us?: number; error?: string }>((resolve, reject) => {
    thread.once('message', resolve);
    thread.once('error', reject);
    thread.postMessage({ targets, port: ours ? OURS_PORT : PLAIN_PORT });
  });
  const cpu = process.cpuUsage(c0);
  thread.removeAllListeners('error');
  if (r.error !== undefined || r.us === undefined) throw new Error(`${target} (client thread): ${r.error}`);
  return { us: r.us, cpu: (cpu.user + cpu.system) / n };
}

async function run(n: number, target: 'ours' | 'plain' | 'fresh'): Promise<{ us: number; cpu: number }> {
  const ours = target === 'ours';
  // The client's addresses are computed before the clock starts: the figure
  // is the listener's set-up time (the client's next() is client-side work,
  // measured on its own in the notes / docs).
  const targets = Array.from({ length: n }, () => (ours ? nextAddress() : target === 'fresh' ? random() : fixed));
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = await once(targets[i]!, ours ? OURS_PORT : PLAIN_PORT);
    if (r !== 'byte') throw new Error(`${ours ? 'key-address' : 'plain'} connection ${i} was ${r}`);
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1000 / n;
  const cpu = process.cpuUsage(c0);
  return { us: wall, cpu: (cpu.user + cpu.system) / n };
}

/**
 * CPU time of this process's main thread so far, µs: the event loop that
 * accepts, admits and refills, without V8's background GC and compiler
 * threads (whose bursts process.cpuUsage() also counts). Linux's
 * /proc/self/task/PID/schedstat (run time in ns); NaN where unreadable.
 */
function loopCpu(): number {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
  } catch {
    return NaN;
  }
}

const say = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
say({ ready: true });
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, arg] = line.trim().split(/\s+/);
  try {
    if (cmd === 'cpu') {
      // Role `server`: this process's CPU time so far (user + system, µs);
      // the bench reads it before and after a client's sample.
      const c = process.cpuUsage();
      say({ cpu: c.user + c.system, loop: loopCpu() });
    } else if (role === 'server') {
      say({ error: `role server takes only cpu, not ${cmd}` });
    } else if (cmd === 'check') {
      const address = nextAddress();
      const first = await once(address, OURS_PORT);
      // In `bind` mode the used address's socket closes asynchronously (bounded wait).
      let again = await once(address, OURS_PORT);
      for (let i = 0; mode === 'bind' && again !== 'refused' && i < 50; i++) {
        await new Promise((r) => setTimeout(r, 10));
        again = await once(address, OURS_PORT);
      }
      const rnd = await once(random(), OURS_PORT);
      const base = await once(fixed, PLAIN_PORT);
      const refused = mode === 'bind' ? 'refused' : 'reset';
      const ok = first === 'byte' && again === refused && rnd === refused && base === 'byte';
      say(ok ? { ok } : { ok, why: `fresh ${first}, again ${again}, random ${rnd}, plain ${base}` });
    } else if (cmd === 'ours' || cmd === 'plain' || cmd === 'fresh') {
      say(await run(Number(arg), cmd));
    } else if (cmd === 'ours-t' || cmd === 'plain-t' || cmd === 'fresh-t') {
      say(await runInThread(Number(arg), cmd.slice(0, -2) as 'ours' | 'plain' | 'fresh'));
    } else say({ error: `unknown command ${cmd}` });
  } catch (error) {
    say({ error: String(error) });
  }
}
await clientThread?.terminate();
await listener?.close();
plain?.close();
