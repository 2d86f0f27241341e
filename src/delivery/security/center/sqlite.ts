/**
 * The security center's configuration database in one SQLite file, through
 * better-sqlite3 (loaded only when a store is opened, as the relay's and the
 * security database's stores do; its types stay inside this file).
 *
 * Schema version 1 (`PRAGMA user_version`):
 *
 * ```sql
 * CREATE TABLE hosts (
 *   host_id TEXT NOT NULL PRIMARY KEY,
 *   msid    TEXT NOT NULL UNIQUE,          -- the only agent that may report for it
 *   entry   TEXT NOT NULL                  -- HostEntry as JSON
 * ) STRICT, WITHOUT ROWID;
 * CREATE TABLE reports (
 *   host_id TEXT    NOT NULL,
 *   slot    INTEGER NOT NULL,              -- 0 latest, 1 previous
 *   seq     INTEGER NOT NULL,
 *   report  TEXT    NOT NULL,              -- the full report as JSON
 *   PRIMARY KEY (host_id, slot)
 * ) STRICT, WITHOUT ROWID;
 * CREATE TABLE actions (
 *   id      TEXT    NOT NULL PRIMARY KEY,
 *   host_id TEXT    NOT NULL,
 *   created INTEGER NOT NULL,
 *   action  TEXT    NOT NULL               -- ActionRecord as JSON
 * ) STRICT, WITHOUT ROWID;
 * CREATE INDEX actions_by_host ON actions (host_id, created);
 * CREATE TABLE policy (
 *   id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
 *   doc TEXT    NOT NULL                   -- PolicyDocument as JSON
 * ) STRICT;
 * ```
 *
 * Write-ahead logging; a new report moves latest → previous in one transaction.
 * A claim ({@link SqliteConfigurationStore.claimAction}) reads the host's
 * actions and inserts in one `BEGIN IMMEDIATE` transaction, so it holds the
 * file's write lock throughout: two processes on one file cannot both claim
 * a finding. A compare-and-swap is one `UPDATE … WHERE action = <as read>`.
 * A host's entry is compared and swapped
 * ({@link SqliteConfigurationStore.replaceHost}), and a report committed
 * with it ({@link SqliteConfigurationStore.commitReport}), the same way: one
 * `BEGIN IMMEDIATE` transaction reads the host's entry, its latest report's
 * `seq` and the MSID's owner, and writes only when they are still as the
 * caller read them.
 */
import { ConfigError } from '../../../errors/index.js';
import { openSqliteFile, type SqliteDatabase as Database, type SqliteStatement as Statement } from '../../../store/index.js';
import type { FullReport } from '../report/index.js';
import { blocks, replaceable, sameHost, type ActionRecord, type ConfigurationStore, type HostEntry, type PolicyDocument, type ReportCommit } from './store.js';

/** The schema version this gatesock writes and reads. @public */
export const CENTER_SQLITE_SCHEMA_VERSION = 1;

const SCHEMA_V1 = `
CREATE TABLE hosts (
  host_id TEXT NOT NULL PRIMARY KEY,
  msid    TEXT NOT NULL UNIQUE,
  entry   TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE reports (
  host_id TEXT    NOT NULL,
  slot    INTEGER NOT NULL,
  seq     INTEGER NOT NULL,
  report  TEXT    NOT NULL,
  PRIMARY KEY (host_id, slot)
) STRICT, WITHOUT ROWID;
CREATE TABLE actions (
  id      TEXT    NOT NULL PRIMARY KEY,
  host_id TEXT    NOT NULL,
  created INTEGER NOT NULL,
  action  TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX actions_by_host ON actions (host_id, created);
CREATE TABLE policy (
  id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  doc TEXT    NOT NULL
) STRICT;
`;

function migrate(db: Database, path: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > CENTER_SQLITE_SCHEMA_VERSION) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `"${path}" has configuration schema ${version}, newer than ${CENTER_SQLITE_SCHEMA_VERSION}: written by a newer gatesock`);
  }
  if (version === 0) {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    if (tables.length > 0) throw new ConfigError('GS_ERR_INVALID_OPTION', `"${path}" holds tables but no gatesock configuration schema; refusing to touch it`);
    db.transaction(() => {
      db.exec(SCHEMA_V1);
      db.pragma(`user_version = ${CENTER_SQLITE_SCHEMA_VERSION}`);
    }).immediate();
  }
}

