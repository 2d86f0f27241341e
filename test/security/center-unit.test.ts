/**
 * The security center over in-memory pieces: the report channel's codec and
 * signed envelope, refusals that change nothing, the host binding, delta
 * sequencing, the generated countermeasure code, the four triggers with a
 * memory dispatch connector (a countermeasure reaches only the hosts the
 * matching selected), manual findings, scanner findings, and the SQLite
 * configuration store.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SecurityCenterError } from '../../src/errors/index.js';
import { createServerIdentity, generateIdentityKey, type Identity } from '../../src/session/index.js';
import { InlineExecutor, MemoryAgentConnector } from '../../src/delivery/dispatch/index.js';
import { parseOsv } from '../../src/delivery/security/advisories/index.js';
import { SecurityAgent } from '../../src/delivery/security/agent/index.js';
import {
  FrameCollector,
  decodeChannelMessage,
  encodeChannelMessage,
  signReportMessage,
  verifyReportMessage,
  type ReportMessage,
} from '../../src/delivery/security/channel/index.js';
import { SecurityCenter, SqliteConfigurationStore, countermeasureCode, resolveSteps, checkPolicyDocument, type PolicyDocument } from '../../src/delivery/security/center/index.js';
import type { Finding } from '../../src/delivery/security/diagnosis/index.js';
import type { Notifier, SecurityNotification } from '../../src/delivery/security/notify/index.js';
import { collectConfiguration } from '../../src/delivery/security/collect/index.js';
import { diffReports, encodeConfigurationReport, type FullReport } from '../../src/delivery/security/report/index.js';
import { FAKE_UPGRADE, FIXTURES, collectFor, dpkgStatus, installedVersion, memoryCenterLink, tempDir, until, writeRoot, type FixturePackage } from './fixtures/center/harness.js';
import { rejectionCodeOf } from '../helpers/error-code.js';

const dirs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function dir(tag: string): string {
  const d = tempDir(tag);
  dirs.push(d);
  return d;
}

/** A full report of a fixture root for this identity. */
async function reportOf(identity: Identity, root: string, seq = 1): Promise<FullReport> {
  const { report } = await collectConfiguration({ ...collectFor(root, ['10.0.0.9']), hostMsid: identity.msid });
  return { ...report, seq };
}

const SSL_OLD: FixturePackage[] = [{ name: 'openssl', version: '3.0.9-1' }];

