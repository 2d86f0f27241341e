/**
 * Internal to the package (not a subpath export): what the embedded SQLite
 * stores of the relay and delivery layers share. A leaf: it imports only
 * src/errors.
 */
export {
  loadSqliteDriver,
  openSqliteFile,
  type SqliteDatabase,
  type SqliteDatabaseConstructor,
  type SqliteDriverOptions,
  type SqliteFileOptions,
  type SqliteStatement,
  type SqliteTransaction,
} from './sqlite.js';
