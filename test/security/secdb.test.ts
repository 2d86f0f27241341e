import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { lazyPostgres } from '../helpers/postgres.js';
import { parseCountermeasureFile, parseOsv, parseOsvDocument, type Advisory } from '../../src/delivery/security/advisories/index.js';
import { MemorySecurityStore, PostgresSecurityStore, SqliteSecurityStore, type SecurityStore } from '../../src/delivery/security/secdb/index.js';
import { ConfigError } from '../../src/errors/index.js';

const FIX = fileURLToPath(new URL('./fixtures/osv/', import.meta.url));
const osv = (name: string) => parseOsv(readFileSync(join(FIX, name)), name);
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function revise(a: Advisory, modified: string, summary: string): Advisory {
  return { ...a, modified, summary };
}

const STORES: [string, () => Promise<SecurityStore>][] = [
  ['memory', async () => new MemorySecurityStore()],
  ['sqlite', () => SqliteSecurityStore.open(':memory:')],
];
// PostgreSQL: a throwaway server (test/helpers/postgres.ts), one fresh database per store.
const pgServer = lazyPostgres();
afterAll(() => pgServer.stop());
const noPostgres = await pgServer.unavailable();
if (noPostgres === undefined) STORES.push(['postgres', async () => PostgresSecurityStore.open(await pgServer.database())]);
else console.log(`SecurityStore (postgres) skipped: ${noPostgres}`);

describe.each(STORES)('SecurityStore (%s)', (_name, make) => {
  it('stores advisories with their affected entries, finds them by package, alias and ID', async () => {
    const s = await make();
    const all = [...osv('DSA-5532-1.json'), ...osv('DEBIAN-CVE-2024-6387.json'), ...osv('bundle.json')];
    const r = await s.putAdvisories(all);
    expect(r.added).toEqual(all.map((a) => a.id));
    expect(await s.getAdvisory('DSA-5532-1')).toEqual(all[0]);
    expect((await s.advisoriesFor('Debian:12', 'openssh')).map((a) => a.id)).toEqual(['DEBIAN-CVE-2024-6387']);
    expect((await s.advisoriesFor('Debian:11', 'openssh')).map((a) => a.id)).toEqual([]);
    expect((await s.findByAlias('CVE-2024-6387')).map((a) => a.id)).toEqual(['ALSA-2024:4312']);
    expect((await s.findByAlias('DSA-5532-1')).map((a) => a.id)).toEqual(['DSA-5532-1']);
    const ids: string[] = [];
    for await (const a of s.advisories()) ids.push(a.id);
    expect(ids).toEqual([...all.map((a) => a.id)].sort());
    expect(await s.count()).toEqual({ advisories: 5, countermeasures: 0 });
    await s.close();
  });

  it('replaces an entry only with a newer or different one, and reports which', async () => {
    const s = await make();
    const [a] = osv('DSA-5532-1.json');
    await s.putAdvisories([a!]);
    const older = revise(a!, '2023-10-01T00:00:00Z', 'old');
    const newer = revise(a!, '2023-11-01T00:00:00Z', 'new');
    const sameTimeOtherText = revise(a!, a!.modified, 'edited');
    expect(await s.putAdvisories([a!, older])).toEqual({ added: [], updated: [], unchanged: ['DSA-5532-1'], stale: ['DSA-5532-1'] });
    expect(await s.putAdvisories([sameTimeOtherText])).toMatchObject({ updated: ['DSA-5532-1'] });
    expect(await s.putAdvisories([newer])).toMatchObject({ updated: ['DSA-5532-1'] });
    expect((await s.getAdvisory('DSA-5532-1'))!.summary).toBe('new');
    // A revision that moves the package drops the old index entry.
    const moved: Advisory = { ...newer, modified: '2023-12-01T00:00:00Z', affected: [{ ...newer.affected[0]!, name: 'openssl3' }] };
    await s.putAdvisories([moved]);
    expect(await s.advisoriesFor('Debian:12', 'openssl')).toEqual([]);
    expect((await s.advisoriesFor('Debian:12', 'openssl3')).map((x) => x.id)).toEqual(['DSA-5532-1']);
    expect(await s.deleteAdvisory('DSA-5532-1')).toBe(true);
    expect(await s.deleteAdvisory('DSA-5532-1')).toBe(false);
    expect(await s.advisoriesFor('Debian:12', 'openssl3')).toEqual([]);
    expect(await s.findByAlias('DSA-5532-1')).toEqual([]);
    await s.close();
  });

  it('holds countermeasures by advisory ID, replaced whole', async () => {
    const s = await make();
    const set = parseCountermeasureFile(readFileSync(join(FIX, 'countermeasures.json')));
    await s.putCountermeasures(set);
    expect(await s.getCountermeasures('DSA-5532-1')).toEqual(set.get('DSA-5532-1'));
    await s.putCountermeasures(new Map([['DSA-5532-1', [{ kind: 'manual', instructions: 'call the vendor' }]]]));
    expect(await s.getCountermeasures('DSA-5532-1')).toEqual([{ kind: 'manual', instructions: 'call the vendor' }]);
    expect([...(await s.countermeasures()).keys()]).toEqual(['DEBIAN-CVE-2024-6387', 'DSA-5532-1', 'LOCAL-2026-0001']);
    expect(await s.deleteCountermeasures('LOCAL-2026-0001')).toBe(true);
    expect(await s.count()).toEqual({ advisories: 0, countermeasures: 2 });
    await s.close();
    await expect(s.count()).rejects.toThrow(/closed/);
    await s.close();
  });

  it('reads many advisories back in order (paged)', async () => {
    const s = await make();
    const list = parseOsvDocument(
      Array.from({ length: 1203 }, (_, i) => ({
        id: `DSA-${String(i).padStart(5, '0')}-1`,
        modified: '2026-01-01T00:00:00Z',
        affected: [{ package: { ecosystem: 'Debian:12', name: `pkg${i % 7}` }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: `1.${i}-1` }] }] }],
      })),
    );
    await s.putAdvisories(list);
    let n = 0;
    let last = '';
    for await (const a of s.advisories()) {
      expect(a.id > last).toBe(true);
      last = a.id;
      n++;
    }
    expect(n).toBe(1203);
    expect((await s.advisoriesFor('Debian:12', 'pkg3')).length).toBe(172);
    await s.close();
  });
});

describe('SqliteSecurityStore files', () => {
  it('keeps its content across reopening, and refuses files that are not its own', async () => {
    const d = await mkdtemp(join(tmpdir(), 'gs-secdb-'));
    dirs.push(d);
    const file = join(d, 'sub', 'sec.db');
    const s = await SqliteSecurityStore.open(file);
    await s.putAdvisories(osv('DEBIAN-CVE-2024-6387.json'));
    await s.close();
    const again = await SqliteSecurityStore.open(file);
    expect((await again.advisoriesFor('Debian:13', 'openssh')).map((a) => a.id)).toEqual(['DEBIAN-CVE-2024-6387']);
    expect(await again.getAdvisory('DEBIAN-CVE-2024-6387')).toEqual(osv('DEBIAN-CVE-2024-6387.json')[0]);
    await again.close();
    const junk = join(d, 'junk.db');
    await writeFile(junk, 'not a database at all, just some text that is long enough to be read as a header');
    await expect(SqliteSecurityStore.open(junk)).rejects.toBeInstanceOf(ConfigError);
  });
});
