// Two security centers on ONE database — a PostgreSQL database (a throwaway server from
// test/helpers/postgres.ts), or the same two SQLite files — race on the same new advisories, many times: both import the
// same advisory with its countermeasures at once, or both pick up an advisory a third
// process stored (syncAdvisories) at once. Exactly one action per (host, finding) must be
// made, exactly one dispatch attempt per automatic action and exactly one notification per
// manual one — whichever center made it. Also the notifier retry: two centers seeing the
// same planned manual action whose notification failed send it once between them.
// Then, with a memory store that another writer touches: a change made between the center's
// read and its compare-and-swap is kept, and a manual action another center left planned
// (it stopped while sending it) is sent again once its 10-minute lease ran out.
// The PostgreSQL case is skipped with the reason printed where no server can be started
// (GS_REQUIRE_POSTGRES=1 makes that a failure).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RelayError, SecurityCenterError } from '../../src/errors/index.js';
import type { AgentConnector, AgentRef } from '../../src/delivery/dispatch/index.js';
import { parseOsv, type Countermeasure } from '../../src/delivery/security/advisories/index.js';
import { signReportMessage } from '../../src/delivery/security/channel/index.js';
import { MemoryConfigurationStore, SecurityCenter, type ActionRecord } from '../../src/delivery/security/center/index.js';
import { collectConfiguration } from '../../src/delivery/security/collect/index.js';
import type { Notifier, SecurityNotification } from '../../src/delivery/security/notify/index.js';
import { encodeConfigurationReport } from '../../src/delivery/security/report/index.js';
import { PostgresSecurityStore, SqliteSecurityStore, type SecurityStore } from '../../src/delivery/security/secdb/index.js';
import { createServerIdentity, generateIdentityKey, type Identity } from '../../src/session/index.js';
import { postgresForFile } from '../helpers/postgres.js';
import { actionRecord, collectFor, tempDir, writeRoot } from './fixtures/center/harness.js';

const { server, closers, dirs, skip } = await postgresForFile('two SecurityCenters on one PostgreSQL database');

/** Counts connection attempts per agent; every agent is offline, so each dispatch fails at once. */
class CountingConnector implements AgentConnector {
  readonly connects = new Map<string, number>();
  async connect(agent: AgentRef): Promise<never> {
    this.connects.set(agent.msid, (this.connects.get(agent.msid) ?? 0) + 1);
    throw new RelayError('GS_ERR_SERVER_OFFLINE', `agent ${agent.msid} is offline (test)`);
  }
}

/** Records every notification; fails while `failing` is set. */
class CountingNotifier implements Notifier {
  readonly kind = 'test';
  readonly sent: SecurityNotification[] = [];
  failing = false;
  async send(n: SecurityNotification): Promise<void> {
    // Let the other center run in between, as a real notifier's round trip would.
    await new Promise((r) => setTimeout(r, 5));
    if (this.failing) throw new SecurityCenterError('GS_ERR_SECURITY_NOTIFY_FAILED', 'test notifier is down');
    this.sent.push(n);
  }
  async close(): Promise<void> {}
}

