/**
 * Loading better-sqlite3 for every embedded SQLite store (the controller's
 * server database, the dispatch center's store, the security center's
 * databases). The addon is native, so it is loaded only when a store is
 * opened: importing gatesock never loads it, and a program that keeps its
 * stores in memory never needs it. Its types stay in these hand-written
 * interfaces, so neither the build nor the public types need
 * @types/better-sqlite3.
 */
import { ConfigError } from '../errors/index.js';

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
