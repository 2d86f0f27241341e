/**
 * The security center's configuration database on a PostgreSQL server,
 * through node-postgres (`pg`, loaded only when a store is opened), for
 * centers that keep their databases on a server (issue 8: SQLite by default,
 * PostgreSQL when configured). Same tables as {@link SqliteConfigurationStore}.
 *
 * Schema version 1 (the row `('configuration', 1)` of `gatesock_schema`,
 * shared with the security database's `PostgresSecurityStore`, so both may
 * live in one database):
 *
 * ```sql
 * CREATE TABLE hosts (
 *   host_id TEXT NOT NULL PRIMARY KEY,
 *   msid    TEXT NOT NULL UNIQUE,          -- the only agent that may report for it
 *   entry   TEXT NOT NULL                  -- HostEntry as JSON
 * );
 * CREATE TABLE reports (
 *   host_id TEXT    NOT NULL,
 *   slot    INTEGER NOT NULL,              -- 0 latest, 1 previous
 *   seq     BIGINT  NOT NULL,
 *   report  TEXT    NOT NULL,              -- the full report as JSON
 *   PRIMARY KEY (host_id, slot)
 * );
 * CREATE TABLE actions (
 *   id      TEXT   NOT NULL PRIMARY KEY,
 *   host_id TEXT   NOT NULL,
 *   created BIGINT NOT NULL,
 *   action  TEXT   NOT NULL                -- ActionRecord as JSON
 * );
 * CREATE INDEX actions_by_host ON actions (host_id, created);
 * CREATE TABLE policy (
 *   id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
 *   doc TEXT    NOT NULL                   -- PolicyDocument as JSON
 * );
 * ```
 *
 * A new report moves latest → previous in one transaction, under a
 * transaction-level advisory lock (two centers writing one host's reports
 * are serialised).
 *
 * Two centers taking reports for one host ID bind it to one agent and keep
 * its newest report: a commit ({@link PostgresConfigurationStore.commitReport})
 * runs in one transaction under the same lock `REPORT_LOCK` as every report
 * write, so its `SELECT` of the latest `seq` sees every report committed
 * before it. The host's entry is written only by a conditional statement —
 * `UPDATE hosts … WHERE host_id = $1 AND entry = <as read>`, or for a new
 * host `INSERT … ON CONFLICT DO NOTHING` — which changes nothing when an
 * enrolment or policy change (they write hosts without the lock) got there
 * first; then the transaction writes nothing else and the commit resolves
 * false. An MSID already bound to another host (`hosts.msid UNIQUE`) also
 * resolves false. {@link PostgresConfigurationStore.replaceHost} (enrolments,
 * policy changes) is that conditional statement alone.
 *
 * Two centers on one database make one action per finding: a claim
 * ({@link PostgresConfigurationStore.claimAction}) takes the transaction-level
 * advisory lock `ACTION_LOCK`, reads the host's actions and inserts only when
 * none is open for the finding. Claims are serialised by the lock, and each
 * claim's SELECT runs after the lock is granted, so under READ COMMITTED it
 * sees every claim committed before (the one that held the lock). Other writes
 * only close actions or leave them as they are ({@link PostgresConfigurationStore.replaceAction}
 * never reopens a confirmed one), so no open action appears outside a claim.
 * A compare-and-swap is `UPDATE … WHERE id = $1 AND action = <as read>`: a
 * second concurrent UPDATE waits for the first's row lock, then re-checks its
 * WHERE against the new row and changes nothing.
 */
import { inTransaction, openPostgres, type PostgresPool, type PostgresTarget } from '../secdb/index.js';
import type { FullReport } from '../report/index.js';
import { blocks, replaceable, sameHost, type ActionRecord, type ConfigurationStore, type HostEntry, type PolicyDocument, type ReportCommit } from './store.js';

/** The schema version this gatesock writes and reads (row `configuration` of `gatesock_schema`). @public */
export const CENTER_POSTGRES_SCHEMA_VERSION = 1;

const SCHEMA_V1 = `
CREATE TABLE hosts (
  host_id TEXT NOT NULL PRIMARY KEY,
  msid    TEXT NOT NULL UNIQUE,
  entry   TEXT NOT NULL
);
CREATE TABLE reports (
  host_id TEXT    NOT NULL,
  slot    INTEGER NOT NULL,
  seq     BIGINT  NOT NULL,
  report  TEXT    NOT NULL,
  PRIMARY KEY (host_id, slot)
);
CREATE TABLE actions (
  id      TEXT   NOT NULL PRIMARY KEY,
  host_id TEXT   NOT NULL,
  created BIGINT NOT NULL,
  action  TEXT   NOT NULL
);
CREATE INDEX actions_by_host ON actions (host_id, created);
CREATE TABLE policy (
  id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  doc TEXT    NOT NULL
);
`;
const TABLES = ['hosts', 'reports', 'actions', 'policy'];

/** SQLSTATE of a unique violation (`hosts.msid`: that agent is bound to another host). */
const UNIQUE_VIOLATION = '23505';