/** A {@link ConfigurationStore} in a SQLite file; open one with {@link SqliteConfigurationStore.open}. @public */
export class SqliteConfigurationStore implements ConfigurationStore {
  /** The file (`:memory:` for a private database in memory). */
  readonly path: string;
  #db: Database | undefined;
  readonly #s: Record<'host' | 'hostByMsid' | 'putHost' | 'hosts' | 'report' | 'seq' | 'shift' | 'putReport' | 'delReport' | 'putAction' | 'insertAction' | 'swapAction' | 'action' | 'actions' | 'hostActions' | 'policy' | 'putPolicy', Statement>;
  readonly #putReport: { (hostId: string, report: FullReport): void; immediate(hostId: string, report: FullReport): void };
  readonly #claim: { (action: ActionRecord): ActionRecord | null; immediate(action: ActionRecord): ActionRecord | null };
  readonly #commit: { (commit: ReportCommit): boolean; immediate(commit: ReportCommit): boolean };
  readonly #replaceHost: { (expected: HostEntry | undefined, next: HostEntry): boolean; immediate(expected: HostEntry | undefined, next: HostEntry): boolean };

  private constructor(path: string, db: Database) {
    this.path = path;
    this.#db = db;
    const p = (sql: string) => db.prepare(sql);
    this.#s = {
      host: p('SELECT entry FROM hosts WHERE host_id = ?'),
      hostByMsid: p('SELECT entry FROM hosts WHERE msid = ?'),
      putHost: p('INSERT INTO hosts (host_id, msid, entry) VALUES (?, ?, ?) ON CONFLICT (host_id) DO UPDATE SET msid = excluded.msid, entry = excluded.entry'),
      hosts: p('SELECT entry FROM hosts ORDER BY host_id'),
      report: p('SELECT report FROM reports WHERE host_id = ? AND slot = ?'),
      seq: p('SELECT seq FROM reports WHERE host_id = ? AND slot = 0'),
      delReport: p('DELETE FROM reports WHERE host_id = ? AND slot = 1'),
      shift: p('UPDATE reports SET slot = 1 WHERE host_id = ? AND slot = 0'),
      putReport: p('INSERT INTO reports (host_id, slot, seq, report) VALUES (?, 0, ?, ?)'),
      putAction: p('INSERT INTO actions (id, host_id, created, action) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET action = excluded.action'),
      insertAction: p('INSERT INTO actions (id, host_id, created, action) VALUES (?, ?, ?, ?)'),
      swapAction: p('UPDATE actions SET action = ? WHERE id = ? AND action = ?'),
      action: p('SELECT action FROM actions WHERE id = ?'),
      actions: p('SELECT action FROM actions ORDER BY created, id'),
      hostActions: p('SELECT action FROM actions WHERE host_id = ? ORDER BY created, id'),
      policy: p('SELECT doc FROM policy WHERE id = 1'),
      putPolicy: p('INSERT INTO policy (id, doc) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc'),
    };
    // The host's latest report becomes its previous one (slot 1), and `report` the latest (slot 0).
    const storeReport = (hostId: string, report: FullReport): void => {
      this.#s.delReport.run(hostId);
      this.#s.shift.run(hostId);
      this.#s.putReport.run(hostId, report.seq, JSON.stringify(report));
    };
    this.#putReport = db.transaction(storeReport);
    // Inside a transaction: is `next.hostId`'s entry still `expected`, and `next.msid` no other host's?
    const hostAsRead = (expected: HostEntry | undefined, next: HostEntry): boolean => {
      if (!sameHost(expected, next)) return false;
      const stored = this.#s.host.get(next.hostId) as { entry: string } | undefined;
      if (stored?.entry !== (expected === undefined ? undefined : JSON.stringify(expected))) return false;
      const owner = this.#s.hostByMsid.get(next.msid) as { entry: string } | undefined;
      return owner === undefined || (JSON.parse(owner.entry) as HostEntry).hostId === next.hostId;
    };
    this.#replaceHost = db.transaction((expected: HostEntry | undefined, next: HostEntry) => {
      if (!hostAsRead(expected, next)) return false;
      this.#s.putHost.run(next.hostId, next.msid, JSON.stringify(next));
      return true;
    });
    this.#commit = db.transaction((commit: ReportCommit) => {
      const { host, report } = commit;
      if (!hostAsRead(commit.expectedHost, host)) return false;
      const latest = this.#s.seq.get(host.hostId) as { seq: number } | undefined;
      if ((latest?.seq ?? null) !== commit.expectedSeq) return false;
      storeReport(host.hostId, report);
      this.#s.putHost.run(host.hostId, host.msid, JSON.stringify(host));
      return true;
    });
    this.#claim = db.transaction((action: ActionRecord) => {
      for (const r of this.#s.hostActions.all(action.hostId) as { action: string }[]) {
        const a = JSON.parse(r.action) as ActionRecord;
        if (blocks(a, action)) return a;
      }
      this.#s.insertAction.run(action.id, action.hostId, action.createdAt, JSON.stringify(action));
      return null;
    });
  }

  /**
   * Open (or create) the store in `path` (`:memory:` for a private one).
   * `ConfigError` `GS_ERR_INVALID_OPTION` when better-sqlite3 cannot load,
   * the file is not a gatesock configuration database, or its schema is newer.
   */
  static async open(path: string): Promise<SqliteConfigurationStore> {
    if (typeof path !== 'string' || path.length === 0) throw new ConfigError('GS_ERR_INVALID_OPTION', 'path must be a file path or ":memory:"');
    const db = await openSqliteFile({ path, kind: 'configuration database', what: 'configuration', alternative: 'MemoryConfigurationStore', migrate: (d) => migrate(d, path) });
    return new SqliteConfigurationStore(path, db);
  }


  #open(): void {
    if (this.#db === undefined) throw new Error('the configuration store is closed');
  }

  #one<T>(st: Statement, col: string, ...args: unknown[]): T | undefined {
    this.#open();
    const row = st.get(...args) as Record<string, string> | undefined;
    return row === undefined ? undefined : (JSON.parse(row[col]!) as T);
  }

  /** {@inheritDoc ConfigurationStore.getHost} */
  async getHost(hostId: string): Promise<HostEntry | undefined> {
    return this.#one<HostEntry>(this.#s.host, 'entry', hostId);
  }

  /** {@inheritDoc ConfigurationStore.hostByMsid} */
  async hostByMsid(msid: string): Promise<HostEntry | undefined> {
    return this.#one<HostEntry>(this.#s.hostByMsid, 'entry', msid);
  }

  /** {@inheritDoc ConfigurationStore.putHost} */
  async putHost(entry: HostEntry): Promise<void> {
    this.#open();
    this.#s.putHost.run(entry.hostId, entry.msid, JSON.stringify(entry));
  }

  /** {@inheritDoc ConfigurationStore.replaceHost} */
  async replaceHost(expected: HostEntry | undefined, next: HostEntry): Promise<boolean> {
    this.#open();
    return this.#replaceHost.immediate(expected, next);
  }

  /** {@inheritDoc ConfigurationStore.hosts} */
  async hosts(): Promise<HostEntry[]> {
    this.#open();
    return (this.#s.hosts.all() as { entry: string }[]).map((r) => JSON.parse(r.entry) as HostEntry);
  }

  /** {@inheritDoc ConfigurationStore.latest} */
  async latest(hostId: string): Promise<FullReport | undefined> {
    return this.#one<FullReport>(this.#s.report, 'report', hostId, 0);
  }

  /** {@inheritDoc ConfigurationStore.previous} */
  async previous(hostId: string): Promise<FullReport | undefined> {
    return this.#one<FullReport>(this.#s.report, 'report', hostId, 1);
  }

  /** {@inheritDoc ConfigurationStore.putReport} */
  async putReport(hostId: string, report: FullReport): Promise<void> {
    this.#open();
    this.#putReport.immediate(hostId, report);
  }

  /** {@inheritDoc ConfigurationStore.commitReport} */
  async commitReport(commit: ReportCommit): Promise<boolean> {
    this.#open();
    return this.#commit.immediate(commit);
  }

  /** {@inheritDoc ConfigurationStore.putAction} */
  async putAction(action: ActionRecord): Promise<void> {
    this.#open();
    this.#s.putAction.run(action.id, action.hostId, action.createdAt, JSON.stringify(action));
  }

  /** {@inheritDoc ConfigurationStore.claimAction} */
  async claimAction(action: ActionRecord): Promise<ActionRecord | null> {
    this.#open();
    return this.#claim.immediate(action);
  }

  /** {@inheritDoc ConfigurationStore.replaceAction} */
  async replaceAction(expected: ActionRecord, next: ActionRecord): Promise<boolean> {
    this.#open();
    if (!replaceable(expected, next)) return false;
    return this.#s.swapAction.run(JSON.stringify(next), expected.id, JSON.stringify(expected)).changes === 1;
  }

  /** {@inheritDoc ConfigurationStore.getAction} */
  async getAction(id: string): Promise<ActionRecord | undefined> {
    return this.#one<ActionRecord>(this.#s.action, 'action', id);
  }

  /** {@inheritDoc ConfigurationStore.actions} */
  async actions(hostId?: string): Promise<ActionRecord[]> {
    this.#open();
    const rows = (hostId === undefined ? this.#s.actions.all() : this.#s.hostActions.all(hostId)) as { action: string }[];
    return rows.map((r) => JSON.parse(r.action) as ActionRecord);
  }

  /** {@inheritDoc ConfigurationStore.getPolicy} */
  async getPolicy(): Promise<PolicyDocument | undefined> {
    return this.#one<PolicyDocument>(this.#s.policy, 'doc');
  }

  /** {@inheritDoc ConfigurationStore.setPolicy} */
  async setPolicy(doc: PolicyDocument): Promise<void> {
    this.#open();
    this.#s.putPolicy.run(JSON.stringify(doc));
  }

  /** {@inheritDoc ConfigurationStore.close} */
  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    db?.close();
  }
}
