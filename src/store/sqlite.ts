/**
 * Loading better-sqlite3 for every embedded SQLite store (the controller's
 * server database, the dispatch center's store, the security center's
 * databases). The addon is native, so it is loaded only when a store is
 * opened: importing gatesock never loads it, and a program that keeps its
 * stores in memory never needs it. Its types stay in these hand-written
 * interfaces, so neither the build nor the public types need
 * @types/better-sqlite3.
 */
import type * as NodeFs from 'node:fs/promises';
import type * as NodePath from 'node:path';
import { ConfigError, GatesockError } from '../errors/index.js';

/** The parts of a better-sqlite3 statement the stores use. @internal */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** A better-sqlite3 transaction function: call it, or `.immediate()` it to take the write lock first. @internal */
export type SqliteTransaction<A extends unknown[], R> = { (...args: A): R; immediate(...args: A): R };

/** The parts of a better-sqlite3 database the stores use. @internal */
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(sql: string): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): SqliteTransaction<A, R>;
  close(): unknown;
}

/** better-sqlite3's `Database` class. @internal */
export type SqliteDatabaseConstructor = new (filename: string, options?: { timeout?: number }) => SqliteDatabase;

/** What a store says when the driver cannot load. @internal */
export interface SqliteDriverOptions {
  /** The store, as the message names it: `server`, `dispatch`, `security`, `configuration`. */
  readonly what: string;
  /** The in-memory store to use instead (`MemoryServerStore`, …). */
  readonly alternative: string;
  /** The package to load; tests pass one that is not installed. Default `better-sqlite3`. */
  readonly specifier?: string;
}

/**
 * Load better-sqlite3's `Database` class, or throw `ConfigError`
 * `GS_ERR_INVALID_OPTION` saying what to install and what to use instead.
 * @internal
 */
export async function loadSqliteDriver(options: SqliteDriverOptions): Promise<SqliteDatabaseConstructor> {
  const specifier = options.specifier ?? 'better-sqlite3';
  const hint = `install it with \`npm install better-sqlite3@^12.11\` (it builds a native addon, so install scripts must run), or use ${options.alternative}`;
  let mod: { default?: unknown };
  try {
    // A variable specifier, so that bundlers leave the import alone and it runs only here.
    mod = (await import(specifier)) as { default?: unknown };
  } catch (err) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `the SQLite ${options.what} store needs the "${specifier}" package, which could not be loaded (${(err as Error)?.message ?? String(err)}); ${hint}`, { cause: err });
  }
  const ctor = mod.default ?? mod;
  if (typeof ctor !== 'function') throw new ConfigError('GS_ERR_INVALID_OPTION', `"${specifier}" did not export a Database class; ${hint}`);
  return ctor as SqliteDatabaseConstructor;
}

/** How {@link openSqliteFile} opens one store's file. @internal */
export interface SqliteFileOptions extends SqliteDriverOptions {
  /** A file path, or `:memory:` for a private database. Its folder is made when missing. */
  readonly path: string;
  /** What the file is, for the message when it cannot be opened (`SQLite dispatch store`). */
  readonly kind: string;
  /** Turn on foreign keys (the stores whose schema declares them). */
  readonly foreignKeys?: boolean;
  /** Create or check the schema; throws a GatesockError for a file that is not this store's. */
  readonly migrate: (db: SqliteDatabase) => void;
}

/**
 * Load the driver, open `path` with the settings every store uses (WAL, so
 * readers do not block the writer; `synchronous = NORMAL`, durable across
 * process crashes, which is what WAL needs), and migrate it. The file is
 * closed again when anything fails; a failure that is not already a
 * GatesockError becomes `ConfigError` `GS_ERR_INVALID_OPTION` naming the
 * file (or, when the native addon cannot load, saying to rebuild it).
 * @internal
 */
export async function openSqliteFile(options: SqliteFileOptions): Promise<SqliteDatabase> {
  const Database = await loadSqliteDriver(options);
  if (options.path !== ':memory:') {
    const { fs, path } = nodeModules(options.what);
    await fs.mkdir(path.dirname(path.resolve(options.path)), { recursive: true });
  }
  let db: SqliteDatabase | undefined;
  try {
    db = new Database(options.path, { timeout: 5_000 });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    if (options.foreignKeys) db.pragma('foreign_keys = ON');
    options.migrate(db);
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // already failing; the first error is the one to report
    }
    if (err instanceof GatesockError) throw err;
    const msg = (err as Error)?.message ?? String(err);
    if (/bindings|better_sqlite3\.node|NODE_MODULE_VERSION|invalid ELF|dlopen/i.test(msg)) {
      throw new ConfigError('GS_ERR_INVALID_OPTION', `better-sqlite3's native addon cannot be loaded (${msg}); run \`npm rebuild better-sqlite3\`, or use ${options.alternative}`, { cause: err });
    }
    throw new ConfigError('GS_ERR_INVALID_OPTION', `cannot open "${options.path}" as a ${options.kind}: ${msg}`, { cause: err });
  }
}

/**
 * node:fs and node:path through `process.getBuiltinModule`, not an import,
 * so that bundles of the relay and delivery entries for other runtimes do
 * not pull Node built-ins in; only opening a SQLite file needs them.
 */
function nodeModules(what: string): { fs: typeof NodeFs; path: typeof NodePath } {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const fs = proc?.getBuiltinModule?.('node:fs/promises') as typeof NodeFs | undefined;
  const path = proc?.getBuiltinModule?.('node:path') as typeof NodePath | undefined;
  if (fs === undefined || path === undefined) throw new ConfigError('GS_ERR_INVALID_OPTION', `the SQLite ${what} store needs Node.js ≥ 20.16`);
  return { fs, path };
}