describe('report channel codec', () => {
  const identity = createServerIdentity();
  const body = Buffer.from('{"x":1}');

  it('round-trips both messages canonically and verifies the signer', () => {
    const m = signReportMessage({ host: 'web-1', pcid: 'agent-web-1', device: 'server' }, body, identity);
    const bytes = encodeChannelMessage(m);
    const back = decodeChannelMessage(bytes) as ReportMessage;
    expect(back).toMatchObject({ t: 'report', host: 'web-1', pcid: 'agent-web-1', device: 'server' });
    expect(Buffer.from(back.body).equals(body)).toBe(true);
    expect(Buffer.from(encodeChannelMessage(back)).equals(Buffer.from(bytes))).toBe(true);
    expect(verifyReportMessage(back).msid).toBe(identity.msid);
    const a = { t: 'answer' as const, status: 'accepted' as const, seq: 3, expectSeqAbove: null, code: null, message: null, firewall: true, files: [{ path: '/etc/ssh/sshd_config', content: true }], body: Buffer.from('table inet x {\n}\n') };
    expect(decodeChannelMessage(encodeChannelMessage(a))).toMatchObject({ status: 'accepted', seq: 3, firewall: true, files: [{ path: '/etc/ssh/sshd_config', content: true }] });
    expect(() => encodeChannelMessage({ ...a, files: [{ path: '/etc/../shadow', content: true }] })).toThrow(SecurityCenterError);
  });

  it('refuses tampering, other keys, wrong order, junk and oversize', () => {
    const m = signReportMessage({ host: 'web-1', pcid: 'agent-web-1', device: 'server' }, body, identity);
    // a changed body, host or PCID no longer verifies
    for (const forged of [{ ...m, body: Buffer.from('{"x":2}') }, { ...m, host: 'web-2' }, { ...m, pcid: 'evil' }]) {
      expect(() => verifyReportMessage(forged)).toThrow(/does not verify/);
    }
    // another identity's certificate with this signature
    expect(() => verifyReportMessage({ ...m, certificate: signReportMessage(m, body, createServerIdentity()).certificate })).toThrow(/does not verify/);
    const frame = (header: string, b = body) => {
      const h = Buffer.from(header);
      const out = Buffer.alloc(6 + h.length + b.length);
      out.writeUInt32BE(2 + h.length + b.length, 0);
      out.writeUInt16BE(h.length, 4);
      h.copy(out, 6);
      Buffer.from(b).copy(out, 6 + h.length);
      return out;
    };
    const good = JSON.stringify({ t: 'report', host: 'web-1', pcid: 'p', device: 'server', certificate: 'AA', signature: 'AA' });
    expect(() => decodeChannelMessage(frame(good))).not.toThrow();
    const bad = [
      JSON.stringify({ t: 'report', pcid: 'p', host: 'web-1', device: 'server', certificate: 'AA', signature: 'AA' }), // order
      JSON.stringify({ t: 'report', host: 'web-1', pcid: 'p', device: 'server', certificate: 'AA', signature: 'AA', extra: 1 }),
      JSON.stringify({ t: 'report', host: '../etc', pcid: 'p', device: 'server', certificate: 'AA', signature: 'AA' }),
      JSON.stringify({ t: 'report', host: 'web-1', pcid: 'has space', device: 'server', certificate: 'AA', signature: 'AA' }),
      JSON.stringify({ t: 'report', host: 'web-1', pcid: 'p', device: 'router', certificate: 'AA', signature: 'AA' }),
      JSON.stringify({ t: 'report', host: 'web-1', pcid: 'p', device: 'server', certificate: 'A+A', signature: 'AA' }),
      JSON.stringify({ t: 'hello' }),
      '{"t":"report",',
      ' ' + good, // not canonical
    ];
    for (const h of bad) expect(() => decodeChannelMessage(frame(h)), h).toThrow(SecurityCenterError);
    expect(() => decodeChannelMessage(frame(good, Buffer.alloc(0)))).toThrow(/carries the report/);
    expect(() => decodeChannelMessage(frame(good).subarray(0, 20))).toThrow(/does not match/);
    // a length over the limit is refused before anything is buffered
    const c = new FrameCollector(1024);
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(1 << 30, 0);
    expect(() => c.push(huge)).toThrow(/more than the limit/);
    // bytes after the one message of a connection
    const c2 = new FrameCollector();
    expect(() => c2.push(Buffer.concat([frame(good), Buffer.from([0])]))).toThrow(/bytes follow/);
  });
});

