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
import { actionRecord, collectFor, tempDir, writeRoot } from './fixtures/center/harness.js';

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
const action = (id: string, hostId: string, createdAt: number, extra: Partial<ActionRecord> = {}): ActionRecord => actionRecord(id, hostId, identity.msid, createdAt, extra);

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

  it('replaces a host entry only as read (compare and swap), never giving an MSID a second host', async () => {
    const s = await make();
    const a1 = host('a', identity.msid);
    expect(await s.replaceHost(undefined, a1)).toBe(true);
    expect(await s.replaceHost(undefined, a1)).toBe(false);
    expect(await s.replaceHost({ ...a1, lastSeen: 7 }, { ...a1, firewall: 'x' })).toBe(false);
    expect(await s.replaceHost({ ...a1, hostId: 'b' }, { ...a1, firewall: 'x' })).toBe(false);
    expect(await s.replaceHost(undefined, host('b', identity.msid))).toBe(false);
    expect(await s.hosts()).toEqual([a1]);
    // re-binding the host to another agent, as read: allowed (an enrolment)
    expect(await s.replaceHost(a1, host('a', other.msid))).toBe(true);
    expect(await s.replaceHost(a1, { ...a1, firewall: 'x' })).toBe(false);
    expect(await s.replaceHost(undefined, host('b', identity.msid))).toBe(true);
    expect((await s.hosts()).map((h) => [h.hostId, h.msid])).toEqual([
      ['a', other.msid],
      ['b', identity.msid],
    ]);
    await s.close();
  });

  it('commits a report with its host entry only as read: same entry, same latest seq, MSID bound to no other host', async () => {
    const s = await make();
    const r1 = await baseReport();
    const r2 = { ...r1, seq: 2, kernel: 'k2' };
    const r3 = { ...r1, seq: 3, kernel: 'k3' };
    const a1 = host('a', identity.msid, { lastSeen: 10 });
    // a new host: expected absent, no report
    expect(await s.commitReport({ expectedHost: undefined, expectedSeq: null, host: a1, report: r1 })).toBe(true);
    expect([await s.getHost('a'), await s.latest('a')]).toEqual([a1, r1]);
    // bound meanwhile (expected absent, but stored now): refused, nothing changes — also for another MSID
    expect(await s.commitReport({ expectedHost: undefined, expectedSeq: null, host: host('a', other.msid), report: r2 })).toBe(false);
    expect(await s.commitReport({ expectedHost: undefined, expectedSeq: 1, host: a1, report: r2 })).toBe(false);
    // the entry changed since it was read (another center's report, a policy change)
    expect(await s.commitReport({ expectedHost: { ...a1, lastSeen: 9 }, expectedSeq: 1, host: { ...a1, lastSeen: 11 }, report: r2 })).toBe(false);
    // the latest report changed since it was read
    expect(await s.commitReport({ expectedHost: a1, expectedSeq: null, host: { ...a1, lastSeen: 11 }, report: r2 })).toBe(false);
    expect(await s.commitReport({ expectedHost: a1, expectedSeq: 2, host: { ...a1, lastSeen: 11 }, report: r2 })).toBe(false);
    // an entry of another host as expected
    expect(await s.commitReport({ expectedHost: { ...a1, hostId: 'b' }, expectedSeq: 1, host: { ...a1, lastSeen: 11 }, report: r2 })).toBe(false);
    expect([await s.getHost('a'), await s.latest('a'), await s.previous('a')]).toEqual([a1, r1, undefined]);
    // as read: stored, the old latest becomes the previous one
    expect(await s.commitReport({ expectedHost: a1, expectedSeq: 1, host: { ...a1, lastSeen: 11 }, report: r2 })).toBe(true);
    expect([await s.getHost('a'), await s.latest('a'), await s.previous('a')]).toEqual([{ ...a1, lastSeen: 11 }, r2, r1]);
    // a second writer that read the same state loses
    expect(await s.commitReport({ expectedHost: a1, expectedSeq: 1, host: { ...a1, lastSeen: 12 }, report: r3 })).toBe(false);
    // an MSID bound to another host may not take a new one
    expect(await s.commitReport({ expectedHost: undefined, expectedSeq: null, host: host('b', identity.msid), report: r1 })).toBe(false);
    expect(await s.getHost('b')).toBeUndefined();
    expect(await s.latest('b')).toBeUndefined();
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

  it('claims one open action per (host, finding): a second claim gets the open one, a confirmed one frees the finding', async () => {
    const s = await make();
    const first = action('act-1', 'a', 10, { findingKey: 'vulnerable DSA-1 openssl' });
    expect(await s.claimAction(first)).toBeNull();
    // same host and finding: refused with the open action, nothing stored — in every open state
    for (const state of ['planned', 'dispatched', 'verified-ran', 'notified', 'failed'] as const) {
      await s.putAction({ ...first, state });
      expect(await s.claimAction(action('act-2', 'a', 20, { findingKey: 'vulnerable DSA-1 openssl' }))).toEqual({ ...first, state });
    }
    expect(await s.getAction('act-2')).toBeUndefined();
    // another host, or another finding of the same host: stored
    expect(await s.claimAction(action('act-3', 'b', 30, { findingKey: 'vulnerable DSA-1 openssl' }))).toBeNull();
    expect(await s.claimAction(action('act-4', 'a', 40, { findingKey: 'vulnerable DSA-2 openssl' }))).toBeNull();
    // once confirmed, the finding may get a new action
    const failed = (await s.getAction('act-1'))!;
    expect(await s.replaceAction(failed, { ...failed, state: 'confirmed', updatedAt: 50 })).toBe(true);
    expect(await s.claimAction(action('act-5', 'a', 60, { findingKey: 'vulnerable DSA-1 openssl' }))).toBeNull();
    expect((await s.actions('a')).map((x) => [x.id, x.state])).toEqual([
      ['act-1', 'confirmed'],
      ['act-4', 'planned'],
      ['act-5', 'planned'],
    ]);
    await s.close();
  });

  it('replaces an action only as it was read (compare and swap), never reopening a confirmed one', async () => {
    const s = await make();
    const a0 = action('act-1', 'a', 10);
    expect(await s.claimAction(a0)).toBeNull();
    const a1 = { ...a0, state: 'dispatched' as const, dispatchId: 'd-1', updatedAt: 11 };
    expect(await s.replaceAction(a0, a1)).toBe(true);
    // a writer that read a0 before that change loses
    expect(await s.replaceAction(a0, { ...a0, state: 'failed', detail: 'late', updatedAt: 12 })).toBe(false);
    expect(await s.getAction('act-1')).toEqual(a1);
    // not stored; another ID, host or finding key: refused
    expect(await s.replaceAction(action('act-9', 'a', 1), action('act-9', 'a', 1, { state: 'failed' }))).toBe(false);
    expect(await s.replaceAction(a1, { ...a1, id: 'act-2' })).toBe(false);
    expect(await s.replaceAction(a1, { ...a1, hostId: 'b' })).toBe(false);
    expect(await s.replaceAction(a1, { ...a1, findingKey: 'other' })).toBe(false);
    const a2 = { ...a1, state: 'confirmed' as const, detail: 'gone', updatedAt: 13 };
    expect(await s.replaceAction(a1, a2)).toBe(true);
    expect(await s.replaceAction(a2, { ...a2, state: 'failed', updatedAt: 14 })).toBe(false);
    expect(await s.replaceAction(a2, { ...a2, detail: 'still gone', updatedAt: 14 })).toBe(true);
    expect((await s.getAction('act-1'))?.detail).toBe('still gone');
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
  it.skipIf(noPostgres !== undefined)('two stores on one database claiming the same findings at once store exactly one action each', async () => {
    const url = await server.database();
    const [s1, s2] = [await PostgresConfigurationStore.open(url), await PostgresConfigurationStore.open(url)];
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `vulnerable DSA-${i} openssl`);
      const results = await Promise.all(
        keys.flatMap((k, i) => [s1.claimAction(action(`act-${i}-x`, 'a', i, { findingKey: k })), s2.claimAction(action(`act-${i}-y`, 'a', i, { findingKey: k }))]),
      );
      for (let i = 0; i < keys.length; i++) {
        const [x, y] = [results[2 * i], results[2 * i + 1]];
        // exactly one of the two was stored; the other got it back
        expect([x === null, y === null].filter(Boolean), keys[i]).toHaveLength(1);
        expect((x ?? y)!.id, keys[i]).toBe(x === null ? `act-${i}-x` : `act-${i}-y`);
      }
      expect(await s1.actions('a')).toHaveLength(keys.length);
      // the same for compare-and-swap: of two writers that read the same record, one wins
      const stored = (await s1.actions('a'))[0]!;
      const swaps = await Promise.all([s1.replaceAction(stored, { ...stored, detail: 'one' }), s2.replaceAction(stored, { ...stored, detail: 'two' })]);
      expect(swaps.filter(Boolean)).toHaveLength(1);
      // and for host entries
      const hosts = await Promise.all([s1.replaceHost(undefined, host('e', `MSID-e1`)), s2.replaceHost(undefined, host('e', `MSID-e2`))]);
      expect(hosts.filter(Boolean)).toHaveLength(1);
      // and for report commits: of two that read the same host state, one is stored
      const r = await baseReport();
      for (let i = 0; i < 20; i++) {
        const h = `r${i}`;
        const commits = await Promise.all([
          s1.commitReport({ expectedHost: undefined, expectedSeq: null, host: host(h, `MSID-x${i}`), report: r }),
          s2.commitReport({ expectedHost: undefined, expectedSeq: null, host: host(h, `MSID-y${i}`), report: { ...r, seq: 2 } }),
        ]);
        expect(commits.filter(Boolean), h).toHaveLength(1);
        expect((await s1.latest(h))?.seq, h).toBe(commits[0] ? 1 : 2);
      }
    } finally {
      await s1.close();
      await s2.close();
    }
  });


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
