/**
 * The security center end to end on loopback (issue 8, "Tests"): an
 * in-process gateway system, a SecurityCenter listening as a relay server,
 * three SecurityAgents in this process (InlineExecutor) on fixture roots with
 * different package sets, each a relay server for dispatch and a relay
 * client for its reports. A new OSV advisory arrives: exactly the affected
 * hosts get the countermeasure (a signed bundle running the host's upgrade
 * command, here a script that edits the fixture dpkg status), and their
 * next reports confirm it; the host it does not affect is never touched. A
 * "manual" entry produces a mail to a local SMTP server; the rule set
 * generated for the network-device agent passes `nft -c -f` when nft runs.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InlineExecutor, RelayAgentConnector } from '../../src/delivery/dispatch/index.js';
import { SecurityAgent } from '../../src/delivery/security/agent/index.js';
import { SecurityCenter, type ActionRecord } from '../../src/delivery/security/center/index.js';
import { SmtpNotifier } from '../../src/delivery/security/notify/index.js';
import { createServerIdentity, generateIdentityKey } from '../../src/session/index.js';
import { startSystem, type TestSystem } from '../relay/system.js';
import { FAKE_UPGRADE, FIXTURES, collectFor, installedVersion, tempDir, until, writeRoot, type FixturePackage } from './fixtures/center/harness.js';

const OLD_SSL = '3.0.11-1~deb12u1';
const FIXED_SSL = '3.0.11-1~deb12u2';
const BASE: FixturePackage[] = [
  { name: 'base-files', version: '12.4+deb12u11' },
  { name: 'libc6', version: '2.36-9+deb12u14', source: 'glibc' },
];
/** Three hosts: two with a vulnerable openssl (one also with sudo), one already fixed. */
const HOSTS: { id: string; device: 'server' | 'network-device'; packages: FixturePackage[] }[] = [
  { id: 'web-1', device: 'server', packages: [...BASE, { name: 'openssl', version: '3.0.9-1' }, { name: 'libssl3', version: '3.0.9-1', source: 'openssl' }] },
  { id: 'web-2', device: 'network-device', packages: [...BASE, { name: 'openssl', version: FIXED_SSL }] },
  { id: 'db-1', device: 'server', packages: [...BASE, { name: 'openssl', version: OLD_SSL }, { name: 'sudo', version: '1.9.13p3-1' }] },
];

interface Mail { to: string[]; data: string }

let work: string;
let system: TestSystem;
let smtp: SMTPServer;
const mails: Mail[] = [];
let center: SecurityCenter;
const agents = new Map<string, { agent: SecurityAgent; root: string; accepted: number }>();