describe('generated countermeasure code', () => {
  it('resolves steps per host and runs them: upgrade through the template, config lines rewritten, a failing command stops it', async () => {
    const d = dir('code');
    const root = writeRoot(path.join(d, 'root'), [{ name: 'openssh-server', version: '1:9.2p1-2', source: 'openssh' }]);
    fs.mkdirSync(path.join(root, 'etc/ssh'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/ssh/sshd_config'), '# sshd\nPermitRootLogin yes\nPort 22\n');
    const finding = {
      kind: 'vulnerable',
      hostId: 'h',
      advisoryId: 'A-1',
      package: 'openssh-server',
      matchedPackage: 'openssh',
      fixed: '1:9.2p1-2+deb12u3',
    } as unknown as Finding;
    const steps = resolveSteps(
      finding,
      [
        { kind: 'upgrade', package: 'openssh' },
        { kind: 'config', path: '/etc/ssh/sshd_config', set: { PermitRootLogin: 'no', LoginGraceTime: '0' } },
      ],
      { upgradeCommand: [process.execPath, FAKE_UPGRADE, root, '{package}', '{version}'], configRoot: root },
    );
    // the binary that is installed, at the fixed version of the matched range
    expect(steps[0]).toEqual({ kind: 'exec', argv: [process.execPath, FAKE_UPGRADE, root, 'openssh-server', '1:9.2p1-2+deb12u3'] });
    expect(steps[1]).toMatchObject({ kind: 'config', path: path.join(root, 'etc/ssh/sshd_config') });
    const run = async (code: string) => {
      const mod = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as { default: (ctx: unknown) => Promise<void> };
      const log: string[] = [];
      await mod.default({ log: (m: string) => log.push(m) });
      return log;
    };
    const log = await run(countermeasureCode(steps, 5_000));
    expect(log).toHaveLength(2);
    expect(installedVersion(root, 'openssh-server')).toBe('1:9.2p1-2+deb12u3');
    expect(fs.readFileSync(path.join(root, 'etc/ssh/sshd_config'), 'utf8')).toBe('# sshd\nPermitRootLogin no\nPort 22\nLoginGraceTime 0\n');
    // a command that fails stops the run with its reason; the next step never runs
    const marker = path.join(d, 'never');
    await expect(run(countermeasureCode([{ kind: 'exec', argv: [process.execPath, '-e', 'process.exit(3)'] }, { kind: 'config', path: marker, set: { a: 'b' } }], 5_000))).rejects.toThrow(/failed/);
    expect(fs.existsSync(marker)).toBe(false);
    // hostile values stay data: a key with regex characters and a value with quotes
    await run(countermeasureCode([{ kind: 'config', path: marker, set: { 'a.b': "x'); process.exit(9); ('" } }], 5_000));
    expect(fs.readFileSync(marker, 'utf8')).toBe("a.b x'); process.exit(9); ('\n");
    // no version to go to: not automatic
    expect(() => resolveSteps({ ...finding, fixed: undefined } as unknown as Finding, [{ kind: 'upgrade', package: 'openssh' }], {})).toThrow(/no fixed version/);
  });

  it('checks the policy document', () => {
    expect(() => checkPolicyDocument({ policy: null, defaults: { upgradeCommand: [] }, hosts: {} })).toThrow(/upgradeCommand/);
    expect(() => checkPolicyDocument({ policy: null, defaults: { configRoot: 'relative' }, hosts: {} })).toThrow(/configRoot/);
    expect(() => checkPolicyDocument({ policy: null, defaults: {}, hosts: { 'bad host': {} } })).toThrow(/host ID/);
    expect(() => checkPolicyDocument({ policy: { roles: {}, hosts: { a: { role: 'missing' } } }, defaults: {}, hosts: {} })).toThrow(SecurityCenterError);
    expect(() => checkPolicyDocument({ policy: null, defaults: {}, hosts: {}, extra: 1 })).toThrow(/unknown key/);
  });
});

/** A notifier that keeps what it is given. */
class KeepNotifier implements Notifier {
  readonly kind = 'keep';
  readonly sent: SecurityNotification[] = [];
  /** Fail this many sends first (a mail server that is down). */
  failures = 0;
  async send(n: SecurityNotification): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      throw new SecurityCenterError('GS_ERR_SECURITY_NOTIFY_FAILED', 'smtp down');
    }
    this.sent.push(n);
  }
  async close(): Promise<void> {}
}

