/**
 * The controller's default server database: one SQLite file (design,
 * "Stores": a newcomer needs no service), through better-sqlite3.
 *
 * better-sqlite3 is a native addon, so it is loaded only when a store is
 * opened: importing gatesock never loads it, and an install without it (or
 * with install scripts off, so the addon was never built) works until someone
 * opens a SQLite store, which then fails with a `ConfigError` that says what
 * to install. Its types stay inside this file; the public API names none.
 *
 * Schema version 1 (`PRAGMA user_version`):
 *
 * ```sql
 * CREATE TABLE servers (
 *   msid             TEXT    NOT NULL PRIMARY KEY,  -- 'MSID-' + 64 upper-case hex
 *   pcid             TEXT    NOT NULL UNIQUE,       -- BINARY collation: case-sensitive
 *   certificate_hash TEXT    NOT NULL,              -- 64 lower-case hex
 *   created          INTEGER NOT NULL,              -- ms since the Unix epoch
 *   updated          INTEGER NOT NULL               -- ms since the Unix epoch
 * ) STRICT, WITHOUT ROWID;
 * ```
 *
 * The file uses write-ahead logging, so readers never wait for the writer.
 * Each login and rename runs in one `BEGIN IMMEDIATE` transaction, so two
 * processes on the same file cannot hand out the same PCID either; the
 * UNIQUE constraint backs that up.
 */
import { ConfigError, RelayError } from '../../errors/index.js';
import { openSqliteFile, type SqliteDatabase, type SqliteStatement } from '../../store/index.js';
import { checkPcid, isValidPcid } from './pcid.js';
import {
  canonicalMsid,
  checkCertificateHash,
  checkMsid,
  closedError,
  freshPcid,
  makeRecord,
  timeOf,
  type ServerRecord,
  type ServerStore,
  type ServerStoreOptions,
} from './types.js';

/**
 * The schema version this gatesock writes and reads (`PRAGMA user_version`).
 * A file with a higher version was written by a newer gatesock and is refused.
 * @public
 */
export const SQLITE_SCHEMA_VERSION = 1;

const SCHEMA_V1 = `
CREATE TABLE servers (
  msid             TEXT    NOT NULL PRIMARY KEY,
  pcid             TEXT    NOT NULL UNIQUE,
  certificate_hash TEXT    NOT NULL,
  created          INTEGER NOT NULL,
  updated          INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
`;

interface Row {
  msid: string;
  pcid: string;
  certificateHash: string;
  created: number;
  updated: number;
}

const COLUMNS = 'msid, pcid, certificate_hash AS certificateHash, created, updated';

/**
 * A {@link ServerStore} in a SQLite file. Open one with
 * {@link SqliteServerStore.open}. Calls run synchronously inside their
 * promise (SQLite answers in microseconds), so calls from one process are
 * atomic with respect to each other.
 * @public
 */
export class SqliteServerStore implements ServerStore {
  /** The file this store was opened on (`:memory:` for a database in memory). */
  readonly path: string;
  #db: SqliteDatabase | undefined;
  readonly #generatePcid: (() => string) | undefined;
  readonly #byMsid: SqliteStatement;
  readonly #byPcid: SqliteStatement;
  readonly #pcidTaken: SqliteStatement;
  readonly #insert: SqliteStatement;
  readonly #touch: SqliteStatement;
  readonly #setPcid: SqliteStatement;
  readonly #count: SqliteStatement;
  readonly #login: (key: string, hash: string, t: number) => { record: ServerRecord; created: boolean };
  readonly #rename: (key: string, name: string, t: number) => ServerRecord;