beforeAll(async () => {
  work = tempDir('e2e');
  system = await startSystem({ gateways: 1 });
  const relay = { controller: system.controller.address, roots: [system.pki.root] };
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(chunks).toString('utf8') });
        cb(null);
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const smtpPort = (smtp.server.address() as AddressInfo).port;

  const key = generateIdentityKey();
  const roots = Object.fromEntries(HOSTS.map((h) => [h.id, writeRoot(path.join(work, h.id, 'root'), h.packages)]));
  center = await SecurityCenter.open({
    key,
    connector: new RelayAgentConnector(relay),
    configStore: path.join(work, 'center', 'config.db'), // SQLite files
    securityStore: path.join(work, 'center', 'security.db'),
    notifier: new SmtpNotifier({ host: '127.0.0.1', port: smtpPort, from: 'center@example.org', to: ['ops@example.org'], timeoutMs: 5_000 }),
    dispatch: { retries: 1, backoffMs: 100, maxBackoffMs: 400, connectTimeoutMs: 5_000, waves: [1, 0.5] },
    countermeasureTimeoutMs: 10_000,
    policy: {
      policy: {
        roles: { web: { services: [{ proto: 'tcp', port: 443 }, { proto: 'tcp', port: 22, from: ['10.0.0.0/8'] }] }, db: { services: [{ proto: 'tcp', port: 5432, from: ['10.0.1.0/24'] }] } },
        hosts: { 'web-1': { role: 'web' }, 'web-2': { role: 'web' }, 'db-1': { role: 'db' } },
      },
      defaults: {},
      // Each host's "apt-get install --only-upgrade": the stand-in script on its own fixture root.
      hosts: Object.fromEntries(HOSTS.map((h) => [h.id, { upgradeCommand: [process.execPath, FAKE_UPGRADE, roots[h.id]!, '{package}', '{version}'] }])),
    },
  });
  const server = await center.listen({ ...relay, identity: createServerIdentity(), pcid: 'e2e-sec-center' });

  let n = 0;
  for (const h of HOSTS) {
    const dir = path.join(work, h.id);
    const agent = await SecurityAgent.open({
      identity: createServerIdentity(),
      centerKey: key.publicKey,
      stateDir: path.join(dir, 'state'),
      workDir: path.join(dir, 'work'),
      executor: new InlineExecutor(),
      syncState: false,
      host: h.id,
      device: h.device,
      center: { pcid: 'e2e-sec-center', relay, msid: server.msid },
      collect: collectFor(roots[h.id]!, [`10.0.0.${++n}`]),
      intervalMs: 600_000,
    });
    const entry = { agent, root: roots[h.id]!, accepted: 0 };
    agent.dispatch.on('accepted', () => entry.accepted++);
    agents.set(h.id, entry);
  }
  // Trigger 1: each host joins (its first, full report).
  await Promise.all([...agents.entries()].map(([id, a]) => a.agent.start({ ...relay, pcid: `e2e-sec-${id}` })));
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([...agents.values()].map((a) => a.agent.close()));
  await center?.close();
  await system?.close();
  await new Promise<void>((resolve) => (smtp ? smtp.close(() => resolve()) : resolve()));
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const byHost = (list: readonly ActionRecord[], host: string) => list.filter((a) => a.hostId === host);