/** The advisory lock a report write takes. */
const REPORT_LOCK = 0x6773636f; // 'gsco'
/** The advisory lock an action claim takes. */
const ACTION_LOCK = 0x67736361; // 'gsca'

/** Inside a transaction: the host's latest report becomes its previous one (slot 1), and `report` the latest (slot 0). */
async function storeReport(c: Pick<PostgresPool, 'query'>, hostId: string, report: FullReport): Promise<void> {
  await c.query('DELETE FROM reports WHERE host_id = $1 AND slot = 1', [hostId]);
  await c.query('UPDATE reports SET slot = 1 WHERE host_id = $1 AND slot = 0', [hostId]);
  await c.query('INSERT INTO reports (host_id, slot, seq, report) VALUES ($1, 0, $2, $3)', [hostId, report.seq, JSON.stringify(report)]);
}

/**
 * Write `next` only if `next.hostId`'s entry is still `expected` (absent when
 * undefined) and `next.msid` is no other host's: one conditional statement,
 * so a concurrent writer's row lock makes it wait and then re-check against
 * the row as that writer left it. A duplicate MSID raises a unique violation
 * ({@link lostToUniqueMsid}).
 */
async function swapHost(q: Pick<PostgresPool, 'query'>, expected: HostEntry | undefined, next: HostEntry): Promise<boolean> {
  const owner = (await q.query('SELECT host_id FROM hosts WHERE msid = $1 AND host_id <> $2', [next.msid, next.hostId])).rows[0];
  if (owner !== undefined) return false;
  const entry = JSON.stringify(next);
  const written =
    expected === undefined
      ? await q.query('INSERT INTO hosts (host_id, msid, entry) VALUES ($1, $2, $3) ON CONFLICT (host_id) DO NOTHING', [next.hostId, next.msid, entry])
      : await q.query('UPDATE hosts SET msid = $2, entry = $3 WHERE host_id = $1 AND entry = $4', [next.hostId, next.msid, entry, JSON.stringify(expected)]);
  return written.rowCount === 1;
}

/** `write`'s answer, or false when it hit `hosts.msid UNIQUE`: another writer bound that MSID to another host after the check. */
async function lostToUniqueMsid(write: () => Promise<boolean>): Promise<boolean> {
  try {
    return await write();
  } catch (err) {
    if ((err as { code?: unknown }).code === UNIQUE_VIOLATION) return false;
    throw err;
  }
}

/** A {@link ConfigurationStore} on a PostgreSQL server; open one with {@link PostgresConfigurationStore.open}. @public */
export class PostgresConfigurationStore implements ConfigurationStore {
  #pool: PostgresPool | undefined;
  readonly #owned: boolean;

  private constructor(pool: PostgresPool, owned: boolean) {
    this.#pool = pool;
    this.#owned = owned;
  }

  /**
   * Open (and on first use create the tables in) the database `target`
   * names: a `postgres://` connection string (the store makes a pool and ends
   * it on {@link PostgresConfigurationStore.close}) or a `pg.Pool` (left
   * open). `ConfigError` `GS_ERR_INVALID_OPTION` when `pg` cannot load, the
   * server cannot be reached, the database holds these table names without a
   * gatesock schema, or its schema is newer than
   * {@link CENTER_POSTGRES_SCHEMA_VERSION}.
   */
  static async open(target: PostgresTarget): Promise<PostgresConfigurationStore> {
    const { pool, owned } = await openPostgres(target, 'configuration', 'configuration', CENTER_POSTGRES_SCHEMA_VERSION, TABLES, SCHEMA_V1);
    return new PostgresConfigurationStore(pool, owned);
  }

  #open(): PostgresPool {
    if (this.#pool === undefined) throw new Error('the configuration store is closed');
    return this.#pool;
  }

  async #one<T>(sql: string, col: string, args: unknown[]): Promise<T | undefined> {
    const row = (await this.#open().query(sql, args)).rows[0];
    return row === undefined ? undefined : (JSON.parse(String(row[col])) as T);
  }

  async #all<T>(sql: string, col: string, args: unknown[]): Promise<T[]> {
    return (await this.#open().query(sql, args)).rows.map((r) => JSON.parse(String(r[col])) as T);
  }

  /** {@inheritDoc ConfigurationStore.getHost} */
  async getHost(hostId: string): Promise<HostEntry | undefined> {
    return this.#one<HostEntry>('SELECT entry FROM hosts WHERE host_id = $1', 'entry', [hostId]);
  }

  /** {@inheritDoc ConfigurationStore.hostByMsid} */
  async hostByMsid(msid: string): Promise<HostEntry | undefined> {
    return this.#one<HostEntry>('SELECT entry FROM hosts WHERE msid = $1', 'entry', [msid]);
  }

