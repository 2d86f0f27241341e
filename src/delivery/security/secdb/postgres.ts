/**
 * The security information database on a PostgreSQL server, through
 * node-postgres (`pg`), for centers that share their databases (issue 8:
 * SQLite by default, PostgreSQL when configured). Same tables as
 * {@link SqliteSecurityStore}; `pg` is loaded only when a store is opened and
 * its types stay in this file.
 *
 * Schema version 1 (the row `('security', 1)` of `gatesock_schema`, which the
 * configuration store shares, so both can live in one database):
 *
 * ```sql
 * CREATE TABLE gatesock_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
 * CREATE TABLE advisories (
 *   id          TEXT   NOT NULL PRIMARY KEY,   -- OSV ID
 *   modified_ms BIGINT NOT NULL,               -- `modified`, ms since the Unix epoch
 *   doc         TEXT   NOT NULL                -- the Advisory as JSON, `affected` left out
 * );
 * CREATE TABLE affected (                      -- one row per affected package of an advisory
 *   advisory_id TEXT    NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
 *   position    INTEGER NOT NULL,              -- index in `affected`
 *   ecosystem   TEXT    NOT NULL,              -- 'Debian:12'
 *   package     TEXT    NOT NULL,              -- source package for Debian
 *   entry       TEXT    NOT NULL,              -- the AffectedPackage as JSON
 *   PRIMARY KEY (advisory_id, position)
 * );
 * CREATE INDEX affected_by_package ON affected (ecosystem, package);
 * CREATE TABLE aliases (                       -- an advisory's own ID and its aliases
 *   alias       TEXT NOT NULL,
 *   advisory_id TEXT NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
 *   PRIMARY KEY (alias, advisory_id)
 * );
 * CREATE TABLE countermeasures (
 *   advisory_id TEXT NOT NULL PRIMARY KEY,     -- not a foreign key: steps may arrive before their advisory
 *   steps       TEXT NOT NULL                  -- Countermeasure[] as JSON
 * );
 * ```
 *
 * Text columns compare with `COLLATE "C"` where the order is read, so pages
 * come back in the same (code point) order as SQLite's. Each call that
 * writes runs in one transaction that first takes a transaction-level
 * advisory lock: writers are serialised, as `BEGIN IMMEDIATE` does in SQLite.
 */
import { ConfigError, GatesockError } from '../../../errors/index.js';
import type { Countermeasure, CountermeasureSet } from '../advisories/countermeasures.js';
import type { Advisory, AffectedPackage } from '../advisories/model.js';
import { advisoryJson, modifiedMs, storeClosed, type PutAdvisoriesResult, type SecurityStore, type SecurityStoreCounts } from './types.js';

/** The schema version this gatesock writes and reads (row `security` of `gatesock_schema`). @public */
export const SECURITY_POSTGRES_SCHEMA_VERSION = 1;

/** One result of a query: the rows as plain objects. @public */
export interface PostgresQueryResult {
  /** The rows, column name → value. */
  readonly rows: Record<string, unknown>[];
  /** Rows the statement touched (null for some statements). */
  readonly rowCount: number | null;
}

/** A client checked out of a pool (node-postgres `PoolClient`'s parts the stores use). @public */
export interface PostgresClient {
  /** Run one statement with `$1…` parameters. */
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult>;
  /** Give the client back to its pool (an error destroys it instead). */
  release(err?: Error | boolean): void;
}

/**
 * A connection pool: the parts of node-postgres's `pg.Pool` the stores use, so
 * a `new pg.Pool(…)` can be passed as it is (the store then leaves it open on
 * `close()`: the pool is the caller's).
 * @public
 */
export interface PostgresPool {
  /** Run one statement on any pooled connection. */
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult>;
  /** Check a client out for a transaction. */
  connect(): Promise<PostgresClient>;
  /** Close every connection. */
  end(): Promise<void>;
}

/** Where a PostgreSQL store keeps its tables: a connection string (`postgres://user@host:5432/db`) or a pool. @public */
export type PostgresTarget = string | PostgresPool;

/** Whether a string is a PostgreSQL connection string (`postgres://` or `postgresql://`). @public */
export function isPostgresUrl(value: unknown): value is string {
  return typeof value === 'string' && /^postgres(?:ql)?:\/\//i.test(value);
}

/**
 * A pool for `target`: the given pool (not ours to end), or a new pg.Pool on
 * the connection string (ours). Loads `pg` lazily; `ConfigError`
 * `GS_ERR_INVALID_OPTION` when it cannot load or the target is neither.
 * @internal
 */