describe('security center on loopback', () => {
  it('every host joined with its full report; the network device got its rule set', async () => {
    expect((await center.hosts()).map((h) => h.hostId)).toEqual(['db-1', 'web-1', 'web-2']);
    for (const h of await center.hosts()) {
      expect(h.msid).toBe(agents.get(h.hostId)!.agent.msid);
      expect(h.pcid).toBe(`e2e-sec-${h.hostId}`);
      expect((await center.config.latest(h.hostId))?.packages.map((p) => p.name)).toContain('openssl');
    }
    // No advisory yet, no policy breach (nothing listens): nothing to do.
    expect(center.findings()).toEqual([]);
    const rules = agents.get('web-2')!.agent.firewall;
    expect(rules).toContain('tcp dport 443 accept');
    expect((await center.config.getHost('web-2'))!.firewall).toBe(rules);
    expect(agents.get('web-1')!.agent.firewall).toBeUndefined(); // a server gets none in its answer
  });

  it('a new advisory: exactly the affected hosts get the countermeasure, and their next reports confirm it', async () => {
    const result = await center.importAdvisoryFiles([path.join(FIXTURES, 'DSA-9001-1.json'), path.join(FIXTURES, 'LOCAL-2026-0002.json'), path.join(FIXTURES, 'countermeasures.json')]);
    expect(result.rejected).toEqual([]);
    expect(result.affected).toEqual([
      { advisoryId: 'DSA-9001-1', hosts: ['db-1', 'web-1'] },
      { advisoryId: 'LOCAL-2026-0002', hosts: ['db-1'] },
    ]);
    // Each finding explains itself.
    const ssl = (await center.actions()).filter((a) => a.advisoryId === 'DSA-9001-1');
    expect(ssl.map((a) => a.hostId).sort()).toEqual(['db-1', 'web-1', 'web-1']);
    for (const a of ssl) {
      expect(a.mode).toBe('automatic');
      expect(a.reason).toMatch(/DSA-9001-1/);
      expect(a.reason).toMatch(/3\.0\.11-1~deb12u2/);
    }
    // web-1 has two binaries of the openssl source (openssl, libssl3); db-1 one.
    expect(byHost(ssl, 'web-1').map((a) => a.findingKey).sort()).toEqual(['vulnerable DSA-9001-1 libssl3', 'vulnerable DSA-9001-1 openssl']);
    expect(byHost(ssl, 'db-1').map((a) => a.findingKey)).toEqual(['vulnerable DSA-9001-1 openssl']);

    // Confirmed by the reports the agents send after the run.
    await until(async () => (await center.actions()).filter((a) => a.advisoryId === 'DSA-9001-1').every((a) => a.state === 'confirmed'), 'every openssl action confirmed');
    for (const a of (await center.actions()).filter((x) => x.advisoryId === 'DSA-9001-1')) {
      expect(a.dispatchId).not.toBeNull();
      expect(a.ranEndedAt).not.toBeNull();
    }
    expect(installedVersion(agents.get('web-1')!.root, 'openssl')).toBe(FIXED_SSL);
    expect(installedVersion(agents.get('web-1')!.root, 'libssl3')).toBe(FIXED_SSL);
    expect(installedVersion(agents.get('db-1')!.root, 'openssl')).toBe(FIXED_SSL);
    expect(center.findings('web-1')).toEqual([]);
    expect(center.findings('db-1').map((f) => f.kind === 'vulnerable' && f.advisoryId)).toEqual(['LOCAL-2026-0002']);

    // The unaffected host was never touched: no dispatch target, no order, no upgrade.
    const web2 = agents.get('web-2')!;
    expect(web2.accepted).toBe(0);
    expect(fs.existsSync(path.join(web2.root, 'upgrades.log'))).toBe(false);
    for (const a of ssl) expect(center.dispatcher.store.getTarget({ dispatchId: a.dispatchId!, run: 0, msid: web2.agent.msid })).toBeUndefined();
    // Each affected agent ran exactly one bundle (one per host per round), verified by the dispatch center.
    expect(agents.get('web-1')!.accepted).toBe(1);
    expect(agents.get('db-1')!.accepted).toBe(1);
    expect(fs.readFileSync(path.join(agents.get('web-1')!.root, 'upgrades.log'), 'utf8').trim().split('\n').sort()).toEqual([`libssl3=${FIXED_SSL}`, `openssl=${FIXED_SSL}`]);
  });

  it('the "manual" entry reached a person by e-mail, with its instructions', async () => {
    await until(() => mails.length > 0, 'a mail');
    expect(mails).toHaveLength(1);
    const m = mails[0]!;
    expect(m.to).toEqual(['ops@example.org']);
    const text = m.data.replace(/=\r\n/g, '').replace(/\r\n[ \t]+/g, ' ');
    expect(text).toMatch(/LOCAL-2026-0002/);
    expect(text).toMatch(/db-1/);
    expect(text).toMatch(/upgrade it by hand to 1\.9\.13p3-1\+deb12u1/);
    const manual = (await center.actions('db-1')).find((a) => a.advisoryId === 'LOCAL-2026-0002')!;
    expect(manual).toMatchObject({ mode: 'manual', state: 'notified' });
    // A later report does not notify again.
    await agents.get('db-1')!.agent.reportNow();
    await center.settled();
    expect(mails).toHaveLength(1);
  });

  const nft = (() => {
    try {
      execFileSync('nft', ['-c', '-f', '-'], { input: 'table inet gs_probe {\n}\n', stdio: ['pipe', 'ignore', 'ignore'] });
      return true;
    } catch {
      return false;
    }
  })();
  if (!nft) console.log('e2e-center: nft -c cannot run here (not installed or no privilege); the rule-set syntax check is skipped');
  it.skipIf(!nft)('the rule set generated from the policy passes nft -c -f', async () => {
    const rules = (await center.config.getHost('web-2'))!.firewall!;
    const file = path.join(work, 'web-2.nft');
    fs.writeFileSync(file, rules);
    execFileSync('nft', ['-c', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  });
});