/** A center and agents all in memory: agents reach the center over memory pairs, the center reaches their dispatch agents through a MemoryAgentConnector. */
async function memoryFleet(hosts: { id: string; packages: FixturePackage[]; listen?: string[]; address?: string; files?: Record<string, string> }[], policy?: PolicyDocument['policy']) {
  const d = dir('fleet');
  const connector = new MemoryAgentConnector();
  const key = generateIdentityKey();
  const notifier = new KeepNotifier();
  const roots = Object.fromEntries(hosts.map((h) => [h.id, writeRoot(path.join(d, h.id), h.packages, h.listen ?? [])]));
  for (const h of hosts) {
    for (const [file, text] of Object.entries(h.files ?? {})) {
      fs.mkdirSync(path.dirname(path.join(roots[h.id]!, file)), { recursive: true });
      fs.writeFileSync(path.join(roots[h.id]!, file), text);
    }
  }
  const center = await SecurityCenter.open({
    key,
    connector,
    notifier,
    dispatch: { retries: 0, connectTimeoutMs: 2_000, waves: [1, 0.5] },
    countermeasureTimeoutMs: 5_000,
    policy: { policy: policy ?? null, defaults: {}, hosts: Object.fromEntries(hosts.map((h) => [h.id, { upgradeCommand: [process.execPath, FAKE_UPGRADE, roots[h.id]!, '{package}', '{version}'], configRoot: roots[h.id]! }])) },
  });
  closers.push(() => center.close());
  const link = memoryCenterLink(() => center);
  const agents: Record<string, { agent: SecurityAgent; identity: Identity; root: string; orders: number }> = {};
  let n = 0;
  for (const h of hosts) {
    const identity = createServerIdentity();
    const agent = await SecurityAgent.open({
      identity,
      centerKey: key.publicKey,
      stateDir: path.join(d, `${h.id}-state`),
      workDir: path.join(d, `${h.id}-work`),
      executor: new InlineExecutor(),
      syncState: false,
      host: h.id,
      center: link,
      // Files are not configured on the agent: the center's answer asks for those its policy needs.
      collect: collectFor(roots[h.id]!, [h.address ?? `10.0.0.${++n}`]),
      intervalMs: 600_000,
    });
    closers.push(() => agent.close());
    connector.register(agent.msid, (sock) => void agent.dispatch.serve(sock));
    const entry = { agent, identity, root: roots[h.id]!, orders: 0 };
    agent.dispatch.on('accepted', () => entry.orders++);
    agents[h.id] = entry;
    await agent.start({ pcid: `agent-${h.id}`, listen: false });
  }
  return { center, agents, notifier, roots };
}

const OSV = (id: string, pkg: string, fixed: string) =>
  JSON.stringify({ schema_version: '1.6.0', id, modified: '2026-11-20T10:00:00Z', aliases: [], related: [], affected: [{ package: { ecosystem: 'Debian:12', name: pkg }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }] }], references: [] });