  /** {@inheritDoc ConfigurationStore.putHost} */
  async putHost(entry: HostEntry): Promise<void> {
    await this.#open().query('INSERT INTO hosts (host_id, msid, entry) VALUES ($1, $2, $3) ON CONFLICT (host_id) DO UPDATE SET msid = excluded.msid, entry = excluded.entry', [
      entry.hostId,
      entry.msid,
      JSON.stringify(entry),
    ]);
  }

  /** {@inheritDoc ConfigurationStore.replaceHost} */
  async replaceHost(expected: HostEntry | undefined, next: HostEntry): Promise<boolean> {
    const pool = this.#open();
    if (!sameHost(expected, next)) return false;
    return lostToUniqueMsid(() => swapHost(pool, expected, next));
  }

  /** {@inheritDoc ConfigurationStore.hosts} */
  async hosts(): Promise<HostEntry[]> {
    return this.#all<HostEntry>('SELECT entry FROM hosts ORDER BY host_id COLLATE "C"', 'entry', []);
  }

  /** {@inheritDoc ConfigurationStore.latest} */
  async latest(hostId: string): Promise<FullReport | undefined> {
    return this.#one<FullReport>('SELECT report FROM reports WHERE host_id = $1 AND slot = 0', 'report', [hostId]);
  }

  /** {@inheritDoc ConfigurationStore.previous} */
  async previous(hostId: string): Promise<FullReport | undefined> {
    return this.#one<FullReport>('SELECT report FROM reports WHERE host_id = $1 AND slot = 1', 'report', [hostId]);
  }

  /** {@inheritDoc ConfigurationStore.putReport} */
  async putReport(hostId: string, report: FullReport): Promise<void> {
    await inTransaction(this.#open(), REPORT_LOCK, async (c) => {
      await storeReport(c, hostId, report);
    });
  }

  /** {@inheritDoc ConfigurationStore.commitReport} */
  async commitReport(commit: ReportCommit): Promise<boolean> {
    const pool = this.#open();
    const { host, report } = commit;
    if (!sameHost(commit.expectedHost, host)) return false;
    return lostToUniqueMsid(async () =>
      inTransaction(pool, REPORT_LOCK, async (c) => {
        const latest = (await c.query('SELECT seq FROM reports WHERE host_id = $1 AND slot = 0', [host.hostId])).rows[0];
        if ((latest === undefined ? null : Number(latest['seq'])) !== commit.expectedSeq) return false;
        if (!(await swapHost(c, commit.expectedHost, host))) return false;
        await storeReport(c, host.hostId, report);
        return true;
      }),
    );
  }

  /** {@inheritDoc ConfigurationStore.putAction} */
  async putAction(action: ActionRecord): Promise<void> {
    await this.#open().query('INSERT INTO actions (id, host_id, created, action) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET action = excluded.action', [
      action.id,
      action.hostId,
      action.createdAt,
      JSON.stringify(action),
    ]);
  }

  /** {@inheritDoc ConfigurationStore.claimAction} */
  async claimAction(action: ActionRecord): Promise<ActionRecord | null> {
    return inTransaction(this.#open(), ACTION_LOCK, async (c) => {
      for (const r of (await c.query('SELECT action FROM actions WHERE host_id = $1', [action.hostId])).rows) {
        const a = JSON.parse(String(r['action'])) as ActionRecord;
        if (blocks(a, action)) return a;
      }
      await c.query('INSERT INTO actions (id, host_id, created, action) VALUES ($1, $2, $3, $4)', [action.id, action.hostId, action.createdAt, JSON.stringify(action)]);
      return null;
    });
  }

  /** {@inheritDoc ConfigurationStore.replaceAction} */
  async replaceAction(expected: ActionRecord, next: ActionRecord): Promise<boolean> {
    const pool = this.#open();
    if (!replaceable(expected, next)) return false;
    return (await pool.query('UPDATE actions SET action = $3 WHERE id = $1 AND action = $2', [expected.id, JSON.stringify(expected), JSON.stringify(next)])).rowCount === 1;
  }

  /** {@inheritDoc ConfigurationStore.getAction} */
  async getAction(id: string): Promise<ActionRecord | undefined> {
    return this.#one<ActionRecord>('SELECT action FROM actions WHERE id = $1', 'action', [id]);
  }

  /** {@inheritDoc ConfigurationStore.actions} */
  async actions(hostId?: string): Promise<ActionRecord[]> {
    return hostId === undefined
      ? this.#all<ActionRecord>('SELECT action FROM actions ORDER BY created, id COLLATE "C"', 'action', [])
      : this.#all<ActionRecord>('SELECT action FROM actions WHERE host_id = $1 ORDER BY created, id COLLATE "C"', 'action', [hostId]);
  }

  /** {@inheritDoc ConfigurationStore.getPolicy} */
  async getPolicy(): Promise<PolicyDocument | undefined> {
    return this.#one<PolicyDocument>('SELECT doc FROM policy WHERE id = 1', 'doc', []);
  }

  /** {@inheritDoc ConfigurationStore.setPolicy} */
  async setPolicy(doc: PolicyDocument): Promise<void> {
    await this.#open().query('INSERT INTO policy (id, doc) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc', [JSON.stringify(doc)]);
  }

  /** {@inheritDoc ConfigurationStore.close} */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    if (pool !== undefined && this.#owned) await pool.end();
  }
}
