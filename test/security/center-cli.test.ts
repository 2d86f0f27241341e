/**
 * `gatesock center …` in process (commander program with
 * registerCenterCommands): a center folder with one agent joined over an
 * in-process gateway system; import-advisories acts through the relay,
 * hosts/findings/actions read the folder, import-scan judges a scan, and
 * bad input fails with a clear error.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { centerFolder, openCenterFolder, registerCenterCommands } from '../../src/cli/center.js';
import { InlineExecutor } from '../../src/delivery/dispatch/index.js';
import { SecurityAgent } from '../../src/delivery/security/agent/index.js';
import { parseOsv } from '../../src/delivery/security/advisories/index.js';
import { SqliteSecurityStore } from '../../src/delivery/security/secdb/index.js';
import { certificateToPem, createServerIdentity, IdentityKey, loadOrCreateServerIdentity } from '../../src/session/index.js';
import { startSystem, type TestSystem } from '../relay/system.js';
import { FAKE_UPGRADE, FIXTURES, collectFor, installedVersion, tempDir, until, writeRoot } from './fixtures/center/harness.js';

let work: string;
let system: TestSystem;
let agent: SecurityAgent;
let agentRoot: string;
let flags: string[];
let dir: string;

/** Run one command line; its printed lines, or the error. */
async function cli(...args: string[]): Promise<{ out: string[]; notes: string[] }> {
  const out: string[] = [];
  const notes: string[] = [];
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerCenterCommands(program, { print: (l) => out.push(l), note: (l) => notes.push(l) });
  await program.parseAsync(['node', 'gatesock', ...args]);
  return { out, notes };
}

beforeAll(async () => {
  work = tempDir('cli');
  system = await startSystem({ gateways: 1 });
  const rootFile = path.join(work, 'root.pem');
  fs.writeFileSync(rootFile, certificateToPem(system.pki.root));
  dir = path.join(work, 'center');
  flags = ['--dir', dir, '--controller', system.controller.address, '--root', rootFile];
  agentRoot = writeRoot(path.join(work, 'agent-root'), [{ name: 'openssl', version: '3.0.9-1' }, { name: 'zlib1g', version: '1:1.2.13.dfsg-1', source: 'zlib' }], ['0.0.0.0:23']);
  const policyFile = path.join(work, 'policy.json');
  fs.writeFileSync(
    policyFile,
    JSON.stringify({
      policy: { roles: { web: { services: [{ proto: 'tcp', port: 443 }] } }, hosts: { 'web-1': { role: 'web' } } },
      defaults: {},
      hosts: { 'web-1': { upgradeCommand: [process.execPath, FAKE_UPGRADE, agentRoot, '{package}', '{version}'] } },
    }),
  );
  // The center online (as `center run` does), one agent joins, the center stops.
  const relay = { controller: system.controller.address, roots: [system.pki.root] };
  const center = await openCenterFolder({ dir, policy: policyFile }, relay, { print: () => undefined, note: () => undefined });
  const server = await center.listen({ ...relay, identity: await loadOrCreateServerIdentity(centerFolder(dir).identity), pcid: 'cli-sec-center' });
  const key = IdentityKey.fromPem(fs.readFileSync(centerFolder(dir).key, 'utf8'));
  agent = await SecurityAgent.open({
    identity: createServerIdentity(),
    centerKey: key.publicKey,
    stateDir: path.join(work, 'agent', 'state'),
    workDir: path.join(work, 'agent', 'work'),
    executor: new InlineExecutor(),
    syncState: false,
    host: 'web-1',
    center: { pcid: 'cli-sec-center', relay, msid: server.msid },
    collect: collectFor(agentRoot, ['192.0.2.20']),
  });
  expect((await agent.start({ ...relay, pcid: 'cli-sec-web-1' })).status).toBe('accepted');
  await center.close();
}, 60_000);

