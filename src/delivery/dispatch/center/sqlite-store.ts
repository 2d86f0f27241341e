/**
 * The center's default dispatch store: one SQLite file through
 * better-sqlite3, with the conventions of the relay's server database
 * (src/relay/store/sqlite.ts): the driver is loaded only when a store is
 * opened, write-ahead logging with `synchronous = NORMAL`, prepared
 * statements, multi-row changes in one transaction, and the schema version
 * in `PRAGMA user_version` (a newer file is refused).
 *
 * Schema version 1:
 *
 * ```sql
 * CREATE TABLE bundles (digest TEXT PRIMARY KEY, name TEXT, version INTEGER, size INTEGER,
 *                       metadata TEXT, created INTEGER)
 * CREATE TABLE dispatches (id TEXT PRIMARY KEY, bundle TEXT REFERENCES bundles, options TEXT,  -- JSON
 *                          state TEXT, created INTEGER, last_run INTEGER)
 * CREATE TABLE runs (dispatch_id, run, args TEXT,   -- JSON or NULL
 *                    state, wave, waves TEXT, created, ended, PRIMARY KEY (dispatch_id, run))
 * CREATE TABLE targets (dispatch_id, run, msid, seq, pcid, wave, state, attempts, next_attempt,
 *                       evidence, issued_at, outcome, exit_code, signal, reason, report, certificate, updated,
 *                       PRIMARY KEY (dispatch_id, run, msid))
 * CREATE TABLE evidence (evidence TEXT PRIMARY KEY, dispatch_id, run, msid, issued_at, status)
 * CREATE TABLE failures (seq INTEGER PRIMARY KEY, dispatch_id, run, msid, at, reason, message)
 * ```
 * (all STRICT; the exact DDL is `SCHEMA_V1` below).
 *
 * The evidence values sit in this file in clear: a center must keep them to
 * check reports after a restart. Protect the file like the center's key.
 */
import { ConfigError, DispatchError } from '../../../errors/index.js';
import { openSqliteFile, type SqliteDatabase as Database, type SqliteStatement as Statement, type SqliteTransaction as Transaction } from '../../../store/index.js';
import {
  emptyCounts,
  newTargetRow,
  reusedEvidence,
  unknownDispatch,
  type AcceptedReport,
  type DispatchStore,
  type NewTarget,
  type RunState,
  type StoredBundle,
  type StoredDispatch,
  type StoredEvidence,
  type StoredFailure,
  type StoredRun,
  type StoredTarget,
  type TargetKey,
  type TargetPatch,
} from './store.js';
import type { TargetState } from './target.js';

/**
 * The dispatch-store schema version this gatesock writes and reads.
 * @public
 */
export const DISPATCH_SQLITE_SCHEMA_VERSION = 1;

