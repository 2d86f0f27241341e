/**
 * One behaviour suite for every ServerStore (the contract in
 * src/relay/store/types.ts), run over the memory store and the SQLite store
 * (in memory and on a file), plus what only the SQLite file can show:
 * reopening, schema versions, WAL, damaged files and lazy loading.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, RelayError } from '../../src/errors/index.js';
import {
  MemoryServerStore,
  PCID_ATTEMPTS,
  SQLITE_SCHEMA_VERSION,
  SqliteServerStore,
  isValidPcid,
  type ServerStore,
  type ServerStoreOptions,
} from '../../src/relay/store/index.js';
import { loadSqliteDriver } from '../../src/store/index.js';
import { createServerIdentity, msidOf } from '../../src/session/index.js';
import { rejection } from '../helpers/rejection.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'gatesock-store-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let fileCounter = 0;
const freshFile = () => join(work, `db-${++fileCounter}`, 'servers.sqlite');

// better-sqlite3 itself, to look inside files the store wrote (and to damage them).
type RawDb = { pragma(s: string, o?: { simple: boolean }): unknown; exec(sql: string): void; prepare(sql: string): { all(): unknown[] }; close(): void };
const RawDatabase = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => RawDb;

/** A random MSID in canonical form, and its certificate hash (the same 64 digits, lower case). */
function machine(): { msid: string; hash: string } {
  const hex = randomBytes(32).toString('hex');
  return { msid: `MSID-${hex.toUpperCase()}`, hash: hex };
}

