/**
 * The security information database in one SQLite file, through
 * better-sqlite3 (the default store of the center; same conventions as the
 * relay's SqliteServerStore: the addon is loaded only when a store is
 * opened, its types stay in this file, WAL, `PRAGMA user_version`).
 *
 * Schema version 1:
 *
 * ```sql
 * CREATE TABLE advisories (
 *   id          TEXT    NOT NULL PRIMARY KEY,  -- OSV ID
 *   modified_ms INTEGER NOT NULL,              -- `modified`, ms since the Unix epoch
 *   doc         TEXT    NOT NULL               -- the Advisory as JSON, `affected` left out
 * ) STRICT, WITHOUT ROWID;
 * CREATE TABLE affected (                      -- one row per affected package of an advisory
 *   advisory_id TEXT    NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
 *   position    INTEGER NOT NULL,              -- index in `affected`
 *   ecosystem   TEXT    NOT NULL,              -- 'Debian:12'
 *   package     TEXT    NOT NULL,              -- source package for Debian
 *   entry       TEXT    NOT NULL,              -- the AffectedPackage as JSON (ranges, versions, …)
 *   PRIMARY KEY (advisory_id, position)
 * ) STRICT, WITHOUT ROWID;
 * CREATE INDEX affected_by_package ON affected (ecosystem, package);
 * CREATE TABLE aliases (                       -- an advisory's own ID and its aliases
 *   alias       TEXT    NOT NULL,
 *   advisory_id TEXT    NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
 *   PRIMARY KEY (alias, advisory_id)
 * ) STRICT, WITHOUT ROWID;
 * CREATE TABLE countermeasures (
 *   advisory_id TEXT    NOT NULL PRIMARY KEY,  -- not a foreign key: steps may arrive before their advisory
 *   steps       TEXT    NOT NULL               -- Countermeasure[] as JSON
 * ) STRICT, WITHOUT ROWID;
 * ```
 *
 * Each call that writes runs in one `BEGIN IMMEDIATE` transaction.
 */
import { ConfigError } from '../../../errors/index.js';
import type { Countermeasure, CountermeasureSet } from '../advisories/countermeasures.js';
import type { Advisory, AffectedPackage } from '../advisories/model.js';
import { openSqliteFile, type SqliteDatabase as Database, type SqliteStatement as Statement } from '../../../store/index.js';
import {
  advisoryJson,
  modifiedMs,
  storeClosed,
  type PutAdvisoriesResult,
  type SecurityStore,
  type SecurityStoreCounts,
} from './types.js';

/** The schema version this gatesock writes and reads (`PRAGMA user_version`). @public */
export const SECURITY_SQLITE_SCHEMA_VERSION = 1;

const SCHEMA_V1 = `
CREATE TABLE advisories (
  id          TEXT    NOT NULL PRIMARY KEY,
  modified_ms INTEGER NOT NULL,
  doc         TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE affected (
  advisory_id TEXT    NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
  position    INTEGER NOT NULL,
  ecosystem   TEXT    NOT NULL,
  package     TEXT    NOT NULL,
  entry       TEXT    NOT NULL,
  PRIMARY KEY (advisory_id, position)
) STRICT, WITHOUT ROWID;
CREATE INDEX affected_by_package ON affected (ecosystem, package);
CREATE TABLE aliases (
  alias       TEXT    NOT NULL,
  advisory_id TEXT    NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
  PRIMARY KEY (alias, advisory_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE countermeasures (
  advisory_id TEXT    NOT NULL PRIMARY KEY,
  steps       TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
`;

/** Rows are read in pages of this many advisories by {@link SqliteSecurityStore.advisories}. */
const PAGE = 500;

/** A {@link SecurityStore} in a SQLite file; open one with {@link SqliteSecurityStore.open}. @public */
export class SqliteSecurityStore implements SecurityStore {
  /** The file this store was opened on (`:memory:` for a private database in memory). */
  readonly path: string;
  #db: Database | undefined;
  readonly #s: Record<
    'get' | 'modified' | 'insert' | 'deleteAdv' | 'affectedOf' | 'insAffected' | 'delAffected' | 'insAlias' | 'delAlias' | 'byAlias' | 'byPackage' | 'page' | 'getCm' | 'allCm' | 'putCm' | 'delCm' | 'countAdv' | 'countCm',
    Statement
  >;
  readonly #put: (list: readonly Advisory[]) => PutAdvisoriesResult;
  readonly #putCm: (entries: [string, string][]) => void;
  readonly #delete: (id: string) => boolean;