export async function postgresPool(target: PostgresTarget, what: string): Promise<{ pool: PostgresPool; owned: boolean; label: string }> {
  if (typeof target === 'object' && target !== null && typeof target.query === 'function' && typeof target.connect === 'function') {
    return { pool: target, owned: false, label: 'the given pool' };
  }
  if (!isPostgresUrl(target)) throw new ConfigError('GS_ERR_INVALID_OPTION', `the PostgreSQL ${what} store needs a postgres:// connection string or a pg.Pool`);
  const specifier = 'pg';
  let mod: { default?: { Pool?: unknown }; Pool?: unknown };
  try {
    // A variable specifier, so that bundlers leave the import alone and it runs only here.
    mod = (await import(specifier)) as typeof mod;
  } catch (err) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `the PostgreSQL ${what} store needs the "pg" package (npm install pg@^8.23), which could not be loaded: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  const Pool = (mod.default?.Pool ?? mod.Pool) as (new (o: { connectionString: string; max?: number }) => PostgresPool & { on(e: 'error', f: (e: Error) => void): void }) | undefined;
  if (typeof Pool !== 'function') throw new ConfigError('GS_ERR_INVALID_OPTION', '"pg" did not export a Pool class');
  const pool = new Pool({ connectionString: target, max: 4 });
  // An idle connection the server drops must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return { pool, owned: true, label: redactUrl(target) };
}

/** The connection string without its password, for messages. @internal */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

/**
 * Run `fn` in one transaction on a pooled client that first takes the
 * transaction-level advisory lock `lock` (writers serialised); rolled back
 * when `fn` throws.
 * @internal
 */
export async function inTransaction<T>(pool: PostgresPool, lock: number, fn: (c: PostgresClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  let broken: Error | undefined;
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [lock]);
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    try {
      await c.query('ROLLBACK');
    } catch (e) {
      broken = e as Error;
    }
    throw err;
  } finally {
    c.release(broken);
  }
}

/** The advisory lock every gatesock schema change takes. */
const SCHEMA_LOCK = 0x67736368; // 'gsch'

/**
 * Create `component`'s tables at `version` when the database has none, in one
 * transaction (several processes opening at once are serialised); refuse a
 * newer schema, or our table names without our schema row.
 * @internal
 */
export async function migratePostgres(pool: PostgresPool, component: string, version: number, tables: readonly string[], ddl: string, label: string): Promise<void> {
  await inTransaction(pool, SCHEMA_LOCK, async (c) => {
    await c.query('CREATE TABLE IF NOT EXISTS gatesock_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
    const row = (await c.query('SELECT version FROM gatesock_schema WHERE component = $1', [component])).rows[0];
    if (row !== undefined) {
      const v = Number(row['version']);
      if (v > version) throw new ConfigError('GS_ERR_INVALID_OPTION', `${label} has ${component} schema ${v}, newer than this gatesock's ${version}; upgrade gatesock`);
      return;
    }
    const found = (await c.query('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ANY($1)', [[...tables]])).rows;
    if (found.length > 0) {
      throw new ConfigError('GS_ERR_INVALID_OPTION', `${label} holds tables named ${found.map((r) => String(r['t'])).sort().join(', ')} but no gatesock ${component} schema; refusing to write into them`);
    }
    await c.query(ddl);
    await c.query('INSERT INTO gatesock_schema (component, version) VALUES ($1, $2)', [component, version]);
  });
}

