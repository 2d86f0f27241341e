// The ConfigurationStore contract, run on the memory, SQLite and PostgreSQL stores alike
// (PostgreSQL: a throwaway server from test/helpers/postgres.ts, one fresh database per
// store; skipped with the reason printed where no server can be started), and what only
// the PostgreSQL store does: reopening, a caller's pool, refusing foreign or newer databases.
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MemoryConfigurationStore,
  PostgresConfigurationStore,
  SqliteConfigurationStore,
  type ActionRecord,
  type ConfigurationStore,
  type HostEntry,
} from '../../src/delivery/security/center/index.js';
import { collectConfiguration } from '../../src/delivery/security/collect/index.js';
import { PostgresSecurityStore } from '../../src/delivery/security/secdb/index.js';
import type { FullReport } from '../../src/delivery/security/report/index.js';
import { createServerIdentity } from '../../src/session/index.js';
import { ConfigError } from '../../src/errors/index.js';
import { lazyPostgres } from '../helpers/postgres.js';
import { collectFor, tempDir, writeRoot } from './fixtures/center/harness.js';

const server = lazyPostgres();
const dirs: string[] = [];
afterAll(async () => {
  await server.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const noPostgres = await server.unavailable();
if (noPostgres !== undefined) console.log(`ConfigurationStore (postgres) skipped: ${noPostgres}`);

const STORES: [string, () => Promise<ConfigurationStore>][] = [
  ['memory', async () => new MemoryConfigurationStore()],
  ['sqlite', () => SqliteConfigurationStore.open(':memory:')],
];
if (noPostgres === undefined) STORES.push(['postgres', async () => PostgresConfigurationStore.open(await server.database())]);

const identity = createServerIdentity();
const other = createServerIdentity();
let reports: Promise<FullReport> | undefined;
/** One real report (this fixture root collected), made once. */
function baseReport(): Promise<FullReport> {
  return (reports ??= (async () => {
    const d = tempDir('cfgstore');
    dirs.push(d);
    const root = writeRoot(path.join(d, 'root'), [{ name: 'openssl', version: '3.0.9-1' }], ['tcp 0.0.0.0:22 sshd']);
    const { report } = await collectConfiguration({ ...collectFor(root, ['10.0.0.9']), hostMsid: identity.msid });
    return { ...report, seq: 1 };
  })());
}

const host = (hostId: string, msid: string, extra: Partial<HostEntry> = {}): HostEntry => ({ hostId, msid, pcid: `agent-${hostId}`, device: 'server', firstSeen: 1, lastSeen: 2, firewall: null, ...extra });
const action = (id: string, hostId: string, createdAt: number, extra: Partial<ActionRecord> = {}): ActionRecord => ({
  id,
  hostId,
  msid: identity.msid,
  findingKey: `vulnerable DSA-1 ${id}`,
  advisoryId: 'DSA-1',
  trigger: 'advisory',
  reason: `reason of ${id}`,
  steps: [{ kind: 'upgrade', package: 'openssl', version: '3.0.11-1' }],
  mode: 'automatic',
  state: 'planned',
  detail: null,
  dispatchId: null,
  bundle: null,
  ranEndedAt: null,
  fixReportedAt: null,
  createdAt,
  updatedAt: createdAt,
  ...extra,
});

describe.each(STORES)('ConfigurationStore (%s)', (_name, make) => {
  it('keeps hosts by host ID and by MSID, replaced whole, listed by host ID', async () => {
    const s = await make();
    expect(await s.getHost('web-1')).toBeUndefined();
    expect(await s.hosts()).toEqual([]);
    await s.putHost(host('web-2', other.msid));
    await s.putHost(host('web-1', identity.msid));
    await s.putHost(host('web-1', identity.msid, { lastSeen: 9, firewall: 'table inet gs {\n}\n', device: 'network-device' }));
    expect(await s.getHost('web-1')).toEqual(host('web-1', identity.msid, { lastSeen: 9, firewall: 'table inet gs {\n}\n', device: 'network-device' }));
    expect((await s.hostByMsid(other.msid))?.hostId).toBe('web-2');
    expect(await s.hostByMsid('MSID-nobody')).toBeUndefined();
    expect((await s.hosts()).map((h) => [h.hostId, h.lastSeen])).toEqual([
      ['web-1', 9],
      ['web-2', 2],
    ]);
    await s.close();
  });

  it('moves the latest report to previous on a new one, per host', async () => {
    const s = await make();
    const r1 = await baseReport();
    const r2 = { ...r1, seq: 2, kernel: 'k2' };
    const r3 = { ...r1, seq: 3, kernel: 'k3' };
    expect(await s.latest('a')).toBeUndefined();
    await s.putReport('a', r1);
    expect(await s.latest('a')).toEqual(r1);
    expect(await s.previous('a')).toBeUndefined();
    await s.putReport('a', r2);
    await s.putReport('b', r1);
    await s.putReport('a', r3);
    expect(await s.latest('a')).toEqual(r3);
    expect(await s.previous('a')).toEqual(r2);
    expect(await s.latest('b')).toEqual(r1);
    expect(await s.previous('b')).toBeUndefined();
    await s.close();
  });

  it('keeps actions by ID, replaced whole, oldest first, per host', async () => {
    const s = await make();
    await s.putAction(action('act-1', 'a', 10));
    await s.putAction(action('act-2', 'b', 20));
    await s.putAction(action('act-3', 'a', 30, { mode: 'manual', steps: [{ kind: 'manual', instructions: 'call someone' }] }));
    await s.putAction({ ...action('act-1', 'a', 10), state: 'verified-ran', ranEndedAt: 15, dispatchId: 'd-1', bundle: 'sha256:x', detail: 'ran', updatedAt: 16 });
    expect(await s.getAction('act-1')).toEqual({ ...action('act-1', 'a', 10), state: 'verified-ran', ranEndedAt: 15, dispatchId: 'd-1', bundle: 'sha256:x', detail: 'ran', updatedAt: 16 });
    expect(await s.getAction('act-9')).toBeUndefined();
    expect((await s.actions()).map((a) => a.id)).toEqual(['act-1', 'act-2', 'act-3']);
    expect((await s.actions('a')).map((a) => [a.id, a.state])).toEqual([
      ['act-1', 'verified-ran'],
      ['act-3', 'planned'],
    ]);
    expect(await s.actions('z')).toEqual([]);
    await s.close();
  });

  it('keeps one policy document', async () => {
    const s = await make();
    expect(await s.getPolicy()).toBeUndefined();
    await s.setPolicy({ policy: null, defaults: {}, hosts: {} });
    const doc = { policy: null, defaults: { configRoot: '/srv/root' }, hosts: { 'web-1': { upgradeCommand: ['apt-get', 'install', '{package}={version}'] } } };
    await s.setPolicy(doc);
    expect(await s.getPolicy()).toEqual(doc);
    await s.close();
  });
});

describe('PostgresConfigurationStore databases', () => {
  it.skipIf(noPostgres !== undefined)('shares a database with the security store, keeps its content across reopening, leaves a caller\'s pool open, refuses foreign and newer databases', async () => {
    const url = await server.database();
    const s = await PostgresConfigurationStore.open(url);
    const sec = await PostgresSecurityStore.open(url);
    await s.putHost(host('a', identity.msid));
    await s.putReport('a', await baseReport());
    await s.close();
    await sec.close();
    await expect(s.hosts()).rejects.toThrow(/closed/);
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      const again = await PostgresConfigurationStore.open(pool);
      expect((await again.hostByMsid(identity.msid))?.hostId).toBe('a');
      expect(await again.latest('a')).toEqual(await baseReport());
      await again.close();
      expect((await pool.query('SELECT component, version FROM gatesock_schema ORDER BY component')).rows).toEqual([
        { component: 'configuration', version: 1 },
        { component: 'security', version: 1 },
      ]);
      await pool.query("UPDATE gatesock_schema SET version = 7 WHERE component = 'configuration'");
      await expect(PostgresConfigurationStore.open(url)).rejects.toThrow(/configuration schema 7, newer/);
    } finally {
      await pool.end();
    }
    const foreign = await server.database();
    const c = new pg.Client({ connectionString: foreign });
    await c.connect();
    try {
      await c.query('CREATE TABLE hosts (name text)');
      const err = await PostgresConfigurationStore.open(foreign).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/tables named hosts but no gatesock configuration schema/);
      expect((await c.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'actions'")).rows[0]).toEqual({ n: 0 });
    } finally {
      await c.end();
    }
  });
});
