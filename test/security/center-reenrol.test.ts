// Re-enrolling a host to a new agent (SecurityCenter.enrollHost for a host already bound to
// another agent that has reported), on each configuration store: a PostgreSQL database (a
// throwaway server from test/helpers/postgres.ts), an SQLite file, a MemoryConfigurationStore.
// The new agent's reports start a fresh sequence for the host: its first full report is
// accepted (not refused because the stored latest report is the old agent's, not answered
// stale because the old agent numbered higher), diagnosed and acted on as a joining host's;
// a delta before it is answered `need-full` as any delta without a base; the old agent is
// refused with GS_ERR_SECURITY_WRONG_HOST; the old agent's last report stays stored as the
// host's previous one (history), but is never the base of the new agent's deltas.
// The PostgreSQL case is skipped with the reason printed where no server can be started
// (GS_REQUIRE_POSTGRES=1 makes that a failure).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RelayError, SecurityCenterError } from '../../src/errors/index.js';
import type { AgentConnector } from '../../src/delivery/dispatch/index.js';
import { parseOsv } from '../../src/delivery/security/advisories/index.js';
import { signReportMessage, type AnswerMessage } from '../../src/delivery/security/channel/index.js';
import { MemoryConfigurationStore, PostgresConfigurationStore, SecurityCenter, SqliteConfigurationStore, type ConfigurationStore } from '../../src/delivery/security/center/index.js';
import { collectConfiguration } from '../../src/delivery/security/collect/index.js';
import { diffReports, encodeConfigurationReport, type ConfigurationReport, type FullReport } from '../../src/delivery/security/report/index.js';
import { createServerIdentity, generateIdentityKey, type Identity } from '../../src/session/index.js';
import { postgresForFile } from '../helpers/postgres.js';
import { collectFor, tempDir, writeRoot, type FixturePackage } from './fixtures/center/harness.js';

const { server, closers, dirs, skip } = await postgresForFile('re-enrolment on a PostgreSQL database');

/** No agent is reachable (the countermeasure here is manual: nothing is dispatched). */
const offline: AgentConnector = {
  async connect(): Promise<never> {
    throw new RelayError('GS_ERR_SERVER_OFFLINE', 'agents are offline (test)');
  },
};

const BACKENDS: [string, string | undefined, () => Promise<ConfigurationStore>][] = [
  ['a PostgreSQL database', skip, async () => PostgresConfigurationStore.open(await server.database())],
  [
    'an SQLite file',
    undefined,
    async () => {
      const d = tempDir('center-reenrol');
      dirs.push(d);
      return SqliteConfigurationStore.open(path.join(d, 'config.db'));
    },
  ],
  ['a MemoryConfigurationStore', undefined, async () => new MemoryConfigurationStore()],
];

