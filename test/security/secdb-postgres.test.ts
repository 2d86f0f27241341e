// PostgresSecurityStore beyond the shared SecurityStore suite (secdb.test.ts runs that on
// PostgreSQL too): reopening, a caller's pool, refusing foreign or newer databases.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { parseOsv } from '../../src/delivery/security/advisories/index.js';
import { PostgresSecurityStore } from '../../src/delivery/security/secdb/index.js';
import { ConfigError } from '../../src/errors/index.js';
import { lazyPostgres } from '../helpers/postgres.js';

const FIX = fileURLToPath(new URL('./fixtures/osv/', import.meta.url));
const osv = (name: string) => parseOsv(readFileSync(join(FIX, name)), name);
const server = lazyPostgres();
afterAll(() => server.stop());
const skip = await server.unavailable();
if (skip !== undefined) console.log(`PostgresSecurityStore tests skipped: ${skip}`);

describe('PostgresSecurityStore databases', () => {
  it.skipIf(skip !== undefined)('keeps its content across reopening, leaves a caller\'s pool open, refuses foreign and newer databases', async () => {
    const url = await server.database();
    const s = await PostgresSecurityStore.open(url);
    await s.putAdvisories(osv('DEBIAN-CVE-2024-6387.json'));
    await s.close();
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      const again = await PostgresSecurityStore.open(pool);
      expect(await again.getAdvisory('DEBIAN-CVE-2024-6387')).toEqual(osv('DEBIAN-CVE-2024-6387.json')[0]);
      await again.close();
      await expect(again.count()).rejects.toThrow(/closed/);
      // the pool is still ours to use
      expect((await pool.query('SELECT version FROM gatesock_schema WHERE component = $1', ['security'])).rows).toEqual([{ version: 1 }]);
      // a newer schema is refused
      await pool.query("UPDATE gatesock_schema SET version = 2 WHERE component = 'security'");
      await expect(PostgresSecurityStore.open(url)).rejects.toThrow(/newer than this gatesock's 1/);
    } finally {
      await pool.end();
    }
    // a database holding a table of the same name without the gatesock schema: refused, untouched
    const other = await server.database();
    const c = new pg.Client({ connectionString: other });
    await c.connect();
    try {
      await c.query('CREATE TABLE advisories (x int)');
      await expect(PostgresSecurityStore.open(other)).rejects.toBeInstanceOf(ConfigError);
      expect((await c.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'affected'")).rows[0]).toEqual({ n: 0 });
    } finally {
      await c.end();
    }
    // no server there
    await expect(PostgresSecurityStore.open('postgres://postgres@127.0.0.1:1/x')).rejects.toBeInstanceOf(ConfigError);
    await expect(PostgresSecurityStore.open('not-a-url')).rejects.toThrow(/postgres:\/\/ connection string/);
  });
});