const SCHEMA_V1 = `
CREATE TABLE bundles (
  digest   TEXT    NOT NULL PRIMARY KEY,
  name     TEXT    NOT NULL,
  version  INTEGER NOT NULL,
  size     INTEGER NOT NULL,
  metadata TEXT    NOT NULL,
  created  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE dispatches (
  id       TEXT    NOT NULL PRIMARY KEY,
  bundle   TEXT    NOT NULL REFERENCES bundles (digest),
  options  TEXT    NOT NULL,
  state    TEXT    NOT NULL,
  created  INTEGER NOT NULL,
  last_run INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE runs (
  dispatch_id TEXT    NOT NULL REFERENCES dispatches (id),
  run         INTEGER NOT NULL,
  args        TEXT,
  state       TEXT    NOT NULL,
  wave        INTEGER NOT NULL,
  waves       TEXT    NOT NULL,
  created     INTEGER NOT NULL,
  ended       INTEGER,
  PRIMARY KEY (dispatch_id, run)
) STRICT, WITHOUT ROWID;
CREATE TABLE targets (
  dispatch_id  TEXT    NOT NULL,
  run          INTEGER NOT NULL,
  msid         TEXT    NOT NULL,
  seq          INTEGER NOT NULL,
  pcid         TEXT    NOT NULL,
  wave         INTEGER NOT NULL,
  state        TEXT    NOT NULL,
  attempts     INTEGER NOT NULL,
  next_attempt INTEGER,
  evidence     TEXT,
  issued_at    INTEGER,
  outcome      TEXT,
  exit_code    INTEGER,
  signal       TEXT,
  reason       TEXT,
  report       TEXT,
  certificate  TEXT,
  updated      INTEGER NOT NULL,
  PRIMARY KEY (dispatch_id, run, msid),
  FOREIGN KEY (dispatch_id, run) REFERENCES runs (dispatch_id, run)
) STRICT, WITHOUT ROWID;
CREATE INDEX targets_by_seq ON targets (dispatch_id, run, seq);
CREATE TABLE evidence (
  evidence    TEXT    NOT NULL PRIMARY KEY,
  dispatch_id TEXT    NOT NULL,
  run         INTEGER NOT NULL,
  msid        TEXT    NOT NULL,
  issued_at   INTEGER NOT NULL,
  status      TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE failures (
  seq         INTEGER PRIMARY KEY,
  dispatch_id TEXT,
  run         INTEGER,
  msid        TEXT    NOT NULL,
  at          INTEGER NOT NULL,
  reason      TEXT    NOT NULL,
  message     TEXT    NOT NULL
) STRICT;
CREATE INDEX failures_by_dispatch ON failures (dispatch_id, seq);
`;

interface TargetRow {
  dispatch_id: string;
  run: number;
  msid: string;
  pcid: string;
  wave: number;
  state: string;
  attempts: number;
  next_attempt: number | null;
  evidence: string | null;
  issued_at: number | null;
  outcome: string | null;
  exit_code: number | null;
  signal: string | null;
  reason: string | null;
  report: string | null;
  certificate: string | null;
  updated: number;
}

const PATCH_COLUMNS: Record<keyof TargetPatch, string> = {
  state: 'state',
  attempts: 'attempts',
  nextAttemptAt: 'next_attempt',
  outcome: 'outcome',
  exitCode: 'exit_code',
  reason: 'reason',
  report: 'report',
  certificate: 'certificate',
};

/**
 * A {@link DispatchStore} in a SQLite file: a center opened again on the
 * same file (and {@link DispatchCenter.resume}) carries on where the last
 * one stopped.
 * @public
 */