describe('SecurityCenter over memory pieces', () => {
  it('acts only on the hosts the matching selected, and confirms by the next report', async () => {
    const { center, agents } = await memoryFleet([
      { id: 'a', packages: SSL_OLD },
      { id: 'b', packages: [{ name: 'openssl', version: '3.0.11-1~deb12u2' }] },
      { id: 'c', packages: [{ name: 'zlib1g', version: '1:1.2.13.dfsg-1' }] },
    ]);
    const result = await center.importAdvisories(parseOsv(OSV('T-1', 'openssl', '3.0.11-1~deb12u2')));
    expect(result.affected).toEqual([{ advisoryId: 'T-1', hosts: ['a'] }]);
    await until(async () => (await center.actions()).every((x) => x.state === 'confirmed'), 'confirmation');
    expect(await center.actions()).toHaveLength(1);
    expect((await center.actions())[0]).toMatchObject({ hostId: 'a', trigger: 'advisory', mode: 'automatic', state: 'confirmed' });
    expect([agents.a!.orders, agents.b!.orders, agents.c!.orders]).toEqual([1, 0, 0]);
    expect(installedVersion(agents.a!.root, 'openssl')).toBe('3.0.11-1~deb12u2');
    // the same advisory again changes nothing and dispatches nothing
    const again = await center.importAdvisories(parseOsv(OSV('T-1', 'openssl', '3.0.11-1~deb12u2')));
    expect(again.affected).toEqual([]);
    expect(agents.a!.orders).toBe(1);
  });

  it('trigger 1: a joining host is asked for the files its policy needs, gets the required settings pushed, and its next report confirms', async () => {
    const policy = { roles: { web: { settings: [{ path: '/etc/ssh/sshd_config', key: 'PermitRootLogin', value: 'no' }] } }, hosts: { a: { role: 'web' }, b: { role: 'web' } } };
    const { center, agents } = await memoryFleet(
      [
        { id: 'a', packages: [], files: { '/etc/ssh/sshd_config': 'Port 22\nPermitRootLogin yes\n' } },
        { id: 'b', packages: [], files: { '/etc/ssh/sshd_config': 'PermitRootLogin no\n' } },
      ],
      policy,
    );
    await until(async () => {
      const list = await center.actions();
      return list.length === 1 && list[0]!.state === 'confirmed';
    }, 'the setting confirmed');
    expect((await center.actions())[0]).toMatchObject({ hostId: 'a', trigger: 'join', mode: 'automatic' });
    expect((await center.actions())[0]!.findingKey).toMatch(/^setting \/etc\/ssh\/sshd_config permitrootlogin$/i);
    expect((await center.actions())[0]!.reason).toMatch(/PermitRootLogin/);
    expect(fs.readFileSync(path.join(agents.a!.root, 'etc/ssh/sshd_config'), 'utf8')).toBe('Port 22\nPermitRootLogin no\n');
    expect([agents.a!.orders, agents.b!.orders]).toEqual([1, 0]);
    expect(center.findings()).toEqual([]);
    // the agents report the file (with content) because the center asked
    expect((await center.config.latest('b'))!.files.map((f) => [f.path, f.content])).toEqual([['/etc/ssh/sshd_config', 'PermitRootLogin no\n']]);
  });

  it('a countermeasure that fails on the host is marked failed with the reason; a person is told for manual ones', async () => {
    const { center, agents, notifier, roots } = await memoryFleet([{ id: 'a', packages: [{ name: 'sudo', version: '1.9.13p3-1' }, ...SSL_OLD] }]);
    // upgrading a package the fake apt does not know fails (exit 100)
    await center.setPolicy({ ...center.policy, hosts: { a: { upgradeCommand: [process.execPath, FAKE_UPGRADE, roots.a!, 'no-such-package', '{version}'] } } });
    const cm = new Map([['T-2', [{ kind: 'manual' as const, instructions: 'call the vendor' }]]]);
    await center.importAdvisories([...parseOsv(OSV('T-1', 'openssl', '3.0.11-1~deb12u2')), ...parseOsv(OSV('T-2', 'sudo', '1.9.13p3-1+deb12u1'))], cm);
    await center.settled();
    const byAdv = Object.fromEntries((await center.actions()).map((x) => [x.advisoryId, x]));
    expect(byAdv['T-1']).toMatchObject({ state: 'failed', mode: 'automatic' });
    expect(byAdv['T-1']!.detail).toMatch(/code-failed/);
    expect(byAdv['T-2']).toMatchObject({ state: 'notified', mode: 'manual' });
    expect(notifier.sent).toHaveLength(1);
    expect(notifier.sent[0]).toMatchObject({ hostId: 'a', instructions: 'call the vendor' });
    expect(notifier.sent[0]!.details![0]).toMatch(/T-2/);
    expect(agents.a!.orders).toBe(1);
    // nothing is retried by a later report (the failure stays for a person to look at)
    await agents.a!.agent.reportNow();
    await center.settled();
    expect(agents.a!.orders).toBe(1);
    expect(notifier.sent).toHaveLength(1);
    // a person fixes both by hand: the next report confirms them
    fs.writeFileSync(path.join(roots.a!, 'var/lib/dpkg/status'), dpkgStatus([{ name: 'sudo', version: '1.9.13p3-1+deb12u1' }, { name: 'openssl', version: '3.0.11-1~deb12u2' }]));
    await agents.a!.agent.reportNow();
    await center.settled();
    expect((await center.actions()).map((x) => x.state)).toEqual(['confirmed', 'confirmed']);
    expect((await center.actions()).find((x) => x.advisoryId === 'T-1')!.detail).toMatch(/after: failed/);
  });

  it('a notifier that is down is tried again on the next report', async () => {
    const { center, agents, notifier } = await memoryFleet([{ id: 'a', packages: [{ name: 'sudo', version: '1.9.13p3-1' }] }]);
    notifier.failures = 1;
    await center.importAdvisories(parseOsv(OSV('T-2', 'sudo', '1.9.13p3-1+deb12u1')), new Map([['T-2', [{ kind: 'manual' as const, instructions: 'by hand' }]]]));
    expect(await center.actions()).toMatchObject([{ state: 'planned', mode: 'manual' }]);
    expect((await center.actions())[0]!.detail).toMatch(/smtp down/);
    expect(notifier.sent).toHaveLength(0);
    await agents.a!.agent.reportNow();
    await center.settled();
    expect(await center.actions()).toMatchObject([{ state: 'notified' }]);
    expect(notifier.sent).toHaveLength(1);
  });

  it('refuses reports for another host, forged and malformed reports, and changes nothing', async () => {
    const { center, agents } = await memoryFleet([{ id: 'a', packages: SSL_OLD }, { id: 'b', packages: SSL_OLD }]);
    const latestA = await center.config.latest('a');
    const b = agents.b!.agent;
    // b signs a correct report of its own host but names host "a"
    const identityB = createServerIdentity();
    const own = await reportOf(identityB, agents.b!.root, 1);
    const asA = signReportMessage({ host: 'a', pcid: 'agent-b', device: 'server' }, encodeConfigurationReport(own), identityB);
    expect(await rejectionCodeOf(center.receiveReport(asA))).toBe('GS_ERR_SECURITY_WRONG_HOST');
    // a report whose hostMsid is a's, signed by someone else
    const fakeA = { ...own, hostMsid: agents.a!.agent.msid };
    expect(await rejectionCodeOf(center.receiveReport(signReportMessage({ host: 'a', pcid: 'agent-a', device: 'server' }, encodeConfigurationReport(fakeA), identityB)))).toBe('GS_ERR_SECURITY_WRONG_HOST');
    // tampered after signing
    const good = signReportMessage({ host: 'z', pcid: 'agent-z', device: 'server' }, encodeConfigurationReport(own), identityB);
    expect(await rejectionCodeOf(center.receiveReport({ ...good, body: encodeConfigurationReport({ ...own, kernel: 'evil' }) }))).toBe('GS_ERR_SECURITY_MALFORMED_REPORT');
    // hostile content: a path trick, a version that is not one, wrong types
    const hostile: FullReport[] = [
      { ...own, files: [{ path: '/etc/../shadow', sha256: null, size: null, content: null, omitted: null }] } as unknown as FullReport,
      { ...own, packages: [{ ...own.packages[0]!, version: 'not a version!' }] },
      { ...own, seq: 'one' } as unknown as FullReport,
    ];
    const codes = [];
    for (const r of hostile) codes.push(await rejectionCodeOf(center.receiveReport(signReportMessage({ host: 'z', pcid: 'agent-z', device: 'server' }, Buffer.from(JSON.stringify(r)), identityB))));
    expect(codes).toEqual(['GS_ERR_SECURITY_UNSAFE_PATH', 'GS_ERR_SECURITY_BAD_VERSION', 'GS_ERR_SECURITY_MALFORMED_REPORT']);
    // nothing changed
    expect((await center.hosts()).map((h) => h.hostId)).toEqual(['a', 'b']);
    expect(await center.config.latest('a')).toEqual(latestA);
    expect(await center.config.getHost('z')).toBeUndefined();
    // the agent enrolled as b cannot report under another host name
    const bFull = (await center.config.latest('b'))!;
    expect(bFull.hostMsid).toBe(b.msid);
    const fromB = await reportOf(agents.b!.identity, agents.b!.root, 99);
    expect(await rejectionCodeOf(center.receiveReport(signReportMessage({ host: 'c', pcid: 'agent-b', device: 'server' }, encodeConfigurationReport(fromB), agents.b!.identity)))).toBe('GS_ERR_SECURITY_WRONG_HOST');
    expect(await center.config.getHost('c')).toBeUndefined();
  });

  it('with closed enrollment, only hosts enrolled beforehand may report, each only with its own key', async () => {
    const center = await SecurityCenter.open({ key: generateIdentityKey(), connector: new MemoryAgentConnector(), enrollment: 'closed' });
    closers.push(() => center.close());
    const root = writeRoot(path.join(dir('enrol'), 'h1'), SSL_OLD, []);
    const owner = createServerIdentity();
    const stranger = createServerIdentity();
    const info = { host: 'h1', pcid: 'agent-h1', device: 'server' as const };
    const from = async (identity: Identity) => signReportMessage(info, encodeConfigurationReport(await reportOf(identity, root, 1)), identity);
    // Not enrolled yet: refused, and nothing is stored.
    expect(await rejectionCodeOf(center.receiveReport(await from(owner)))).toBe('GS_ERR_SECURITY_WRONG_HOST');
    expect(await center.config.getHost('h1')).toBeUndefined();
    // Enrolled with the owner's MSID: the owner's report is taken, a stranger's for the same host is not.
    await center.enrollHost('h1', owner.msid, 'agent-h1');
    expect(await rejectionCodeOf(center.receiveReport(await from(stranger)))).toBe('GS_ERR_SECURITY_WRONG_HOST');
    expect((await center.receiveReport(await from(owner))).status).toBe('accepted');
    expect((await center.config.latest('h1'))?.hostMsid).toBe(owner.msid);
    // One agent, one host: the owner cannot be enrolled under a second name.
    expect(await rejectionCodeOf(center.enrollHost('h2', owner.msid, 'agent-h2'))).toBe('GS_ERR_SECURITY_WRONG_HOST');
  });

  it('sequences deltas: a gap asks for a full report, a replay is stale', async () => {
    const { center, agents } = await memoryFleet([{ id: 'a', packages: SSL_OLD }]);
    const identity = createServerIdentity();
    const first = await reportOf(identity, agents.a!.root, 1);
    const send = (r: unknown) => center.receiveReport(signReportMessage({ host: 'n', pcid: 'agent-n', device: 'server' }, Buffer.from(JSON.stringify(r)), identity));
    expect((await send(first)).status).toBe('accepted');
    const changed: FullReport = { ...first, seq: 3, kernel: '6.1.0-29-amd64' };
    const gap = { ...diffReports(first, changed), seq: 3 };
    expect(await send(gap)).toMatchObject({ status: 'need-full' });
    expect(await send(first)).toMatchObject({ status: 'stale', expectSeqAbove: 1 });
    const next = { ...diffReports(first, { ...changed, seq: 2 }), seq: 2 };
    expect(await send(next)).toMatchObject({ status: 'accepted', seq: 2 });
    expect((await center.config.latest('n'))!.kernel).toBe('6.1.0-29-amd64');
    expect((await center.config.previous('n'))!.kernel).toBe('6.1.0-28-amd64');
  });

  it('refuses malformed advisories before anything is stored', async () => {
    const { center } = await memoryFleet([{ id: 'a', packages: SSL_OLD }]);
    const r = await center.importAdvisoryFiles([path.join(FIXTURES, '..', 'osv', 'bad'), path.join(FIXTURES, 'DSA-9001-1.json')]);
    expect(r.rejected.length).toBeGreaterThan(0);
    for (const x of r.rejected) expect(x.error).toBeInstanceOf(SecurityCenterError);
    expect(r.affected.map((x) => x.advisoryId)).toEqual(['DSA-9001-1']);
    expect((await center.security.count()).advisories).toBe(1);
  });

  it('trigger 4: acts only on scanner findings the host itself confirms', async () => {
    const policy = { roles: { web: { services: [{ proto: 'tcp' as const, port: 443 }] } }, hosts: { a: { role: 'web' }, b: { role: 'web' } } };
    const { center, notifier } = await memoryFleet(
      [
        { id: 'a', packages: [], listen: ['0.0.0.0:443', '0.0.0.0:23'], address: '192.0.2.10' },
        { id: 'b', packages: [], listen: ['0.0.0.0:443'], address: '192.0.2.11' },
      ],
      policy,
    );
    await center.settled();
    // the join already found a's telnet listener (a policy finding; manual by default) and told a person
    const joinActions = await center.actions();
    expect(joinActions.map((x) => [x.hostId, x.trigger, x.findingKey])).toEqual([['a', 'join', 'service tcp/23 0.0.0.0']]);
    expect(notifier.sent).toHaveLength(1);
    const xml = (addr: string, ports: number[]) =>
      `<?xml version="1.0"?><nmaprun scanner="nmap" args="nmap -oX -" start="1700000000" version="7.93" xmloutputversion="1.05"><host><status state="up" reason="syn-ack"/><address addr="${addr}" addrtype="ipv4"/><ports>${ports
        .map((p) => `<port protocol="tcp" portid="${p}"><state state="open" reason="syn-ack" reason_ttl="64"/></port>`)
        .join('')}</ports></host></nmaprun>`;
    // b: 23 open per the scanner, but b does not report a listener there → not confirmed, no action
    const r = await center.importScan(xml('192.0.2.11', [443, 23]));
    expect(r.findings.map((f) => [f.port, f.status])).toEqual([
      [23, 'not-confirmed'],
      [443, 'confirmed'],
    ]);
    expect(r.actions).toEqual([]);
    // a: confirmed, and the finding already has its action → none again
    const r2 = await center.importScan(xml('192.0.2.10', [23]));
    expect(r2.findings[0]!.status).toBe('confirmed');
    expect(r2.actions).toEqual([]);
    // not nmap XML: refused, nothing changes
    expect(await rejectionCodeOf(center.importScan('<!DOCTYPE x [<!ENTITY a "b">]><nmaprun/>'))).toBe('GS_ERR_SECURITY_MALFORMED_ADVISORY');
    expect(await center.actions()).toHaveLength(1);
  });
});

