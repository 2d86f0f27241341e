/**
 * Processes for the relay figures and experiments: each controller, gateway,
 * crowd of servers, plain relay or load generator runs in its own Node
 * process (bench/relay-node.ts), so sender, relay and receiver never share
 * an event loop and a gateway can be killed with SIGKILL. The parent drives
 * each one over the IPC channel: `await node.call('gateway', {...})`.
 *
 * Also here: a throwaway PKI folder, and a cache of server identities (a
 * server identity costs ~5 ms to make, mostly building and re-parsing its
 * certificate; 10,000 of them would cost a minute each run).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initPki } from '../src/relay/index.js';
import { createIdentity, createServerIdentity, IdentityKey, parseCertificate, type Identity } from '../src/session/index.js';

/** Children load TypeScript as `npm run bench` does (types stripped, no tsx keepNames). */
const TS_REGISTER = new URL('../scripts/ts-register.mjs', import.meta.url).href;

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const RELAY_NODE = join(here, 'relay-node.ts');

/** A child process running bench/relay-node.ts (or another entry that answers the same IPC calls). */
export interface RelayNode {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Run a command in the child (see relay-node.ts) and get its answer. */
  call<T = unknown>(command: string, args?: unknown, timeoutMs?: number): Promise<T>;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** Let the child end by itself (IPC disconnect), SIGKILL after 2 s; wait for the exit. */
  stop(): Promise<void>;
}

const live = new Set<RelayNode>();
let exitHook = false;

/**
 * Start a child. `gc` runs it with --expose-gc (memory figures); `entry` is
 * its script (default bench/relay-node.ts; any script that answers
 * `{ id, command, args }` with `{ id, ok, value | error }`, `ping` included).
 * Children exit by themselves when the parent goes away (IPC disconnect).
 */
export async function startNode(name: string, options: { gc?: boolean; entry?: string } = {}): Promise<RelayNode> {
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const n of live) n.child.kill('SIGKILL');
    });
  }
  const child = fork(options.entry ?? RELAY_NODE, [name], {
    cwd: repo,
    // BENCH_RELAY_PROFILE=DIR: each child writes a V8 CPU profile into DIR when it ends (by `stop()`).
    execArgv: ['--import', TS_REGISTER, ...(options.gc ? ['--expose-gc'] : []), ...(process.env.BENCH_RELAY_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_RELAY_PROFILE}`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  let next = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(node);
      for (const w of waiting.values()) w.reject(new Error(`${name} (pid ${child.pid}) exited (${signal ?? code}) during a call`));
      waiting.clear();
      resolve();
    }),
  );
  child.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.ok) w.resolve(m.value);
    else w.reject(new Error(`${name}: ${m.error}`));
  });
  const node: RelayNode = {
    pid: child.pid!,
    child,
    call<T>(command: string, args?: unknown, timeoutMs = 300_000): Promise<T> {
      const id = next++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`${name}: ${command} did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(id, {
          resolve: (v) => (clearTimeout(timer), resolve(v as T)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
        child.send({ id, command, args });
      });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
  live.add(node);
  await node.call('ping', undefined, 60_000);
  return node;
}

/** Run `body` with the nodes it starts; every one is killed afterwards, whatever happens. */
export async function withNodes<T>(body: (start: typeof startNode) => Promise<T>): Promise<T> {
  const mine: RelayNode[] = [];
  const start: typeof startNode = async (name, options) => {
    const n = await startNode(name, options);
    mine.push(n);
    return n;
  };
  try {
    return await body(start);
  } finally {
    await Promise.all(mine.map((n) => n.stop()));
  }
}

/** A throwaway PKI (root, controller, `gateways` gateways) in a temp folder; remove() deletes it. */
export async function tempPki(gateways: number): Promise<{ dir: string; remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatesock-bench-pki-'));
  await initPki({ directory: dir, gateways, validDays: 2 });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------- server identities

const CACHE = join(tmpdir(), 'gatesock-bench-server-identities.v1.json');

interface Stored {
  key: string;
  cert: string;
}

function readCache(): Stored[] {
  try {
    return existsSync(CACHE) ? (JSON.parse(readFileSync(CACHE, 'utf8')) as Stored[]) : [];
  } catch {
    return [];
  }
}

/**
 * Make sure the cache holds at least `count` server identities (made here,
 * once, and kept in the system temp folder). Call it in the parent before
 * children read ranges with {@link serverIdentities}.
 */
export function ensureServerIdentities(count: number): void {
  const have = readCache();
  if (have.length >= count) return;
  const t0 = performance.now();
  for (let i = have.length; i < count; i++) {
    const id = createServerIdentity({ crypto: 'native' });
    have.push({ key: id.key.toPem(), cert: Buffer.from(id.certificateChain[0]!).toString('base64') });
  }
  writeFileSync(CACHE, JSON.stringify(have));
  process.stderr.write(`relay bench: made ${count} server identities in ${((performance.now() - t0) / 1000).toFixed(1)} s (cached in ${CACHE})\n`);
}

/**
 * Server identities `[from, from + count)` of the cache. Each is parsed and
 * checked (key matches certificate); if the cache is unusable, fresh ones are
 * made instead.
 */
export function serverIdentities(from: number, count: number): Identity[] {
  const stored = readCache().slice(from, from + count);
  try {
    if (stored.length !== count) throw new Error('short cache');
    const soon = Date.now() + 7 * 86_400_000;
    return stored.map((s) => {
      const cert = parseCertificate(Buffer.from(s.cert, 'base64'));
      if (cert.notAfter.getTime() < soon) throw new Error('stale cache');
      return createIdentity(IdentityKey.fromPem(s.key), [cert]);
    });
  } catch {
    return Array.from({ length: count }, () => createServerIdentity({ crypto: 'native' }));
  }
}

/** PEM of a DER certificate (for Node's TLS baseline). */
export function derToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}