export class SqliteDispatchStore implements DispatchStore {
  /** The file (`:memory:` for a private database in memory). */
  readonly path: string;
  #db: Database | undefined;
  readonly #s: Record<string, Statement>;
  readonly #patchCache = new Map<string, Statement>();
  readonly #tx: {
    createDispatch: Transaction<[Omit<StoredDispatch, 'state' | 'lastRun'>, RunInput, readonly NewTarget[]], void>;
    createRun: Transaction<[string, RunInput, readonly NewTarget[]], number>;
    issue: Transaction<[TargetKey, string, number, TargetPatch | undefined], void>;
    reinstate: Transaction<[TargetKey, string, number], void>;
    accept: Transaction<[TargetKey, AcceptInput, number], void>;
    updateRun: Transaction<[string, number, Partial<Pick<StoredRun, 'state' | 'wave' | 'endedAt'>>], void>;
  };

  private constructor(path: string, db: Database) {
    this.path = path;
    this.#db = db;
    const p = (sql: string) => db.prepare(sql);
    this.#s = {
      putBundle: p('INSERT OR IGNORE INTO bundles (digest, name, version, size, metadata, created) VALUES (?, ?, ?, ?, ?, ?)'),
      getBundle: p('SELECT digest, name, version, size, metadata, created FROM bundles WHERE digest = ?'),
      insertDispatch: p('INSERT INTO dispatches (id, bundle, options, state, created, last_run) VALUES (?, ?, ?, ?, ?, ?)'),
      getDispatch: p('SELECT id, bundle, options, state, created, last_run FROM dispatches WHERE id = ?'),
      listDispatches: p('SELECT id, bundle, options, state, created, last_run FROM dispatches ORDER BY created, id'),
      listUnfinished: p("SELECT id, bundle, options, state, created, last_run FROM dispatches WHERE state = 'running' ORDER BY created, id"),
      setLastRun: p("UPDATE dispatches SET last_run = ?, state = 'running' WHERE id = ?"),
      setDispatchState: p('UPDATE dispatches SET state = ? WHERE id = ? AND last_run = ?'),
      insertRun: p('INSERT INTO runs (dispatch_id, run, args, state, wave, waves, created, ended) VALUES (?, ?, ?, ?, 0, ?, ?, NULL)'),
      getRun: p('SELECT dispatch_id, run, args, state, wave, waves, created, ended FROM runs WHERE dispatch_id = ? AND run = ?'),
      listRuns: p('SELECT dispatch_id, run, args, state, wave, waves, created, ended FROM runs WHERE dispatch_id = ? ORDER BY run'),
      insertTarget: p(
        "INSERT INTO targets (dispatch_id, run, msid, seq, pcid, wave, state, attempts, next_attempt, evidence, issued_at, outcome, exit_code, signal, reason, report, certificate, updated) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ?)",
      ),
      getTarget: p('SELECT * FROM targets WHERE dispatch_id = ? AND run = ? AND msid = ?'),
      listTargets: p('SELECT * FROM targets WHERE dispatch_id = ? AND run = ? ORDER BY seq'),
      listWave: p('SELECT * FROM targets WHERE dispatch_id = ? AND run = ? AND wave = ? ORDER BY seq'),
      countTargets: p('SELECT state, count(*) AS n FROM targets WHERE dispatch_id = ? AND run = ? GROUP BY state'),
      setEvidence: p('UPDATE targets SET evidence = ?, issued_at = ?, updated = ? WHERE dispatch_id = ? AND run = ? AND msid = ?'),
      getEvidence: p('SELECT evidence, dispatch_id, run, msid, issued_at, status FROM evidence WHERE evidence = ?'),
      insertEvidence: p("INSERT INTO evidence (evidence, dispatch_id, run, msid, issued_at, status) VALUES (?, ?, ?, ?, ?, 'current')"),
      setEvidenceStatus: p('UPDATE evidence SET status = ? WHERE evidence = ? AND status = ?'),
      reinstate: p("UPDATE evidence SET status = 'current' WHERE evidence = ?"),
      accept: p(
        'UPDATE targets SET state = ?, outcome = ?, exit_code = ?, signal = ?, report = ?, certificate = ?, next_attempt = NULL, updated = ? WHERE dispatch_id = ? AND run = ? AND msid = ?',
      ),
      insertFailure: p('INSERT INTO failures (dispatch_id, run, msid, at, reason, message) VALUES (?, ?, ?, ?, ?, ?)'),
      listFailures: p('SELECT dispatch_id, run, msid, at, reason, message FROM failures ORDER BY seq'),
      listFailuresOf: p('SELECT dispatch_id, run, msid, at, reason, message FROM failures WHERE dispatch_id = ? ORDER BY seq'),
    };
    const s = this.#s;
    const insertTargets = (id: string, run: number, targets: readonly NewTarget[], at: number) => {
      let seq = 0;
      for (const t of targets) s.insertTarget!.run(id, run, t.msid, seq++, t.pcid, t.wave, at);
    };
    this.#tx = {
      createDispatch: db.transaction((d: Omit<StoredDispatch, 'state' | 'lastRun'>, r: RunInput, targets: readonly NewTarget[]) => {
        if (s.getBundle!.get(d.bundle) === undefined) throw new DispatchError('GS_ERR_DISPATCH_UNKNOWN_BUNDLE', `the dispatch store has no bundle ${d.bundle}`);
        if (s.getDispatch!.get(d.id) !== undefined) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `dispatch ${d.id} already exists`);
        s.insertDispatch!.run(d.id, d.bundle, JSON.stringify(d.options), 'running', d.createdAt, 0);
        s.insertRun!.run(d.id, 0, r.args === null ? null : JSON.stringify(r.args), 'running', JSON.stringify(r.waves), r.createdAt);
        insertTargets(d.id, 0, targets, r.createdAt);
      }),
      createRun: db.transaction((id: string, r: RunInput, targets: readonly NewTarget[]) => {
        const d = s.getDispatch!.get(id) as { last_run: number } | undefined;
        if (!d) throw unknownDispatch(`dispatch ${id}`);
        const n = d.last_run + 1;
        s.setLastRun!.run(n, id);
        s.insertRun!.run(id, n, r.args === null ? null : JSON.stringify(r.args), 'running', JSON.stringify(r.waves), r.createdAt);
        insertTargets(id, n, targets, r.createdAt);
        return n;
      }),
      issue: db.transaction((k: TargetKey, evidence: string, at: number, patch?: TargetPatch) => {
        const t = s.getTarget!.get(k.dispatchId, k.run, k.msid) as TargetRow | undefined;
        if (!t) throw unknownDispatch(`target ${k.dispatchId}/${k.run}/${k.msid}`);
        if (s.getEvidence!.get(evidence) !== undefined) throw reusedEvidence();
        if (t.evidence !== null) s.setEvidenceStatus!.run('superseded', t.evidence, 'current');
        s.insertEvidence!.run(evidence, k.dispatchId, k.run, k.msid, at);
        s.setEvidence!.run(evidence, at, at, k.dispatchId, k.run, k.msid);
        if (patch !== undefined) this.#patchTarget(k, patch, at);
      }),
      reinstate: db.transaction((k: TargetKey, previous: string, at: number) => {
        const t = s.getTarget!.get(k.dispatchId, k.run, k.msid) as TargetRow | undefined;
        const old = s.getEvidence!.get(previous) as { dispatch_id: string; run: number; msid: string; issued_at: number } | undefined;
        if (!t || !old || old.dispatch_id !== k.dispatchId || old.run !== k.run || old.msid !== k.msid) throw unknownDispatch(`evidence ${previous.slice(0, 8)}… of target ${k.dispatchId}/${k.run}/${k.msid}`);
        if (t.evidence !== null && t.evidence !== previous) s.setEvidenceStatus!.run('superseded', t.evidence, 'current');
        s.reinstate!.run(previous);
        s.setEvidence!.run(previous, old.issued_at, at, k.dispatchId, k.run, k.msid);
      }),
      accept: db.transaction((k: TargetKey, r: AcceptInput, at: number) => {
        const t = s.getTarget!.get(k.dispatchId, k.run, k.msid) as TargetRow | undefined;
        if (!t) throw unknownDispatch(`target ${k.dispatchId}/${k.run}/${k.msid}`);
        if (t.evidence !== null) s.setEvidenceStatus!.run('accepted', t.evidence, 'current');
        s.accept!.run(r.state, r.outcome, r.exitCode, r.signal, r.report, r.certificate, at, k.dispatchId, k.run, k.msid);
      }),
      updateRun: db.transaction((id: string, run: number, patch: Partial<Pick<StoredRun, 'state' | 'wave' | 'endedAt'>>) => {
        const sets: string[] = [];
        const values: unknown[] = [];
        if (patch.state !== undefined) (sets.push('state = ?'), values.push(patch.state));
        if (patch.wave !== undefined) (sets.push('wave = ?'), values.push(patch.wave));
        if (patch.endedAt !== undefined) (sets.push('ended = ?'), values.push(patch.endedAt));
        if (sets.length === 0) {
          if (s.getRun!.get(id, run) === undefined) throw unknownDispatch(`run ${run} of dispatch ${id}`);
          return;
        }
        const changed = this.#patchStatement(`runs:${sets.join(',')}`, `UPDATE runs SET ${sets.join(', ')} WHERE dispatch_id = ? AND run = ?`).run(...values, id, run);
        if (changed.changes === 0) throw unknownDispatch(`run ${run} of dispatch ${id}`);
        if (patch.state !== undefined) s.setDispatchState!.run(patch.state, id, run);
      }),
    };
  }

  /**
   * Open (and on first use create) the dispatch store at `path`; `:memory:`
   * makes a private one in memory. Rejects with `ConfigError`
   * `GS_ERR_INVALID_OPTION` when better-sqlite3 cannot load, when the file is
   * not a gatesock dispatch store, or when its schema is newer than
   * {@link DISPATCH_SQLITE_SCHEMA_VERSION}.
   */
  static async open(path: string): Promise<SqliteDispatchStore> {
    if (typeof path !== 'string' || path.length === 0) throw new ConfigError('GS_ERR_INVALID_OPTION', 'store must be a file path or ":memory:"');
    const db = await openSqliteFile({ path, kind: 'SQLite dispatch store', what: 'dispatch', alternative: 'MemoryDispatchStore', foreignKeys: true, migrate: (d) => migrate(d, path) });
    return new SqliteDispatchStore(path, db);
  }


  /** {@inheritDoc DispatchStore.putBundle} */
  putBundle(b: StoredBundle): void {
    this.#open();
    this.#s.putBundle!.run(b.digest, b.name, b.version, b.size, b.metadata, b.createdAt);
  }

  /** {@inheritDoc DispatchStore.getBundle} */
  getBundle(digest: string): StoredBundle | undefined {
    this.#open();
    const r = this.#s.getBundle!.get(digest) as { digest: string; name: string; version: number; size: number; metadata: string; created: number } | undefined;
    return r && { digest: r.digest, name: r.name, version: r.version, size: r.size, metadata: r.metadata, createdAt: r.created };
  }

  /** {@inheritDoc DispatchStore.createDispatch} */
  createDispatch(dispatch: Omit<StoredDispatch, 'state' | 'lastRun'>, run: Omit<StoredRun, 'dispatchId' | 'run' | 'state' | 'wave' | 'endedAt'>, targets: readonly NewTarget[]): void {
    this.#open();
    checkTargets(targets);
    this.#tx.createDispatch.immediate(dispatch, run, targets);
  }

  /** {@inheritDoc DispatchStore.getDispatch} */
  getDispatch(id: string): StoredDispatch | undefined {
    this.#open();
    const r = this.#s.getDispatch!.get(id) as DispatchRow | undefined;
    return r && dispatchOf(r);
  }

  /** {@inheritDoc DispatchStore.listDispatches} */
  listDispatches(filter: { unfinished?: boolean } = {}): StoredDispatch[] {
    this.#open();
    return ((filter.unfinished ? this.#s.listUnfinished! : this.#s.listDispatches!).all() as DispatchRow[]).map(dispatchOf);
  }

  /** {@inheritDoc DispatchStore.createRun} */
  createRun(dispatchId: string, run: Omit<StoredRun, 'dispatchId' | 'run' | 'state' | 'wave' | 'endedAt'>, targets: readonly NewTarget[]): number {
    this.#open();
    checkTargets(targets);
    return this.#tx.createRun.immediate(dispatchId, run, targets);
  }

  /** {@inheritDoc DispatchStore.getRun} */
  getRun(dispatchId: string, run: number): StoredRun | undefined {
    this.#open();
    const r = this.#s.getRun!.get(dispatchId, run) as RunRow | undefined;
    return r && runOf(r);
  }

  /** {@inheritDoc DispatchStore.listRuns} */
  listRuns(dispatchId: string): StoredRun[] {
    this.#open();
    return (this.#s.listRuns!.all(dispatchId) as RunRow[]).map(runOf);
  }

  /** {@inheritDoc DispatchStore.updateRun} */
  updateRun(dispatchId: string, run: number, patch: Partial<Pick<StoredRun, 'state' | 'wave' | 'endedAt'>>): void {
    this.#open();
    this.#tx.updateRun(dispatchId, run, patch);
  }

  /** {@inheritDoc DispatchStore.getTarget} */
  getTarget(key: TargetKey): StoredTarget | undefined {
    this.#open();
    const r = this.#s.getTarget!.get(key.dispatchId, key.run, key.msid) as TargetRow | undefined;
    return r && targetOf(r);
  }

  /** {@inheritDoc DispatchStore.listTargets} */
  listTargets(dispatchId: string, run: number, filter: { wave?: number } = {}): StoredTarget[] {
    this.#open();
    const rows = (filter.wave === undefined ? this.#s.listTargets!.all(dispatchId, run) : this.#s.listWave!.all(dispatchId, run, filter.wave)) as TargetRow[];
    return rows.map(targetOf);
  }

  /** {@inheritDoc DispatchStore.updateTarget} */
  updateTarget(key: TargetKey, patch: TargetPatch, at: number): void {
    this.#open();
    this.#patchTarget(key, patch, at);
  }

  /** One UPDATE of a target's patched columns and `updated` (inside a transaction or on its own). */
  #patchTarget(key: TargetKey, patch: TargetPatch, at: number): void {
    const names: string[] = [];
    const values: unknown[] = [];
    for (const [k, v] of Object.entries(patch) as [keyof TargetPatch, unknown][]) {
      if (v === undefined) continue;
      const column = PATCH_COLUMNS[k];
      if (column === undefined) continue;
      names.push(column);
      values.push(v);
    }
    const sql = `UPDATE targets SET ${names.map((n) => `${n} = ?, `).join('')}updated = ? WHERE dispatch_id = ? AND run = ? AND msid = ?`;
    const r = this.#patchStatement(`targets:${names.join(',')}`, sql).run(...values, at, key.dispatchId, key.run, key.msid);
    if (r.changes === 0) throw unknownDispatch(`target ${key.dispatchId}/${key.run}/${key.msid}`);
  }

  /** {@inheritDoc DispatchStore.countTargets} */
  countTargets(dispatchId: string, run: number): Record<TargetState, number> {
    this.#open();
    const counts = emptyCounts();
    for (const r of this.#s.countTargets!.all(dispatchId, run) as { state: TargetState; n: number }[]) counts[r.state] = r.n;
    return counts;
  }

  /** {@inheritDoc DispatchStore.issueEvidence} */
  issueEvidence(key: TargetKey, evidence: string, at: number, patch?: TargetPatch): void {
    this.#open();
    this.#tx.issue.immediate(key, evidence, at, patch);
  }

  /** {@inheritDoc DispatchStore.reinstateEvidence} */
  reinstateEvidence(key: TargetKey, previous: string, at: number): void {
    this.#open();
    this.#tx.reinstate.immediate(key, previous, at);
  }

  /** {@inheritDoc DispatchStore.findEvidence} */
  findEvidence(key: TargetKey, evidence: string): StoredEvidence | undefined {
    this.#open();
    const r = this.#s.getEvidence!.get(evidence) as { evidence: string; dispatch_id: string; run: number; msid: string; issued_at: number; status: StoredEvidence['status'] } | undefined;
    if (!r || r.dispatch_id !== key.dispatchId || r.run !== key.run || r.msid !== key.msid) return undefined;
    return { dispatchId: r.dispatch_id, run: r.run, msid: r.msid, evidence: r.evidence, issuedAt: r.issued_at, status: r.status };
  }

  /** {@inheritDoc DispatchStore.acceptReport} */
  acceptReport(key: TargetKey, result: AcceptedReport, at: number): void {
    this.#open();
    this.#tx.accept.immediate(key, result, at);
  }

  /** {@inheritDoc DispatchStore.recordFailure} */
  recordFailure(f: StoredFailure): void {
    this.#open();
    this.#s.insertFailure!.run(f.dispatchId, f.run, f.msid, f.at, f.reason, f.message);
  }

  /** {@inheritDoc DispatchStore.listFailures} */
  listFailures(dispatchId?: string): StoredFailure[] {
    this.#open();
    const rows = (dispatchId === undefined ? this.#s.listFailures!.all() : this.#s.listFailuresOf!.all(dispatchId)) as {
      dispatch_id: string | null;
      run: number | null;
      msid: string;
      at: number;
      reason: string;
      message: string;
    }[];
    return rows.map((r) => ({ dispatchId: r.dispatch_id, run: r.run, msid: r.msid, at: r.at, reason: r.reason, message: r.message }));
  }

  /** {@inheritDoc DispatchStore.close} */
  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    db?.close();
  }

  #patchStatement(key: string, sql: string): Statement {
    let s = this.#patchCache.get(key);
    if (s === undefined) {
      s = this.#db!.prepare(sql);
      this.#patchCache.set(key, s);
    }
    return s;
  }

  #open(): void {
    if (this.#db === undefined) throw new DispatchError('GS_ERR_DISPATCH_CLOSED', 'the dispatch store is closed');
  }
}

type RunInput = Omit<StoredRun, 'dispatchId' | 'run' | 'state' | 'wave' | 'endedAt'>;
type AcceptInput = AcceptedReport;
interface DispatchRow {
  id: string;
  bundle: string;
  options: string;
  state: RunState;
  created: number;
  last_run: number;
}
interface RunRow {
  dispatch_id: string;
  run: number;
  args: string | null;
  state: RunState;
  wave: number;
  waves: string;
  created: number;
  ended: number | null;
}

function checkTargets(targets: readonly NewTarget[]): void {
  const seen = new Set<string>();
  for (const t of targets) {
    if (seen.has(t.msid)) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `agent ${t.msid} is listed twice`);
    seen.add(t.msid);
  }
}