/** Open `target` as `component`'s database; closes an owned pool again when that fails. @internal */
export async function openPostgres(target: PostgresTarget, what: string, component: string, version: number, tables: readonly string[], ddl: string): Promise<{ pool: PostgresPool; owned: boolean }> {
  const { pool, owned, label } = await postgresPool(target, what);
  try {
    await migratePostgres(pool, component, version, tables, ddl, label);
    return { pool, owned };
  } catch (err) {
    if (owned) await pool.end().catch(() => {});
    if (err instanceof GatesockError) throw err;
    throw new ConfigError('GS_ERR_INVALID_OPTION', `cannot open ${label} as a PostgreSQL ${what} database: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

const SCHEMA_V1 = `
CREATE TABLE advisories (
  id          TEXT   NOT NULL PRIMARY KEY,
  modified_ms BIGINT NOT NULL,
  doc         TEXT   NOT NULL
);
CREATE TABLE affected (
  advisory_id TEXT    NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
  position    INTEGER NOT NULL,
  ecosystem   TEXT    NOT NULL,
  package     TEXT    NOT NULL,
  entry       TEXT    NOT NULL,
  PRIMARY KEY (advisory_id, position)
);
CREATE INDEX affected_by_package ON affected (ecosystem, package);
CREATE TABLE aliases (
  alias       TEXT NOT NULL,
  advisory_id TEXT NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
  PRIMARY KEY (alias, advisory_id)
);
CREATE TABLE countermeasures (
  advisory_id TEXT NOT NULL PRIMARY KEY,
  steps       TEXT NOT NULL
);
`;
const TABLES = ['advisories', 'affected', 'aliases', 'countermeasures'];

/** The advisory lock the security store's writers take. */
const WRITE_LOCK = 0x67737365; // 'gsse'

/** Rows are read in pages of this many advisories by {@link PostgresSecurityStore.advisories}. */
const PAGE = 500;

type Row = { id: string; doc: string };

/** A {@link SecurityStore} on a PostgreSQL server; open one with {@link PostgresSecurityStore.open}. @public */
export class PostgresSecurityStore implements SecurityStore {
  #pool: PostgresPool | undefined;
  readonly #owned: boolean;

  private constructor(pool: PostgresPool, owned: boolean) {
    this.#pool = pool;
    this.#owned = owned;
  }

  /**
   * Open (and on first use create the tables in) the database `target`
   * names: a `postgres://` connection string (the store makes a pool and ends
   * it on {@link PostgresSecurityStore.close}) or a `pg.Pool` (left open).
   * `ConfigError` `GS_ERR_INVALID_OPTION` when `pg` cannot load, the server
   * cannot be reached, the database holds these table names without a
   * gatesock schema, or its schema is newer than
   * {@link SECURITY_POSTGRES_SCHEMA_VERSION}.
   */
  static async open(target: PostgresTarget): Promise<PostgresSecurityStore> {
    const { pool, owned } = await openPostgres(target, 'security', 'security', SECURITY_POSTGRES_SCHEMA_VERSION, TABLES, SCHEMA_V1);
    return new PostgresSecurityStore(pool, owned);
  }

  /** {@inheritDoc SecurityStore.putAdvisories} */
  async putAdvisories(list: readonly Advisory[]): Promise<PutAdvisoriesResult> {
    return inTransaction(this.#open(), WRITE_LOCK, async (c) => {
      const added: string[] = [];
      const updated: string[] = [];
      const unchanged: string[] = [];
      const stale: string[] = [];
      // The latest version of each ID in this call, as stored or as written earlier in the call.
      const current = new Map<string, Advisory>();
      const ids = [...new Set(list.map((a) => a.id))];
      for (const a of await this.#assemble(c, (await c.query('SELECT id, doc FROM advisories WHERE id = ANY($1)', [ids])).rows as Row[])) current.set(a.id, a);
      for (const a of list) {
        const old = current.get(a.id);
        if (old) {
          if (modifiedMs(old) > modifiedMs(a)) {
            stale.push(a.id);
            continue;
          }
          if (advisoryJson(old) === advisoryJson(a)) {
            unchanged.push(a.id);
            continue;
          }
          await c.query('DELETE FROM advisories WHERE id = $1', [a.id]);
          updated.push(a.id);
        } else added.push(a.id);
        const { affected, ...rest } = a;
        await c.query('INSERT INTO advisories (id, modified_ms, doc) VALUES ($1, $2, $3)', [a.id, modifiedMs(a), JSON.stringify(rest)]);
        if (affected.length > 0) {
          await c.query(
            'INSERT INTO affected (advisory_id, position, ecosystem, package, entry) SELECT $1, p, e, n, j FROM unnest($2::int[], $3::text[], $4::text[], $5::text[]) AS u(p, e, n, j)',
            [a.id, affected.map((_, i) => i), affected.map((e) => e.ecosystem), affected.map((e) => e.name), affected.map((e) => JSON.stringify(e))],
          );
        }
        await c.query('INSERT INTO aliases (alias, advisory_id) SELECT DISTINCT x, $1 FROM unnest($2::text[]) AS u(x) ON CONFLICT DO NOTHING', [a.id, [a.id, ...a.aliases]]);
        current.set(a.id, a);
      }
      return { added, updated, unchanged, stale };
    });
  }

  /** {@inheritDoc SecurityStore.getAdvisory} */
  async getAdvisory(id: string): Promise<Advisory | undefined> {
    const pool = this.#open();
    return (await this.#assemble(pool, (await pool.query('SELECT id, doc FROM advisories WHERE id = $1', [id])).rows as Row[]))[0];
  }

  /** {@inheritDoc SecurityStore.findByAlias} */
  async findByAlias(alias: string): Promise<Advisory[]> {
    const pool = this.#open();
    const rows = (await pool.query('SELECT a.id, a.doc FROM aliases l JOIN advisories a ON a.id = l.advisory_id WHERE l.alias = $1 ORDER BY a.id COLLATE "C"', [alias])).rows as Row[];
    return this.#assemble(pool, rows);
  }

  /** {@inheritDoc SecurityStore.advisoriesFor} */
  async advisoriesFor(ecosystem: string, packageName: string): Promise<Advisory[]> {
    const pool = this.#open();
    const rows = (
      await pool.query(
        'SELECT a.id, a.doc FROM advisories a WHERE a.id IN (SELECT advisory_id FROM affected WHERE ecosystem = $1 AND package = $2) ORDER BY a.id COLLATE "C"',
        [ecosystem, packageName],
      )
    ).rows as Row[];
    return this.#assemble(pool, rows);
  }

  /** {@inheritDoc SecurityStore.advisories} */
  async *advisories(): AsyncIterable<Advisory> {
    let after = '';
    for (;;) {
      const pool = this.#open();
      const rows = (await pool.query('SELECT id, doc FROM advisories WHERE id COLLATE "C" > $1 ORDER BY id COLLATE "C" LIMIT $2', [after, PAGE])).rows as Row[];
      for (const a of await this.#assemble(pool, rows)) yield a;
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1]!.id;
    }
  }

  /** {@inheritDoc SecurityStore.deleteAdvisory} */
  async deleteAdvisory(id: string): Promise<boolean> {
    return inTransaction(this.#open(), WRITE_LOCK, async (c) => ((await c.query('DELETE FROM advisories WHERE id = $1', [id])).rowCount ?? 0) > 0);
  }

  /** {@inheritDoc SecurityStore.putCountermeasures} */
  async putCountermeasures(set: CountermeasureSet): Promise<void> {
    const entries = [...set];
    if (entries.length === 0) {
      this.#open();
      return;
    }
    await inTransaction(this.#open(), WRITE_LOCK, async (c) => {
      await c.query(
        'INSERT INTO countermeasures (advisory_id, steps) SELECT i, s FROM unnest($1::text[], $2::text[]) AS u(i, s) ON CONFLICT (advisory_id) DO UPDATE SET steps = excluded.steps',
        [entries.map(([id]) => id), entries.map(([, steps]) => JSON.stringify(steps))],
      );
    });
  }

  /** {@inheritDoc SecurityStore.getCountermeasures} */
  async getCountermeasures(id: string): Promise<readonly Countermeasure[] | undefined> {
    const row = (await this.#open().query('SELECT steps FROM countermeasures WHERE advisory_id = $1', [id])).rows[0];
    return row && (JSON.parse(String(row['steps'])) as Countermeasure[]);
  }

  /** {@inheritDoc SecurityStore.countermeasures} */
  async countermeasures(): Promise<Map<string, readonly Countermeasure[]>> {
    const rows = (await this.#open().query('SELECT advisory_id AS id, steps FROM countermeasures ORDER BY advisory_id COLLATE "C"')).rows;
    return new Map(rows.map((r) => [String(r['id']), JSON.parse(String(r['steps'])) as Countermeasure[]]));
  }

  /** {@inheritDoc SecurityStore.deleteCountermeasures} */
  async deleteCountermeasures(id: string): Promise<boolean> {
    return ((await this.#open().query('DELETE FROM countermeasures WHERE advisory_id = $1', [id])).rowCount ?? 0) > 0;
  }

  /** {@inheritDoc SecurityStore.count} */
  async count(): Promise<SecurityStoreCounts> {
    const row = (await this.#open().query('SELECT (SELECT count(*) FROM advisories) AS a, (SELECT count(*) FROM countermeasures) AS c')).rows[0]!;
    return { advisories: Number(row['a']), countermeasures: Number(row['c']) };
  }

  /** {@inheritDoc SecurityStore.close} */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    if (pool !== undefined && this.#owned) await pool.end();
  }

  #open(): PostgresPool {
    if (this.#pool === undefined) throw storeClosed();
    return this.#pool;
  }

  /** The advisories of `rows`, in their order, with their affected entries (one query for all). */
  async #assemble(q: { query: PostgresPool['query'] }, rows: Row[]): Promise<Advisory[]> {
    if (rows.length === 0) return [];
    const affected = new Map<string, AffectedPackage[]>();
    const entries = (await q.query('SELECT advisory_id AS id, entry FROM affected WHERE advisory_id = ANY($1) ORDER BY advisory_id, position', [rows.map((r) => r.id)])).rows;
    for (const e of entries) {
      const id = String(e['id']);
      let list = affected.get(id);
      if (list === undefined) affected.set(id, (list = []));
      list.push(JSON.parse(String(e['entry'])) as AffectedPackage);
    }
    return rows.map((r) => ({ ...(JSON.parse(r.doc) as Omit<Advisory, 'affected'>), affected: affected.get(r.id) ?? [] }));
  }
}