afterAll(async () => {
  await agent?.close();
  await system?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('gatesock center', () => {
  it('hosts and findings read the folder; every finding explains itself', async () => {
    const hosts = await cli('center', 'hosts', '--dir', dir);
    expect(hosts.out[0]).toMatch(/^host\s+msid\s+pcid/);
    expect(hosts.out[1]).toMatch(/^web-1\s+MSID-.*cli-sec-web-1\s+server\s+1\s/);
    const findings = await cli('center', 'findings', 'web-1', '--dir', dir);
    expect(findings.out).toHaveLength(1);
    expect(findings.out[0]).toMatch(/^web-1 {2}service-not-allowed {2}manual {2}.*23/);
    await expect(cli('center', 'findings', 'nope', '--dir', dir)).rejects.toThrow(/no host nope/);
    await expect(cli('center', 'hosts', '--dir', path.join(work, 'empty'))).rejects.toThrow(/no security center/);
  });

  it('enroll registers a host for one MSID; a second host for that MSID, or a bad device kind, is refused', async () => {
    const enrolDir = path.join(work, 'enrol-center');
    const msid = createServerIdentity().msid;
    const r = await cli('center', 'enroll', 'db-9', msid, 'agent-db-9', '--device', 'network-device', '--dir', enrolDir);
    // A new folder also makes the center key first (its public key is printed).
    expect(r.out.at(-1)).toBe(`enrolled db-9: ${msid} at agent-db-9 (network-device)`);
    const hosts = await cli('center', 'hosts', '--dir', enrolDir);
    expect(hosts.out[1]).toMatch(/^db-9\s+MSID-.*agent-db-9\s+network-device\s+-\s+-$/);
    await expect(cli('center', 'enroll', 'db-10', msid, 'agent-db-10', '--dir', enrolDir)).rejects.toThrow(/enrolled as host db-9/);
    await expect(cli('center', 'enroll', 'db-11', msid, 'agent-db-11', '--device', 'toaster', '--dir', enrolDir)).rejects.toThrow(/server or network-device/);
  });

  it('import-advisories checks every host and dispatches the fix through the relay', async () => {
    const r = await cli('center', 'import-advisories', ...flags, path.join(FIXTURES, 'DSA-9001-1.json'));
    expect(r.out[0]).toBe('stored: 1 added, 0 updated, 0 unchanged, 0 stale');
    expect(r.out[1]).toBe('DSA-9001-1: web-1');
    expect(r.out.slice(2).join('\n')).toMatch(/web-1\s+advisory\s+automatic\s+verified-ran\s+vulnerable DSA-9001-1 openssl/);
    expect(installedVersion(agentRoot, 'openssl')).toBe('3.0.11-1~deb12u2');
    // a bad file is refused with its reason; nothing from it is stored
    const bad = path.join(work, 'bad.json');
    fs.writeFileSync(bad, '{"id": 5}');
    const r2 = await cli('center', 'import-advisories', ...flags, bad);
    expect(r2.notes.join('\n')).toMatch(/refused .*bad\.json/);
    expect(process.exitCode).toBe(11);
    process.exitCode = 0;
    const actions = await cli('center', 'actions', '--dir', dir);
    expect(actions.out[0]).toMatch(/^action\s+host\s+trigger/);
    expect(actions.out.join('\n')).toMatch(/verified-ran|confirmed/);
  });

  it('center run goes online as a relay server, prints its PCID and MSID, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(FIXTURES, 'cli-main.ts'), 'center', 'run', ...flags, '--pcid', 'cli-sec-center', '--sync', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await until(() => /^hosts/m.test(out) || child.exitCode !== null, 'center run to print its lines', 30_000);
      expect(out, err).toMatch(/^pcid\s+cli-sec-center$/m);
      expect(out).toMatch(/^msid\s+MSID-[0-9A-F]{64}$/m);
      expect(out).toMatch(/^hosts\s+1, advisories 1$/m);
      // the agent reports to it now: a report accepted, and the action left verified-ran by the import is confirmed
      const answer = await agent.reportNow();
      expect(answer.status).toBe('accepted');
      await until(() => /action act-\w+ web-1 vulnerable DSA-9001-1 openssl: confirmed/.test(err), 'the confirmation in the log');
      expect(err).toMatch(/report: web-1, 1 findings/);
      // an advisory stored by another process (as `center import-advisories` does) reaches the running center and is fixed
      const db = await SqliteSecurityStore.open(centerFolder(dir).security);
      await db.putAdvisories(
        parseOsv(JSON.stringify({ id: 'T-ZLIB-1', modified: '2026-11-22T00:00:00Z', affected: [{ package: { ecosystem: 'Debian:12', name: 'zlib' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1:1.2.13.dfsg-1+deb12u1' }] }] }] })),
      );
      await db.close();
      await until(() => /advisory T-ZLIB-1 \(stored by another process\): web-1/.test(err), 'the running center to pick the advisory up', 20_000);
      await until(() => /action act-\w+ web-1 vulnerable T-ZLIB-1 zlib1g: confirmed/.test(err), 'the zlib fix confirmed', 20_000);
      expect(installedVersion(agentRoot, 'zlib1g')).toBe('1:1.2.13.dfsg-1+deb12u1');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 40_000);

  it('import-scan confirms against the reports', async () => {
    const xml = path.join(work, 'scan.xml');
    fs.writeFileSync(
      xml,
      '<?xml version="1.0"?><nmaprun scanner="nmap" args="nmap -oX -" start="1700000000" version="7.93" xmloutputversion="1.05"><host><status state="up" reason="syn-ack"/><address addr="192.0.2.20" addrtype="ipv4"/><ports><port protocol="tcp" portid="23"><state state="open" reason="syn-ack" reason_ttl="64"/></port><port protocol="tcp" portid="8080"><state state="open" reason="syn-ack" reason_ttl="64"/></port></ports></host></nmaprun>',
    );
    const r = await cli('center', 'import-scan', ...flags, xml);
    expect(r.out[0]).toMatch(/^address\s+port\s+status\s+host/);
    expect(r.out.slice(1)).toEqual([expect.stringMatching(/^192\.0\.2\.20\s+tcp\/23\s+confirmed\s+web-1$/), expect.stringMatching(/^192\.0\.2\.20\s+tcp\/8080\s+not-confirmed\s+web-1$/)]);
  });
});