const FIXED: FixturePackage[] = [{ name: 'openssl', version: '3.0.11-1~deb12u2' }];
const VULNERABLE: FixturePackage[] = [{ name: 'openssl', version: '3.0.9-1' }];
const ADVISORY = JSON.stringify({
  schema_version: '1.6.0',
  id: 'T-1',
  modified: '2026-11-20T10:00:00Z',
  aliases: [],
  related: [],
  affected: [{ package: { ecosystem: 'Debian:12', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.11-1~deb12u2' }] }] }],
  references: [],
});

const roots = tempDir('center-reenrol-roots');
dirs.push(roots);
let rootCount = 0;

/** A full report numbered `seq` of a fixture host with these packages, from `identity`. */
async function fullReport(identity: Identity, packages: readonly FixturePackage[], seq: number): Promise<FullReport> {
  const root = writeRoot(path.join(roots, `r${rootCount++}`), packages);
  const { report } = await collectConfiguration({ ...collectFor(root, ['10.0.0.9']), hostMsid: identity.msid });
  return { ...report, seq };
}

/** A center on a fresh store, and the codes of the reports it refused. */
async function centerOn(store: () => Promise<ConfigurationStore>) {
  const center = await SecurityCenter.open({ key: generateIdentityKey(), connector: offline, configStore: await store() });
  closers.push(() => center.close());
  const refused: string[] = [];
  const joined: string[] = [];
  center.on('refused', (r) => refused.push(r.code));
  center.on('joined', (h) => joined.push(`${h.hostId} ${h.msid}`));
  /** Send `report` signed by `identity` as host H; its answer status (with the sequence it names), or the refusal's code. */
  const send = async (identity: Identity, report: ConfigurationReport): Promise<string> => {
    try {
      const a: AnswerMessage = await center.receiveReport(signReportMessage({ host: 'H', pcid: 'agent-H', device: 'server' }, encodeConfigurationReport(report), identity));
      return a.status === 'stale' ? `stale above ${a.expectSeqAbove}` : a.status === 'accepted' ? `accepted ${a.seq}` : `${a.status}: ${a.message}`;
    } catch (err) {
      return err instanceof SecurityCenterError ? err.code : `thrown ${String(err)}`;
    }
  };
  return { center, refused, joined, send };
}

describe.each(BACKENDS)('re-enrolling a host to a new agent on %s', (_name, unavailable, store) => {
  it.skipIf(unavailable !== undefined)('accepts the new agent\'s first full report, diagnoses and acts on it, and refuses the old agent', async () => {
    const { center, refused, joined, send } = await centerOn(store);
    await center.importAdvisories(parseOsv(ADVISORY), new Map([['T-1', [{ kind: 'manual' as const, instructions: 'upgrade openssl by hand' }]]]));
    const [y, x] = [createServerIdentity(), createServerIdentity()];
    await center.enrollHost('H', y.msid, 'agent-H');
    const y1 = await fullReport(y, FIXED, 1);
    expect(await send(y, y1)).toBe('accepted 1');
    expect(await send(y, diffReports(y1, { ...y1, kernel: '6.1.0-29-amd64' }))).toBe('accepted 2');
    expect(center.findings('H')).toEqual([]);

    // The operator re-enrols H to agent X (say, the host was reinstalled with a new identity).
    await center.enrollHost('H', x.msid, 'agent-H');
    const x1 = await fullReport(x, VULNERABLE, 1);
    expect(await send(x, x1)).toBe('accepted 1');
    await center.settled();
    // Diagnosed and acted on as a joining host's first report.
    expect(center.findings('H').map((f) => f.kind)).toEqual(['vulnerable']);
    expect((await center.actions('H')).map((a) => [a.msid, a.advisoryId, a.trigger])).toEqual([[x.msid, 'T-1', 'join']]);
    expect(joined).toEqual([`H ${y.msid}`, `H ${x.msid}`]);
    const host = (await center.hosts()).find((h) => h.hostId === 'H');
    expect(host?.msid).toBe(x.msid);
    expect(host?.lastSeen).toBeGreaterThan(0);
    // History: the old agent's last report is kept as the host's previous one.
    expect((await center.config.latest('H'))?.hostMsid).toBe(x.msid);
    expect(await center.config.previous('H')).toMatchObject({ hostMsid: y.msid, seq: 2, kernel: '6.1.0-29-amd64' });

    // The old agent no longer speaks for H; nothing changes.
    expect(await send(y, { ...diffReports({ ...y1, seq: 2 }, y1), seq: 3 })).toBe('GS_ERR_SECURITY_WRONG_HOST');
    expect(await send(y, await fullReport(y, FIXED, 4))).toBe('GS_ERR_SECURITY_WRONG_HOST');
    expect(refused).toEqual(['GS_ERR_SECURITY_WRONG_HOST', 'GS_ERR_SECURITY_WRONG_HOST']);
    expect((await center.config.latest('H'))?.seq).toBe(1);

    // The new agent's deltas apply on its own reports.
    const x2 = await fullReport(x, FIXED, 2);
    expect(await send(x, diffReports(x1, x2))).toBe('accepted 2');
    await center.settled();
    expect(center.findings('H')).toEqual([]);
    expect(await center.config.previous('H')).toMatchObject({ hostMsid: x.msid, seq: 1 });
  });

  it.skipIf(unavailable !== undefined)('starts the new agent\'s sequence afresh: old agent at 50, new agent at 1; a delta first gets need-full', async () => {
    const { center, refused, send } = await centerOn(store);
    const [y, x] = [createServerIdentity(), createServerIdentity()];
    await center.enrollHost('H', y.msid, 'agent-H');
    const y49 = await fullReport(y, FIXED, 49);
    expect(await send(y, y49)).toBe('accepted 49');
    expect(await send(y, diffReports(y49, { ...y49, kernel: '6.1.0-29-amd64' }))).toBe('accepted 50');

    await center.enrollHost('H', x.msid, 'agent-H');
    const x1 = await fullReport(x, FIXED, 1);
    // A delta before the new agent's first full report: the answer of a delta without a base (the old agent's report is no base).
    const early = await send(x, { ...diffReports(x1, { ...x1, kernel: '6.1.0-29-amd64' }), seq: 51 });
    expect(early).toBe('need-full: delta 51 arrived but no full report is held');
    expect(await send(x, diffReports(x1, { ...x1, kernel: '6.1.0-29-amd64' }))).toBe('need-full: delta 2 arrived but no full report is held');
    // Its first full report, numbered 1, is not stale although the old agent reached 50.
    expect(await send(x, x1)).toBe('accepted 1');
    expect(await center.config.latest('H')).toMatchObject({ hostMsid: x.msid, seq: 1 });
    expect(await center.config.previous('H')).toMatchObject({ hostMsid: y.msid, seq: 50 });
    // From then on the usual rules, on the new agent's numbers.
    expect(await send(x, x1)).toBe('stale above 1');
    expect(await send(x, { ...diffReports(x1, x1), seq: 3 })).toBe('need-full: delta 3 does not follow report 1');
    expect(refused).toEqual([]);
  });
});