function dispatchOf(r: DispatchRow): StoredDispatch {
  return { id: r.id, bundle: r.bundle, options: JSON.parse(r.options) as StoredDispatch['options'], state: r.state, createdAt: r.created, lastRun: r.last_run };
}

function runOf(r: RunRow): StoredRun {
  return {
    dispatchId: r.dispatch_id,
    run: r.run,
    args: r.args === null ? null : (JSON.parse(r.args) as string[]),
    state: r.state,
    wave: r.wave,
    waves: JSON.parse(r.waves) as number[],
    createdAt: r.created,
    endedAt: r.ended,
  };
}

function targetOf(r: TargetRow): StoredTarget {
  const base = newTargetRow(r.dispatch_id, r.run, { msid: r.msid, pcid: r.pcid, wave: r.wave }, r.updated);
  return {
    ...base,
    state: r.state as TargetState,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt,
    evidence: r.evidence,
    issuedAt: r.issued_at,
    outcome: r.outcome,
    exitCode: r.exit_code,
    signal: r.signal,
    reason: r.reason,
    report: r.report,
    certificate: r.certificate,
  };
}

function migrate(db: Database, path: string): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > DISPATCH_SQLITE_SCHEMA_VERSION) {
      throw new ConfigError(
        'GS_ERR_INVALID_OPTION',
        `"${path}" has dispatch-store schema version ${version}, newer than the ${DISPATCH_SQLITE_SCHEMA_VERSION} this gatesock understands; upgrade gatesock`,
      );
    }
    if (version === DISPATCH_SQLITE_SCHEMA_VERSION) return;
    const existing = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name IN ('dispatches', 'targets')").get();
    if (existing !== undefined) throw new ConfigError('GS_ERR_INVALID_OPTION', `"${path}" has dispatch tables but no gatesock schema version; it is not a gatesock dispatch store`);
    db.exec(SCHEMA_V1);
    db.pragma(`user_version = ${DISPATCH_SQLITE_SCHEMA_VERSION}`);
  }).immediate();
}