function osv(id: string): string {
  return JSON.stringify({
    schema_version: '1.6.0',
    id,
    modified: '2026-11-20T10:00:00Z',
    affected: [{ package: { ecosystem: 'Debian:12', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.11-1~deb12u2' }] }] }],
  });
}

const HOSTS = ['h1', 'h2', 'h3'];
const ROUNDS = 24;

/** (host, finding key) → how many actions, for every pair with more than one. */
function duplicates(actions: readonly ActionRecord[]): string[] {
  const n = new Map<string, number>();
  for (const a of actions) n.set(`${a.hostId} ${a.findingKey}`, (n.get(`${a.hostId} ${a.findingKey}`) ?? 0) + 1);
  return [...n].filter(([, c]) => c > 1).map(([k, c]) => `${k} ×${c}`);
}

/** Where both centers keep their databases, and a third process's view of the security database. */
interface Databases {
  readonly config: string;
  readonly security: string;
  importer(): Promise<SecurityStore>;
}
const BACKENDS: [string, string | undefined, () => Promise<Databases>][] = [
  [
    'one PostgreSQL database',
    skip,
    async () => {
      const url = await server.database();
      return { config: url, security: url, importer: () => PostgresSecurityStore.open(url) };
    },
  ],
  [
    'the same SQLite files',
    undefined,
    async () => {
      const d = tempDir('center-race-sqlite');
      dirs.push(d);
      const security = path.join(d, 'security.db');
      return { config: path.join(d, 'config.db'), security, importer: () => SqliteSecurityStore.open(security) };
    },
  ],
];

describe.each(BACKENDS)('two SecurityCenters on %s', (_name, unavailable, databases) => {
  it.skipIf(unavailable !== undefined)(`make exactly one action per finding when they race on the same advisories (${ROUNDS} rounds × ${HOSTS.length} hosts)`, async () => {
    const db = await databases();
    const d = tempDir('center-race');
    dirs.push(d);
    const key = generateIdentityKey();
    const connector = new CountingConnector();
    const notifiers = [new CountingNotifier(), new CountingNotifier()];
    const open = (notifier: Notifier) =>
      SecurityCenter.open({ key, connector, notifier, configStore: db.config, securityStore: db.security, dispatch: { retries: 0, connectTimeoutMs: 1_000, waves: [1], failureThreshold: 1 }, countermeasureTimeoutMs: 5_000 });
    const a = await open(notifiers[0]!);
    closers.push(() => a.close());
    // The hosts report to center A; center B loads them from the database when it opens.
    const identities = new Map<string, Identity>();
    for (const h of HOSTS) {
      const identity = createServerIdentity();
      identities.set(h, identity);
      const root = writeRoot(path.join(d, h), [{ name: 'openssl', version: '3.0.9-1' }]);
      const { report } = await collectConfiguration({ ...collectFor(root, ['10.0.0.9']), hostMsid: identity.msid });
      const answer = await a.receiveReport(signReportMessage({ host: h, pcid: `agent-${h}`, device: 'server' }, encodeConfigurationReport({ ...report, seq: 1 }), identity));
      expect(answer.status).toBe('accepted');
    }
    const b = await open(notifiers[1]!);
    closers.push(() => b.close());
    expect(b.engine.hostIds().sort()).toEqual(HOSTS);
    // A third process (`gatesock center import-advisories`) stores advisories for the sync rounds.
    const importer = await db.importer();
    closers.push(() => importer.close());

    let automatic = 0;
    let manual = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const id = `T-RACE-${i}`;
      const advisory = parseOsv(osv(id), `${id}.json`);
      const isManual = i % 2 === 1;
      const steps: Countermeasure[] = isManual ? [{ kind: 'manual', instructions: `fix ${id} by hand` }] : [{ kind: 'upgrade', package: 'openssl' }];
      const cms = new Map([[id, steps]]);
      if (i % 4 < 2) {
        // both import it at once
        await Promise.all([a.importAdvisories(advisory, cms), b.importAdvisories(advisory, cms)]);
      } else {
        // another process stored it; both centers sync at once
        await importer.putCountermeasures(cms);
        await importer.putAdvisories(advisory);
        await Promise.all([a.syncAdvisories(), b.syncAdvisories()]);
      }
      if (isManual) manual++;
      else automatic++;
    }
    await Promise.all([a.settled(), b.settled()]);

    const actions = await a.actions();
    expect(duplicates(actions)).toEqual([]);
    expect(actions).toHaveLength(ROUNDS * HOSTS.length);
    expect((await b.actions()).map((x) => x.id)).toEqual(actions.map((x) => x.id));
    // every automatic action was dispatched once (and failed: the agents are offline); every manual one notified once
    for (const x of actions) expect([x.mode, x.state], x.findingKey).toEqual(x.mode === 'automatic' ? ['automatic', 'failed'] : ['manual', 'notified']);
    for (const h of HOSTS) expect(connector.connects.get(identities.get(h)!.msid), h).toBe(automatic);
    const sent = [...notifiers[0]!.sent, ...notifiers[1]!.sent];
    expect(sent).toHaveLength(manual * HOSTS.length);
    expect(new Set(sent.map((n) => n.id)).size).toBe(manual * HOSTS.length);

    // The notifier retry: both notifiers down, a manual advisory → planned actions; then both
    // centers see it again at once (a re-import of the countermeasures) with the notifiers up.
    for (const n of notifiers) n.failing = true;
    const id = 'T-RACE-RETRY';
    const cms = new Map<string, Countermeasure[]>([[id, [{ kind: 'manual', instructions: 'by hand' }]]]);
    const retry = parseOsv(osv(id), `${id}.json`);
    await a.importAdvisories(retry, cms);
    const waiting = (await a.actions()).filter((x) => x.advisoryId === id);
    expect(waiting.map((x) => [x.state, x.detail?.startsWith('notification failed')])).toEqual(HOSTS.map(() => ['planned', true]));
    for (const n of notifiers) n.failing = false;
    const before = sent.length;
    for (let r = 0; r < 3; r++) await Promise.all([a.importAdvisories(retry, cms), b.importAdvisories(retry, cms)]);
    expect(notifiers[0]!.sent.length + notifiers[1]!.sent.length - before).toBe(HOSTS.length);
    expect((await a.actions()).filter((x) => x.advisoryId === id).map((x) => x.state)).toEqual(HOSTS.map(() => 'notified'));
    expect(duplicates(await a.actions())).toEqual([]);
  });

  it.skipIf(unavailable !== undefined)('act on what the hosts reported to the other center: a fix reported there, a host that joined there', async () => {
    const db = await databases();
    const d = tempDir('center-stale');
    dirs.push(d);
    const key = generateIdentityKey();
    const connector = new CountingConnector();
    const open = () => SecurityCenter.open({ key, connector, configStore: db.config, securityStore: db.security, dispatch: { retries: 0, connectTimeoutMs: 1_000, failureThreshold: 1 } });
    const a = await open();
    closers.push(() => a.close());
    const send = async (h: string, identity: Identity, version: string, seq: number) => {
      const root = writeRoot(path.join(d, `${h}-${seq}`), [{ name: 'openssl', version }]);
      const { report } = await collectConfiguration({ ...collectFor(root, ['10.0.0.9']), hostMsid: identity.msid });
      expect((await a.receiveReport(signReportMessage({ host: h, pcid: `agent-${h}`, device: 'server' }, encodeConfigurationReport({ ...report, seq }), identity))).status).toBe('accepted');
    };
    const [one, two] = [createServerIdentity(), createServerIdentity()];
    await send('h1', one, '3.0.9-1', 1);
    const b = await open();
    closers.push(() => b.close());
    // After B opened, h1 reports its fix to A and h2 joins at A with the old version.
    await send('h1', one, '3.0.11-1~deb12u2', 2);
    await send('h2', two, '3.0.9-1', 1);
    const result = await b.importAdvisories(parseOsv(osv('T-STALE'), 'T-STALE.json'));
    expect(result.affected).toEqual([{ advisoryId: 'T-STALE', hosts: ['h2'] }]);
    expect(result.actions.map((x) => x.hostId)).toEqual(['h2']);
    expect(b.findings().map((f) => f.hostId)).toEqual(['h2']);
    expect(connector.connects.get(one.msid)).toBeUndefined();
    expect(connector.connects.get(two.msid)).toBe(1);
  });
});

/** A memory store where "another center" writes an action between this center's read and its compare-and-swap, once. */
class InterferingStore extends MemoryConfigurationStore {
  swaps = 0;
  interfere: ((expected: ActionRecord, next: ActionRecord) => ActionRecord | null) | null = null;
  override async replaceAction(expected: ActionRecord, next: ActionRecord): Promise<boolean> {
    this.swaps++;
    const other = this.interfere?.(expected, next) ?? null;
    if (other !== null) {
      this.interfere = null;
      await this.putAction(other);
    }
    return super.replaceAction(expected, next);
  }
}

describe('a center sharing its configuration store with another writer', () => {
  async function oneHost(store: InterferingStore, clock: () => number) {
    const key = generateIdentityKey();
    const notifier = new CountingNotifier();
    const center = await SecurityCenter.open({ key, connector: new CountingConnector(), notifier, configStore: store, now: clock });
    closers.push(() => center.close());
    const d = tempDir('center-cas');
    dirs.push(d);
    const identity = createServerIdentity();
    const root = writeRoot(path.join(d, 'h1'), [{ name: 'openssl', version: '3.0.9-1' }]);
    const { report } = await collectConfiguration({ ...collectFor(root, ['10.0.0.9']), hostMsid: identity.msid });
    await center.receiveReport(signReportMessage({ host: 'h1', pcid: 'agent-h1', device: 'server' }, encodeConfigurationReport({ ...report, seq: 1 }), identity));
    return { center, notifier, identity };
  }
  const byHand = (id: string) => new Map<string, Countermeasure[]>([[id, [{ kind: 'manual', instructions: 'by hand' }]]]);

  it('keeps a change the other writer made between its read and its write (the swap fails, it reads again)', async () => {
    const store = new InterferingStore();
    const { center, notifier } = await oneHost(store, Date.now);
    store.interfere = (expected, next) => (next.state === 'notified' ? { ...expected, fixReportedAt: 123, updatedAt: expected.updatedAt + 1 } : null);
    await center.importAdvisories(parseOsv(osv('T-CAS-1'), 'T-CAS-1.json'), byHand('T-CAS-1'));
    expect(notifier.sent).toHaveLength(1);
    const [action] = await center.actions();
    expect(action).toMatchObject({ state: 'notified', fixReportedAt: 123 });
    expect(action!.detail).toMatch(/^sent by test/);
    expect(store.swaps).toBe(2);
  });

  it('sends again a manual action left planned by a center that stopped while sending it, once its lease ran out', async () => {
    let now = 1_000_000_000_000;
    const store = new InterferingStore();
    const { center, notifier, identity } = await oneHost(store, () => now);
    // Two findings whose actions another center claimed and never finished: one 11 minutes ago, one a minute ago.
    const stuck = (id: string, age: number): ActionRecord =>
      actionRecord(`act-${id}`, 'h1', identity.msid, now - age, { findingKey: `vulnerable ${id} openssl`, advisoryId: id, reason: `stuck ${id}`, steps: [{ kind: 'manual', instructions: 'by hand' }], mode: 'manual' });
    await store.putAction(stuck('T-OLD', 11 * 60_000));
    await store.putAction(stuck('T-NEW', 60_000));
    await center.importAdvisories([...parseOsv(osv('T-OLD'), 'T-OLD.json'), ...parseOsv(osv('T-NEW'), 'T-NEW.json')], new Map([...byHand('T-OLD'), ...byHand('T-NEW')]));
    expect(notifier.sent.map((n) => n.title)).toEqual([expect.stringMatching(/^T-OLD: /)]);
    expect((await center.actions()).map((a) => [a.id, a.state])).toEqual([
      ['act-T-OLD', 'notified'],
      ['act-T-NEW', 'planned'],
    ]);
    // ten minutes later the other one is taken as abandoned too
    now += 10 * 60_000;
    await center.importAdvisories(parseOsv(osv('T-NEW'), 'T-NEW.json'), byHand('T-NEW'));
    expect(notifier.sent.map((n) => n.title.slice(0, 6))).toEqual(['T-OLD:', 'T-NEW:']);
  });
});