const T0 = new Date('2030-01-02T03:04:05.678Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
const RANDOM_FORMAT = /^gs-[0-9a-hjkmnp-tv-z]{10}$/;

/** The shared suite: `open` makes a new, empty store. */
function describeServerStore(name: string, open: (options?: ServerStoreOptions) => Promise<ServerStore>): void {
  describe(`ServerStore conformance: ${name}`, () => {
    let store: ServerStore;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    it('creates a record with a random valid PCID on first login', async () => {
      const m = machine();
      expect(await store.count()).toBe(0);
      const { record, created } = await store.login(m.msid, m.hash, T0);
      expect(created).toBe(true);
      expect(record.msid).toBe(m.msid);
      expect(record.pcid).toMatch(RANDOM_FORMAT);
      expect(isValidPcid(record.pcid)).toBe(true);
      expect(record.certificateHash).toBe(m.hash);
      expect(record.created).toEqual(T0);
      expect(record.updated).toEqual(T0);
      expect(Object.isFrozen(record)).toBe(true);
      expect(await store.count()).toBe(1);
    });

    it('keeps the PCID on the next login, and bumps updated and the certificate hash', async () => {
      const m = machine();
      const first = (await store.login(m.msid, m.hash, T0)).record;
      const newHash = randomBytes(32).toString('hex');
      const second = await store.login(m.msid, newHash, later(60_000));
      expect(second.created).toBe(false);
      expect(second.record.pcid).toBe(first.pcid);
      expect(second.record.created).toEqual(T0);
      expect(second.record.updated).toEqual(later(60_000));
      expect(second.record.certificateHash).toBe(newHash);
      expect(await store.findByMsid(m.msid)).toEqual(second.record);
      expect(await store.count()).toBe(1);
      // The first snapshot did not change under the caller.
      expect(first.updated).toEqual(T0);
      expect(first.certificateHash).toBe(m.hash);
    });

    it('uses the current time when no time is given', async () => {
      const before = Date.now();
      const { record } = await store.login(machine().msid, machine().hash);
      expect(record.created.getTime()).toBeGreaterThanOrEqual(before);
      expect(record.created.getTime()).toBeLessThanOrEqual(Date.now());
    });

    it('finds a record by MSID (any letter case) and by PCID (exact case only)', async () => {
      const a = machine();
      const b = machine();
      const ra = (await store.login(a.msid, a.hash, T0)).record;
      const rb = (await store.login(b.msid, b.hash, later(1))).record;
      expect(await store.findByMsid(a.msid)).toEqual(ra);
      expect(await store.findByMsid(`MSID-${a.msid.slice(5).toLowerCase()}`)).toEqual(ra);
      expect(await store.findByPcid(ra.pcid)).toEqual(ra);
      expect(await store.findByPcid(rb.pcid)).toEqual(rb);
      expect(await store.findByPcid(ra.pcid.toUpperCase())).toBeUndefined();
      expect(await store.findByMsid(machine().msid)).toBeUndefined();
      expect(await store.findByPcid('gs-nobodyhere')).toBeUndefined();
      // Not an MSID or not a PCID at all: nothing is found, nothing is thrown.
      expect(await store.findByMsid('MSID-1234')).toBeUndefined();
      expect(await store.findByMsid(a.msid.slice(5))).toBeUndefined();
      expect(await store.findByPcid('')).toBeUndefined();
      expect(await store.findByPcid('has space')).toBeUndefined();
    });

    it('logs in an MSID given in lower case as the same server', async () => {
      const m = machine();
      const first = (await store.login(`MSID-${m.msid.slice(5).toLowerCase()}`, m.hash.toUpperCase(), T0)).record;
      expect(first.msid).toBe(m.msid);
      expect(first.certificateHash).toBe(m.hash);
      const again = await store.login(m.msid, m.hash, later(5));
      expect(again.created).toBe(false);
      expect(again.record.pcid).toBe(first.pcid);
      expect(await store.count()).toBe(1);
    });

    it('refuses a login with a malformed MSID or certificate hash', async () => {
      const m = machine();
      for (const [msid, hash] of [
        ['', m.hash],
        [m.msid.slice(0, -1), m.hash],
        [`${m.msid}0`, m.hash],
        [m.msid.replace('MSID-', 'msid-'), m.hash],
        [m.msid.slice(5), m.hash],
        [m.msid, m.hash.slice(1)],
        [m.msid, `${m.hash.slice(1)}g`],
        [m.msid, ''],
      ] as const) {
        const err = await rejection(store.login(msid, hash, T0));
        expect(err, `${msid} ${hash}`).toBeInstanceOf(ConfigError);
        expect(err.code).toBe('GS_ERR_INVALID_OPTION');
      }
      expect(await rejection(store.login(m.msid, m.hash, new Date(NaN)))).toBeInstanceOf(ConfigError);
      expect(await store.count()).toBe(0);
    });

    it('renames a server: the new name finds it, the old one no longer does', async () => {
      const m = machine();
      const old = (await store.login(m.msid, m.hash, T0)).record;
      const renamed = await store.rename(m.msid, 'build-server_01', later(1000));
      expect(renamed).toEqual({ ...old, pcid: 'build-server_01', updated: later(1000) });
      expect(await store.findByPcid('build-server_01')).toEqual(renamed);
      expect(await store.findByPcid(old.pcid)).toBeUndefined();
      expect(await store.findByMsid(m.msid)).toEqual(renamed);
      // The freed name can be taken by another server.
      const other = machine();
      await store.login(other.msid, other.hash, T0);
      expect((await store.rename(other.msid, old.pcid, later(2000))).pcid).toBe(old.pcid);
      // Every printable ASCII character, at the longest length.
      const longest = '!"#$%&\'()*+,-./0123456789:;<=>?'.slice(0, 31);
      expect((await store.rename(m.msid, longest, later(3000))).pcid).toBe(longest);
      expect((await store.findByPcid(longest))?.msid).toBe(m.msid);
    });

    it.each([
      ['empty', '', /empty/],
      ['32 characters', 'x'.repeat(32), /32 characters/],
      ['a space', 'my server', /space/],
      ['a tab', 'a\tb', /control character/],
      ['a newline', 'a\n', /control character/],
      ['NUL', 'a\0b', /control character/],
      ['DEL', 'a\x7fb', /control character/],
      ['a non-ASCII letter', 'café', /outside ASCII/],
      ['an emoji', 'srv-\u{1F680}', /outside ASCII/],
    ])('refuses a rename to a name with %s (GS_ERR_PCID_INVALID) and keeps the old name', async (_what, bad, why) => {
      const m = machine();
      const before = (await store.login(m.msid, m.hash, T0)).record;
      const err = await rejection(store.rename(m.msid, bad, later(1)));
      expect(err).toBeInstanceOf(RelayError);
      expect(err.code).toBe('GS_ERR_PCID_INVALID');
      expect(err.message).toMatch(why);
      expect(await store.findByMsid(m.msid)).toEqual(before);
    });

    it('refuses a name another server has (GS_ERR_PCID_TAKEN) and changes neither record', async () => {
      const a = machine();
      const b = machine();
      const ra = await store.rename((await store.login(a.msid, a.hash, T0)).record.msid, 'alpha', later(1));
      const rb = (await store.login(b.msid, b.hash, T0)).record;
      const err = await rejection(store.rename(b.msid, 'alpha', later(2)));
      expect(err).toBeInstanceOf(RelayError);
      expect(err.code).toBe('GS_ERR_PCID_TAKEN');
      expect(err.message).toContain('"alpha"');
      expect(await store.findByMsid(a.msid)).toEqual(ra);
      expect(await store.findByMsid(b.msid)).toEqual(rb);
      // Case-sensitive: "Alpha" is another name, and free.
      expect((await store.rename(b.msid, 'Alpha', later(3))).pcid).toBe('Alpha');
      expect((await store.findByPcid('alpha'))?.msid).toBe(a.msid);
      expect((await store.findByPcid('Alpha'))?.msid).toBe(b.msid);
    });

    it('renaming a server to the name it has is a no-op success', async () => {
      const m = machine();
      const named = await store.rename((await store.login(m.msid, m.hash, T0)).record.msid, 'same', later(1));
      const again = await store.rename(m.msid, 'same', later(99_999));
      expect(again).toEqual(named);
      expect(await store.findByMsid(m.msid)).toEqual(named);
    });

    it('refuses to rename an MSID that has no record (GS_ERR_RELAY_FORBIDDEN)', async () => {
      const stranger = machine();
      const err = await rejection(store.rename(stranger.msid, 'mine-now', T0));
      expect(err).toBeInstanceOf(RelayError);
      expect(err.code).toBe('GS_ERR_RELAY_FORBIDDEN');
      expect(err.message).toContain(stranger.msid);
      expect(await store.findByPcid('mine-now')).toBeUndefined();
      expect(await store.count()).toBe(0);
      // A malformed MSID is a caller's mistake, not a refusal.
      const bad = await rejection(store.rename('MSID-xyz', 'mine-now', T0));
      expect(bad).toBeInstanceOf(ConfigError);
    });

    it('gives 1,000 servers 1,000 distinct valid PCIDs', async () => {
      const pcids = new Set<string>();
      for (let i = 0; i < 1000; i++) {
        const m = machine();
        const { record, created } = await store.login(m.msid, m.hash, T0);
        expect(created).toBe(true);
        expect(record.pcid).toMatch(RANDOM_FORMAT);
        pcids.add(record.pcid);
      }
      expect(pcids.size).toBe(1000);
      expect(await store.count()).toBe(1000);
    });

    it('gives a concurrent burst of 200 new servers 200 distinct PCIDs, and repeats keep theirs', async () => {
      const machines = Array.from({ length: 200 }, () => machine());
      const results = await Promise.all(machines.map((m) => store.login(m.msid, m.hash, T0)));
      expect(results.every((r) => r.created)).toBe(true);
      expect(new Set(results.map((r) => r.record.pcid)).size).toBe(200);
      expect(await store.count()).toBe(200);
      const again = await Promise.all(machines.map((m) => store.login(m.msid, m.hash, later(1))));
      expect(again.every((r) => !r.created)).toBe(true);
      expect(again.map((r) => r.record.pcid)).toEqual(results.map((r) => r.record.pcid));
      expect(await store.count()).toBe(200);
    });

    it('works with the MSID of a real server certificate', async () => {
      const server = createServerIdentity();
      const hash = server.msid.slice(5).toLowerCase();
      expect(server.msid).toBe(msidOf(server.certificate));
      const { record } = await store.login(server.msid, hash, T0);
      expect((await store.findByPcid(record.pcid))?.msid).toBe(server.msid);
    });

    it('draws another PCID when the generated one is taken, and gives up after PCID_ATTEMPTS draws', async () => {
      const names = ['dup', 'dup', 'dup', 'fresh'];
      let calls = 0;
      const s = await open({ generatePcid: () => names[Math.min(calls++, names.length - 1)]! });
      try {
        expect((await s.login(machine().msid, machine().hash, T0)).record.pcid).toBe('dup');
        calls = 1; // the next login draws 'dup', 'dup', then 'fresh'
        expect((await s.login(machine().msid, machine().hash, T0)).record.pcid).toBe('fresh');
        expect(calls).toBe(4);

        let stuck = 0;
        const always = await open({ generatePcid: () => (stuck++, 'same-every-time') });
        try {
          await always.login(machine().msid, machine().hash, T0);
          stuck = 0;
          const err = await rejection(always.login(machine().msid, machine().hash, T0));
          expect(err).toBeInstanceOf(RelayError);
          expect(err.code).toBe('GS_ERR_PCID_TAKEN');
          expect(stuck).toBe(PCID_ATTEMPTS);
          expect(await always.count()).toBe(1);
        } finally {
          await always.close();
        }
        // A generator that makes invalid names is refused, not stored.
        const broken = await open({ generatePcid: () => 'not valid' });
        try {
          expect((await rejection(broken.login(machine().msid, machine().hash, T0))).code).toBe('GS_ERR_PCID_INVALID');
          expect(await broken.count()).toBe(0);
        } finally {
          await broken.close();
        }
      } finally {
        await s.close();
      }
    });

    it('hands out records that callers cannot change', async () => {
      const m = machine();
      const { record } = await store.login(m.msid, m.hash, T0);
      record.updated.setTime(0);
      expect(() => {
        (record as { pcid: string }).pcid = 'hacked';
      }).toThrow(TypeError);
      expect((await store.findByMsid(m.msid))?.updated).toEqual(T0);
    });

    it('rejects every call after close, and closing twice is fine', async () => {
      const m = machine();
      await store.login(m.msid, m.hash, T0);
      await store.close();
      await store.close();
      for (const call of [
        () => store.findByMsid(m.msid),
        () => store.findByPcid('x'),
        () => store.login(m.msid, m.hash),
        () => store.rename(m.msid, 'x'),
        () => store.count(),
      ]) {
        expect((await rejection(call())).message).toMatch(/closed/);
      }
    });
  });
}

describeServerStore('MemoryServerStore', async (options) => new MemoryServerStore(options));
describeServerStore('SqliteServerStore in memory', (options) => SqliteServerStore.open(':memory:', options));
describeServerStore('SqliteServerStore on a file', (options) => SqliteServerStore.open(freshFile(), options));

describe('SqliteServerStore files', () => {
  it('creates the parent folder, finds the records again after reopening, with their dates', async () => {
    const file = freshFile();
    expect(existsSync(join(file, '..'))).toBe(false);
    const store = await SqliteServerStore.open(file);
    expect(store.path).toBe(file);
    const a = machine();
    const b = machine();
    const ra = (await store.login(a.msid, a.hash, T0)).record;
    await store.login(b.msid, b.hash, T0);
    const rb = await store.rename(b.msid, 'kept-name', later(123));
    await store.close();
    expect(existsSync(file)).toBe(true);

    const reopened = await SqliteServerStore.open(file);
    try {
      expect(await reopened.count()).toBe(2);
      expect(await reopened.findByMsid(a.msid)).toEqual(ra);
      expect(await reopened.findByPcid(ra.pcid)).toEqual(ra);
      expect(await reopened.findByPcid('kept-name')).toEqual(rb);
      expect((await reopened.login(a.msid, a.hash, later(9))).record.pcid).toBe(ra.pcid);
    } finally {
      await reopened.close();
    }
  });

  it('uses WAL, schema version 1, integer milliseconds and a UNIQUE pcid', async () => {
    const file = freshFile();
    const store = await SqliteServerStore.open(file);
    const m = machine();
    await store.login(m.msid, m.hash, T0);
    await store.rename(m.msid, 'Case', later(1));
    const other = machine();
    const raw = new RawDatabase(file);
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
      expect(SQLITE_SCHEMA_VERSION).toBe(1);
      expect(raw.prepare('SELECT msid, pcid, certificate_hash, created, updated, typeof(created) AS t FROM servers').all()).toEqual([
        { msid: m.msid, pcid: 'Case', certificate_hash: m.hash, created: T0.getTime(), updated: T0.getTime() + 1, t: 'integer' },
      ]);
      // The constraint itself, not only the store's check, keeps PCIDs unique (case-sensitively).
      expect(() => raw.exec(`INSERT INTO servers VALUES ('${other.msid}', 'Case', '${other.hash}', 0, 0)`)).toThrow(/UNIQUE/);
      raw.exec(`INSERT INTO servers VALUES ('${other.msid}', 'case', '${other.hash}', 0, 0)`);
    } finally {
      raw.close();
    }
    expect((await store.findByPcid('case'))?.msid).toBe(other.msid);
    expect((await store.findByPcid('Case'))?.msid).toBe(m.msid);
    await store.close();
  });

  it('refuses a file with a newer schema version, and leaves it alone', async () => {
    const file = freshFile();
    await (await SqliteServerStore.open(file)).close();
    const raw = new RawDatabase(file);
    raw.pragma('user_version = 2');
    raw.close();
    const err = await rejection(SqliteServerStore.open(file));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.code).toBe('GS_ERR_INVALID_OPTION');
    expect(err.message).toMatch(/schema version 2, newer than the 1 this gatesock understands; upgrade gatesock/);
    const check = new RawDatabase(file);
    expect(check.pragma('user_version', { simple: true })).toBe(2);
    check.close();
  });

  it('refuses a file that is not a SQLite database, or is someone else’s', async () => {
    const junk = join(work, 'junk.sqlite');
    writeFileSync(junk, 'this is not a database, just text that is long enough to have a header '.repeat(20));
    const err = await rejection(SqliteServerStore.open(junk));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/cannot open ".*junk\.sqlite" as a SQLite server database: file is not a database/);

    const foreign = join(work, 'foreign.sqlite');
    const raw = new RawDatabase(foreign);
    raw.exec('CREATE TABLE servers (name TEXT)');
    raw.close();
    const err2 = await rejection(SqliteServerStore.open(foreign));
    expect(err2).toBeInstanceOf(ConfigError);
    expect(err2.message).toMatch(/not a gatesock server database/);
  });

  it('refuses a bad path or option by name', async () => {
    expect((await rejection(SqliteServerStore.open(''))).message).toMatch(/^path must be/);
    expect((await rejection(SqliteServerStore.open(':memory:', { generatePcid: 'x' as never }))).message).toMatch(/^generatePcid must be a function/);
  });

  it('says to install better-sqlite3 when the driver cannot be loaded', async () => {
    const err = await rejection(loadSqliteDriver({ what: 'server', alternative: 'MemoryServerStore', specifier: 'better-sqlite3-not-installed-here' }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.code).toBe('GS_ERR_INVALID_OPTION');
    expect(err.message).toMatch(/needs the "better-sqlite3-not-installed-here" package, which could not be loaded/);
    expect(err.message).toContain('npm install better-sqlite3');
    expect(err.message).toMatch(/^the SQLite server store .* or use MemoryServerStore$/);
    expect(typeof (await loadSqliteDriver({ what: 'server', alternative: 'MemoryServerStore' }))).toBe('function');
  });

  it('importing the relay module does not load better-sqlite3; opening a SQLite store does', async () => {
    // A child process, so that this test file's own use of better-sqlite3 does not count.
    const script = `
      const { createRequire } = await import('node:module');
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('better-sqlite3'));
      const relay = await import('./src/relay/index.ts');
      const before = loaded();
      const store = await relay.SqliteServerStore.open(':memory:');
      const after = loaded();
      await store.close();
      console.log(JSON.stringify({ before, after }));
    `;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo, timeout: 60_000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
      );
    });
    expect(JSON.parse(out.trim())).toEqual({ before: false, after: true });
  });
});