  private constructor(path: string, db: Database) {
    this.path = path;
    this.#db = db;
    const p = (sql: string) => db.prepare(sql);
    this.#s = {
      get: p('SELECT id, doc FROM advisories WHERE id = ?'),
      modified: p('SELECT modified_ms AS m FROM advisories WHERE id = ?'),
      insert: p('INSERT INTO advisories (id, modified_ms, doc) VALUES (?, ?, ?)'),
      deleteAdv: p('DELETE FROM advisories WHERE id = ?'),
      affectedOf: p('SELECT entry FROM affected WHERE advisory_id = ? ORDER BY position'),
      insAffected: p('INSERT INTO affected (advisory_id, position, ecosystem, package, entry) VALUES (?, ?, ?, ?, ?)'),
      delAffected: p('DELETE FROM affected WHERE advisory_id = ?'),
      insAlias: p('INSERT OR IGNORE INTO aliases (alias, advisory_id) VALUES (?, ?)'),
      delAlias: p('DELETE FROM aliases WHERE advisory_id = ?'),
      byAlias: p('SELECT advisory_id AS id FROM aliases WHERE alias = ? ORDER BY advisory_id'),
      byPackage: p('SELECT DISTINCT advisory_id AS id FROM affected WHERE ecosystem = ? AND package = ? ORDER BY advisory_id'),
      page: p('SELECT id, doc FROM advisories WHERE id > ? ORDER BY id LIMIT ?'),
      getCm: p('SELECT steps FROM countermeasures WHERE advisory_id = ?'),
      allCm: p('SELECT advisory_id AS id, steps FROM countermeasures ORDER BY advisory_id'),
      putCm: p('INSERT INTO countermeasures (advisory_id, steps) VALUES (?, ?) ON CONFLICT (advisory_id) DO UPDATE SET steps = excluded.steps'),
      delCm: p('DELETE FROM countermeasures WHERE advisory_id = ?'),
      countAdv: p('SELECT count(*) AS n FROM advisories'),
      countCm: p('SELECT count(*) AS n FROM countermeasures'),
    };
    const s = this.#s;
    const remove = (id: string) => {
      s.delAffected.run(id);
      s.delAlias.run(id);
      return s.deleteAdv.run(id).changes > 0;
    };
    const put = db.transaction((list: readonly Advisory[]) => {
      const added: string[] = [];
      const updated: string[] = [];
      const unchanged: string[] = [];
      const stale: string[] = [];
      for (const a of list) {
        const old = s.get.get(a.id) as { id: string; doc: string } | undefined;
        if (old) {
          const oldAdv = this.#assemble(old);
          if (modifiedMs(oldAdv) > modifiedMs(a)) {
            stale.push(a.id);
            continue;
          }
          if (advisoryJson(oldAdv) === advisoryJson(a)) {
            unchanged.push(a.id);
            continue;
          }
          remove(a.id);
          updated.push(a.id);
        } else added.push(a.id);
        const { affected, ...rest } = a;
        s.insert.run(a.id, modifiedMs(a), JSON.stringify(rest));
        affected.forEach((e, i) => s.insAffected.run(a.id, i, e.ecosystem, e.name, JSON.stringify(e)));
        s.insAlias.run(a.id, a.id);
        for (const al of a.aliases) s.insAlias.run(al, a.id);
      }
      return { added, updated, unchanged, stale };
    });
    this.#put = (list) => put.immediate(list);
    const putCm = db.transaction((entries: [string, string][]) => {
      for (const [id, steps] of entries) s.putCm.run(id, steps);
    });
    this.#putCm = (entries) => putCm.immediate(entries);
    const del = db.transaction((id: string) => remove(id));
    this.#delete = (id) => del.immediate(id);
  }

  /**
   * Open (and on first use create) the database at `path` (`:memory:` for a
   * private one). `ConfigError` `GS_ERR_INVALID_OPTION` when better-sqlite3
   * cannot load, the file is not a gatesock security database, or its
   * schema is newer than {@link SECURITY_SQLITE_SCHEMA_VERSION}.
   */
  static async open(path: string): Promise<SqliteSecurityStore> {
    if (typeof path !== 'string' || path.length === 0) throw new ConfigError('GS_ERR_INVALID_OPTION', 'path must be a file path or ":memory:"');
    const db = await openSqliteFile({ path, kind: 'SQLite security database', what: 'security', alternative: 'MemorySecurityStore', foreignKeys: true, migrate: (d) => migrate(d, path) });
    return new SqliteSecurityStore(path, db);
  }


  /** {@inheritDoc SecurityStore.putAdvisories} */
  async putAdvisories(list: readonly Advisory[]): Promise<PutAdvisoriesResult> {
    this.#open();
    return this.#put(list);
  }

  /** {@inheritDoc SecurityStore.getAdvisory} */
  async getAdvisory(id: string): Promise<Advisory | undefined> {
    this.#open();
    const row = this.#s.get.get(id) as { id: string; doc: string } | undefined;
    return row && this.#assemble(row);
  }

  /** {@inheritDoc SecurityStore.findByAlias} */
  async findByAlias(alias: string): Promise<Advisory[]> {
    this.#open();
    return this.#byIds(this.#s.byAlias.all(alias) as { id: string }[]);
  }

  /** {@inheritDoc SecurityStore.advisoriesFor} */
  async advisoriesFor(ecosystem: string, packageName: string): Promise<Advisory[]> {
    this.#open();
    return this.#byIds(this.#s.byPackage.all(ecosystem, packageName) as { id: string }[]);
  }

  /** {@inheritDoc SecurityStore.advisories} */
  async *advisories(): AsyncIterable<Advisory> {
    let after = '';
    for (;;) {
      this.#open();
      const rows = this.#s.page.all(after, PAGE) as { id: string; doc: string }[];
      for (const r of rows) yield this.#assemble(r);
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1]!.id;
    }
  }

  /** {@inheritDoc SecurityStore.deleteAdvisory} */
  async deleteAdvisory(id: string): Promise<boolean> {
    this.#open();
    return this.#delete(id);
  }

  /** {@inheritDoc SecurityStore.putCountermeasures} */
  async putCountermeasures(set: CountermeasureSet): Promise<void> {
    this.#open();
    this.#putCm([...set].map(([id, steps]) => [id, JSON.stringify(steps)]));
  }

  /** {@inheritDoc SecurityStore.getCountermeasures} */
  async getCountermeasures(id: string): Promise<readonly Countermeasure[] | undefined> {
    this.#open();
    const row = this.#s.getCm.get(id) as { steps: string } | undefined;
    return row && (JSON.parse(row.steps) as Countermeasure[]);
  }

  /** {@inheritDoc SecurityStore.countermeasures} */
  async countermeasures(): Promise<Map<string, readonly Countermeasure[]>> {
    this.#open();
    return new Map((this.#s.allCm.all() as { id: string; steps: string }[]).map((r) => [r.id, JSON.parse(r.steps) as Countermeasure[]]));
  }

  /** {@inheritDoc SecurityStore.deleteCountermeasures} */
  async deleteCountermeasures(id: string): Promise<boolean> {
    this.#open();
    return this.#s.delCm.run(id).changes > 0;
  }

  /** {@inheritDoc SecurityStore.count} */
  async count(): Promise<SecurityStoreCounts> {
    this.#open();
    return {
      advisories: (this.#s.countAdv.get() as { n: number }).n,
      countermeasures: (this.#s.countCm.get() as { n: number }).n,
    };
  }

  /** {@inheritDoc SecurityStore.close} */
  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    db?.close();
  }

  #open(): void {
    if (this.#db === undefined) throw storeClosed();
  }

  #assemble(row: { id: string; doc: string }): Advisory {
    const rest = JSON.parse(row.doc) as Omit<Advisory, 'affected'>;
    const affected = (this.#s.affectedOf.all(row.id) as { entry: string }[]).map((r) => JSON.parse(r.entry) as AffectedPackage);
    return { ...rest, affected };
  }

  #byIds(rows: { id: string }[]): Advisory[] {
    const out: Advisory[] = [];
    for (const { id } of rows) {
      const row = this.#s.get.get(id) as { id: string; doc: string } | undefined;
      if (row) out.push(this.#assemble(row));
    }
    return out;
  }
}

function migrate(db: Database, path: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === SECURITY_SQLITE_SCHEMA_VERSION) {
    const t = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'advisories'").get();
    if (t === undefined) throw new ConfigError('GS_ERR_INVALID_OPTION', `"${path}" is not a gatesock security database`);
    return;
  }
  if (version > SECURITY_SQLITE_SCHEMA_VERSION) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `"${path}" has security schema ${version}, newer than this gatesock's ${SECURITY_SQLITE_SCHEMA_VERSION}; upgrade gatesock`);
  }
  const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };
  if (tables.n > 0) throw new ConfigError('GS_ERR_INVALID_OPTION', `"${path}" holds other tables and no gatesock security schema; refusing to write into it`);
  db.transaction(() => {
    db.exec(SCHEMA_V1);
    db.pragma(`user_version = ${SECURITY_SQLITE_SCHEMA_VERSION}`);
  }).immediate();
}