  private constructor(path: string, db: SqliteDatabase, options: ServerStoreOptions) {
    this.path = path;
    this.#db = db;
    this.#generatePcid = options.generatePcid;
    this.#byMsid = db.prepare(`SELECT ${COLUMNS} FROM servers WHERE msid = ?`);
    this.#byPcid = db.prepare(`SELECT ${COLUMNS} FROM servers WHERE pcid = ?`);
    this.#pcidTaken = db.prepare('SELECT 1 FROM servers WHERE pcid = ?');
    this.#insert = db.prepare('INSERT INTO servers (msid, pcid, certificate_hash, created, updated) VALUES (?, ?, ?, ?, ?)');
    this.#touch = db.prepare('UPDATE servers SET certificate_hash = ?, updated = ? WHERE msid = ?');
    this.#setPcid = db.prepare('UPDATE servers SET pcid = ?, updated = ? WHERE msid = ?');
    this.#count = db.prepare('SELECT count(*) AS n FROM servers');

    const login = db.transaction((key: string, hash: string, t: number) => {
      const row = this.#byMsid.get(key) as Row | undefined;
      if (row) {
        this.#touch.run(hash, t, key);
        return { record: makeRecord(key, row.pcid, hash, row.created, t), created: false };
      }
      const pcid = freshPcid(this.#generatePcid, (p) => this.#pcidTaken.get(p) === undefined);
      this.#insert.run(key, pcid, hash, t, t);
      return { record: makeRecord(key, pcid, hash, t, t), created: true };
    });
    const rename = db.transaction((key: string, name: string, t: number) => {
      const row = this.#byMsid.get(key) as Row | undefined;
      if (!row) throw new RelayError('GS_ERR_RELAY_FORBIDDEN', `${key} has no record in the server database; a server must log in before it can be renamed`);
      if (row.pcid === name) return snapshot(row);
      if (this.#pcidTaken.get(name) !== undefined) throw taken(name);
      this.#setPcid.run(name, t, key);
      return makeRecord(key, name, row.certificateHash, row.created, t);
    });
    // IMMEDIATE takes the write lock at BEGIN: another process cannot slip in between the check and the write.
    this.#login = (key, hash, t) => login.immediate(key, hash, t);
    this.#rename = (key, name, t) => rename.immediate(key, name, t);
  }

  /**
   * Open (and on first use create) the server database at `path`; `:memory:`
   * makes a private database in memory. The parent folder is created when
   * missing. Rejects with `ConfigError` `GS_ERR_INVALID_OPTION` when
   * better-sqlite3 is not installed or its addon cannot load, when the file
   * is not a SQLite database or not a gatesock server database, or when its
   * schema is newer than {@link SQLITE_SCHEMA_VERSION}.
   */
  static async open(path: string, options: ServerStoreOptions = {}): Promise<SqliteServerStore> {
    if (typeof path !== 'string' || path.length === 0) throw new ConfigError('GS_ERR_INVALID_OPTION', 'path must be a file path or ":memory:"');
    if (options.generatePcid !== undefined && typeof options.generatePcid !== 'function') {
      throw new ConfigError('GS_ERR_INVALID_OPTION', 'generatePcid must be a function');
    }
    const db = await openSqliteFile({ path, kind: 'SQLite server database', what: 'server', alternative: 'MemoryServerStore', migrate: (d) => migrate(d, path) });
    return new SqliteServerStore(path, db, options);
  }


  /** {@inheritDoc ServerStore.findByMsid} */
  async findByMsid(msid: string): Promise<ServerRecord | undefined> {
    this.#open();
    const key = canonicalMsid(msid);
    const row = key === undefined ? undefined : (this.#byMsid.get(key) as Row | undefined);
    return row && snapshot(row);
  }

  /** {@inheritDoc ServerStore.findByPcid} */
  async findByPcid(pcid: string): Promise<ServerRecord | undefined> {
    this.#open();
    const row = isValidPcid(pcid) ? (this.#byPcid.get(pcid) as Row | undefined) : undefined;
    return row && snapshot(row);
  }

  /** {@inheritDoc ServerStore.login} */
  async login(msid: string, certificateHash: string, now?: Date): Promise<{ record: ServerRecord; created: boolean }> {
    this.#open();
    return this.#login(checkMsid(msid), checkCertificateHash(certificateHash), timeOf(now));
  }

  /** {@inheritDoc ServerStore.rename} */
  async rename(msid: string, pcid: string, now?: Date): Promise<ServerRecord> {
    this.#open();
    const name = checkPcid(pcid);
    const key = checkMsid(msid);
    const t = timeOf(now);
    try {
      return this.#rename(key, name, t);
    } catch (err) {
      // Another process took the name between our check and our write (the constraint is the last word).
      if ((err as { code?: unknown })?.code === 'SQLITE_CONSTRAINT_UNIQUE') throw taken(name);
      throw err;
    }
  }

  /** {@inheritDoc ServerStore.count} */
  async count(): Promise<number> {
    this.#open();
    return (this.#count.get() as { n: number }).n;
  }

  /** {@inheritDoc ServerStore.close} */
  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    db?.close();
  }

  #open(): void {
    if (this.#db === undefined) throw closedError();
  }
}

/** Bring a database to {@link SQLITE_SCHEMA_VERSION}, or refuse it. */
function migrate(db: SqliteDatabase, path: string): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SQLITE_SCHEMA_VERSION) {
      throw new ConfigError(
        'GS_ERR_INVALID_OPTION',
        `"${path}" has server-database schema version ${version}, newer than the ${SQLITE_SCHEMA_VERSION} this gatesock understands; upgrade gatesock (or open a copy made before the upgrade)`,
      );
    }
    if (version === SQLITE_SCHEMA_VERSION) return;
    // version 0: a new file, or a SQLite database that gatesock did not make.
    const existing = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'servers'").get();
    if (existing !== undefined) {
      throw new ConfigError('GS_ERR_INVALID_OPTION', `"${path}" already has a "servers" table but no gatesock schema version; it is not a gatesock server database`);
    }
    db.exec(SCHEMA_V1);
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
  }).immediate();
}

function snapshot(row: Row): ServerRecord {
  return makeRecord(row.msid, row.pcid, row.certificateHash, row.created, row.updated);
}

function taken(name: string): RelayError {
  return new RelayError('GS_ERR_PCID_TAKEN', `PCID "${name}" belongs to another server`);
}
