// A throwaway PostgreSQL server for the tests of the PostgreSQL stores
// (DESIGN.md "Stores": tests that need PostgreSQL start a real one).
//
// startPostgres(): initdb into a fresh temp dir (owned by `postgres` when we
// are root: initdb and postgres refuse to run as root), trust auth (the
// server listens only on 127.0.0.1 and on a socket inside that dir), a free
// port, pg_ctl start -w, and stop() = pg_ctl stop + delete the dir. A process
// exit hook stops and deletes whatever a crashed test left behind.
//
// postgresUnavailable() says why no server can be started here (no binaries,
// root without a `postgres` user); tests skip with that reason printed.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll } from 'vitest';

/** The folder holding initdb, pg_ctl and postgres: `GS_PG_BIN`, else the newest /usr/lib/postgresql/N/bin. */
export function postgresBinDir(): string | undefined {
  const env = process.env['GS_PG_BIN'];
  const candidates = env ? [env] : [];
  const root = '/usr/lib/postgresql';
  if (!env && existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(join(root, v, 'bin'));
  }
  return candidates.find((d) => ['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(join(d, b))));
}

function postgresUser(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

const isRoot = () => process.getuid?.() === 0;

/** Why a PostgreSQL server cannot be started here, or undefined when it can (probably: starting may still fail). */
export function postgresUnavailable(): string | undefined {
  if (process.platform === 'win32') return 'PostgreSQL tests start a server with initdb/pg_ctl, which this fixture does not do on Windows';
  if (postgresBinDir() === undefined) return 'PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/N/bin or GS_PG_BIN; install Debian\'s "postgresql" package';
  if (isRoot() && postgresUser() === undefined) return 'running as root and there is no "postgres" user to run the server as (initdb and postgres refuse root)';
  if (isRoot() && !existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser') && !existsSync('/usr/bin/runuser')) return 'running as root and runuser is missing';
  return undefined;
}

/** True when {@link postgresUnavailable} finds nothing missing. */
export function postgresAvailable(): boolean {
  return postgresUnavailable() === undefined;
}

/** A running throwaway server. */
export interface PostgresServer {
  readonly port: number;
  /** The connection string of a database on it (`postgres` by default). */
  url(database?: string): string;
  /** Create a fresh empty database and return its connection string. */
  createDatabase(): Promise<string>;
  /** Stop the server and delete its folder (twice is harmless). */
  stop(): Promise<void>;
}

function run(file: string, args: string[], timeoutMs: number): Promise<string> {
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { timeout: timeoutMs, encoding: 'utf8', cwd: '/' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const live = new Set<{ bin: string; data: string; dir: string }>();
let hooked = false;
function stopAllSync(): void {
  for (const s of live) {
    try {
      const args = ['-D', s.data, '-m', 'immediate', '-w', '-t', '10', 'stop'];
      if (isRoot()) execFileSync('runuser', ['-u', 'postgres', '--', join(s.bin, 'pg_ctl'), ...args], { stdio: 'ignore', cwd: '/' });
      else execFileSync(join(s.bin, 'pg_ctl'), args, { stdio: 'ignore' });
    } catch {
      // not running
    }
    rmSync(s.dir, { recursive: true, force: true });
  }
  live.clear();
}

/** Start a server; throws (after cleaning up) with initdb's or the server log's text when it cannot. */
export async function startPostgres(): Promise<PostgresServer> {
  const why = postgresUnavailable();
  if (why !== undefined) throw new Error(why);
  const bin = postgresBinDir()!;
  const dir = await mkdtemp(join(tmpdir(), 'gs-pg-'));
  const data = join(dir, 'data');
  const sock = dir;
  const entry = { bin, data, dir };
  if (!hooked) {
    hooked = true;
    process.once('exit', stopAllSync);
  }
  live.add(entry);
  let port = 0;
  try {
    if (isRoot()) {
      const u = postgresUser()!;
      await chown(dir, u.uid, u.gid);
    }
    await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], 60_000);
    port = await freePort();
    const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${sock} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=40 -c shared_buffers=16MB`;
    await run(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), '-o', opts, '-w', '-t', '30', 'start'], 40_000);
  } catch (err) {
    const log = await readFile(join(dir, 'server.log'), 'utf8').catch(() => '');
    stopAllSyncOne(entry);
    throw new Error(`could not start a PostgreSQL server: ${(err as Error).message}${log ? `\nserver log:\n${log.slice(-2000)}` : ''}`);
  }
  const url = (database = 'postgres') => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  let n = 0;
  let stopped = false;
  return {
    port,
    url,
    async createDatabase() {
      const name = `gs_test_${++n}`;
      const c = new pg.Client({ connectionString: url() });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return url(name);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // A server that crashed or restarted under a test says so before its folder goes.
      const log = await readFile(join(dir, 'server.log'), 'utf8').catch(() => '');
      if (/PANIC|terminated by signal|was terminated|all server processes terminated/.test(log)) console.log(`PostgreSQL test server on port ${port} logged trouble:\n${log.slice(-3000)}`);
      try {
        await run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '20', 'stop'], 30_000);
      } catch {
        stopAllSyncOne(entry);
      }
      live.delete(entry);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function stopAllSyncOne(entry: { bin: string; data: string; dir: string }): void {
  const all = [...live];
  live.clear();
  live.add(entry);
  stopAllSync();
  for (const e of all) if (e !== entry) live.add(e);
}

/**
 * One server for a test file, started on first use: `database()` gives a
 * fresh database on it; call `stop()` in afterAll (it does nothing when no
 * server was started). `unavailable()` starts it and says why it cannot be
 * (binaries missing, or it did not start), or undefined when it runs; with
 * `GS_REQUIRE_POSTGRES=1` (CI, where PostgreSQL is installed) it throws
 * instead, so the tests cannot silently skip there.
 */
export function lazyPostgres(): { server(): Promise<PostgresServer>; database(): Promise<string>; stop(): Promise<void>; unavailable(): Promise<string | undefined> } {
  let started: Promise<PostgresServer> | undefined;
  const server = () => (started ??= startPostgres());
  return {
    server,
    async unavailable() {
      const required = process.env['GS_REQUIRE_POSTGRES'] === '1';
      const why = postgresUnavailable();
      if (why !== undefined) {
        if (required) throw new Error(`GS_REQUIRE_POSTGRES=1 but ${why}`);
        return why;
      }
      try {
        await server();
        return undefined;
      } catch (err) {
        if (required) throw err;
        return (err as Error).message.split('\n')[0];
      }
    },
    async database() {
      return (await server()).createDatabase();
    },
    async stop() {
      if (started === undefined) return;
      const s = await started.catch(() => undefined);
      await s?.stop();
    },
  };
}

/** What {@link postgresForFile} gives a test file. */
export interface PostgresForFile {
  readonly server: ReturnType<typeof lazyPostgres>;
  /** Closed after the file's tests, newest first, before the server stops. */
  readonly closers: (() => Promise<unknown>)[];
  /** Folders deleted after the server stops. */
  readonly dirs: string[];
  /** Why PostgreSQL cannot run here (already printed), or undefined. */
  readonly skip: string | undefined;
}

/**
 * A test file's throwaway PostgreSQL server, started on first use, and the
 * clean-up its tests register: after the file, closers run newest first,
 * then the server stops, then the folders go. Where no server can start,
 * prints `${what} skipped: reason` once.
 */
export async function postgresForFile(what: string): Promise<PostgresForFile> {
  const server = lazyPostgres();
  const closers: (() => Promise<unknown>)[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await server.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const skip = await server.unavailable();
  if (skip !== undefined) console.log(`${what} skipped: ${skip}`);
  return { server, closers, dirs, skip };
}
