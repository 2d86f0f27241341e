/**
 * Loading better-sqlite3 for the security center's SQLite stores (the
 * security information database here, the configuration database in
 * center/): the addon is loaded only when a store is opened, so importing
 * gatesock never loads it, and its types stay in these hand-written
 * interfaces (no @types in the public API).
 */
import { ConfigError } from '../../../errors/index.js';

/** The parts of a better-sqlite3 statement the stores use. @internal */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** The parts of a better-sqlite3 database the stores use. @internal */
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(sql: string): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): { (...args: A): R; immediate(...args: A): R };
  close(): unknown;
}

/** better-sqlite3's `Database` class. @internal */
export type SqliteDatabaseConstructor = new (filename: string, options?: { timeout?: number }) => SqliteDatabase;

/**
 * Load better-sqlite3's `Database` class, or throw `ConfigError`
 * `GS_ERR_INVALID_OPTION` saying what to install. `what` names the store in
 * the message (`security`, `configuration`), `alternative` the in-memory
 * store to use instead. @internal
 */
export async function loadSqliteDriver(what: string, alternative: string): Promise<SqliteDatabaseConstructor> {
  const specifier = 'better-sqlite3';
  const hint = `install it with \`npm install better-sqlite3@^12.11\` (it builds a native addon), or use ${alternative}`;
  let mod: { default?: unknown };
  try {
    // A variable specifier, so that bundlers leave the import alone and it runs only here.
    mod = (await import(specifier)) as { default?: unknown };
  } catch (err) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `the SQLite ${what} store needs the "${specifier}" package, which could not be loaded (${(err as Error)?.message ?? String(err)}); ${hint}`, { cause: err });
  }
  const ctor = mod.default ?? mod;
  if (typeof ctor !== 'function') throw new ConfigError('GS_ERR_INVALID_OPTION', `"${specifier}" did not export a Database class; ${hint}`);
  return ctor as SqliteDatabaseConstructor;
}