describe('SqliteConfigurationStore', () => {
  it('keeps hosts, latest and previous reports, actions and the policy across reopening', async () => {
    const d = dir('sqlite');
    const file = path.join(d, 'config.db');
    const identity = createServerIdentity();
    const root = writeRoot(path.join(d, 'root'), SSL_OLD);
    const r1 = await reportOf(identity, root, 1);
    const r2 = { ...r1, seq: 2, kernel: 'k2' };
    let s = await SqliteConfigurationStore.open(file);
    await s.putHost({ hostId: 'a', msid: identity.msid, pcid: 'p', device: 'server', firstSeen: 1, lastSeen: 2, firewall: null });
    await s.putReport('a', r1);
    await s.putReport('a', r2);
    await s.setPolicy({ policy: null, defaults: {}, hosts: {} });
    const action = { id: 'act-1', hostId: 'a', msid: identity.msid, findingKey: 'k', advisoryId: null, trigger: 'join' as const, reason: 'r', steps: [], mode: 'manual' as const, state: 'notified' as const, detail: null, dispatchId: null, bundle: null, ranEndedAt: null, fixReportedAt: null, createdAt: 5, updatedAt: 5 };
    await s.putAction(action);
    await s.putAction({ ...action, state: 'failed' });
    await s.close();
    s = await SqliteConfigurationStore.open(file);
    expect((await s.hostByMsid(identity.msid))?.hostId).toBe('a');
    expect(await s.latest('a')).toEqual(r2);
    expect(await s.previous('a')).toEqual(r1);
    expect((await s.actions('a')).map((x) => x.state)).toEqual(['failed']);
    expect(await s.getPolicy()).toEqual({ policy: null, defaults: {}, hosts: {} });
    await s.close();
    // not a gatesock database: refused, untouched
    const other = path.join(d, 'other.db');
    const specifier = 'better-sqlite3';
    const Db = ((await import(specifier)) as { default: new (f: string) => { exec(sql: string): void; close(): void } }).default;
    const db = new Db(other);
    db.exec('CREATE TABLE t (x)');
    db.close();
    await expect(SqliteConfigurationStore.open(other)).rejects.toThrow(/no gatesock configuration schema/);
  });
});
