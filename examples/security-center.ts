/**
 * security-center: a new advisory being fixed, in one file. A gateway system
 * (controller + one gateway), a security center and three security agents
 * all run in this process on loopback.
 *
 * - The center is a relay server; each agent is a relay server too (its
 *   dispatch agent, for countermeasures) and a relay client of the center
 *   (it pushes its signed configuration report: full on joining, then
 *   changes). Nobody opens a port.
 * - Each agent collects from its own small fake root (os-release, a dpkg
 *   status file), so the example changes nothing on this machine; its
 *   "apt-get" is a script that edits that status file.
 * - An OSV advisory for openssl arrives: the center finds the affected hosts
 *   at once, signs a countermeasure bundle, dispatches it to those hosts
 *   only, verifies each signed run report, and confirms the fix when the
 *   hosts' next reports no longer show it. A manual entry goes to a person
 *   (here: printed).
 *
 * Run: npx tsx examples/security-center.ts
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
// Users write `from 'gatesock'` and `from 'gatesock/delivery'`.
// The example imports the source so it runs without a build.
import { createServerIdentity, generateIdentityKey } from '../src/index.js';
import { ProcessExecutor, RelayAgentConnector, SecurityAgent, SecurityCenter, parseCountermeasureDocument, parseOsv, type Notifier, type SecurityNotification } from '../src/delivery/index.js';
import { startLoopbackSystem } from './support/loopback-system.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gatesock-security-example-'));

// 1. The gateway system, as in relay-echo.ts.
const loopback = await startLoopbackSystem();
const relay = loopback.relay;

// 2. Three hosts' fake roots: web-1 and db-1 run an openssl with the hole, web-2 has the fix; db-1 also runs sudo.
const hosts = {
  'web-1': { openssl: '3.0.9-1' },
  'web-2': { openssl: '3.0.11-1~deb12u2' },
  'db-1': { openssl: '3.0.11-1~deb12u1', sudo: '1.9.13p3-1' },
} as const;
const upgrade = path.join(work, 'fake-apt.mjs');
fs.writeFileSync(
  upgrade,
  `import fs from 'node:fs';
const [status, pkg, version] = process.argv.slice(2);
const text = fs.readFileSync(status, 'utf8');
const next = text.split('\\n\\n').map((p) => (p.startsWith('Package: ' + pkg + '\\n') ? p.replace(/^Version: .*$/m, 'Version: ' + version) : p)).join('\\n\\n');
if (next === text) process.exit(100);
fs.writeFileSync(status, next);
`,
);
const roots: Record<string, string> = {};
for (const [name, pkgs] of Object.entries(hosts)) {
  const r = path.join(work, name, 'root');
  fs.mkdirSync(path.join(r, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(r, 'var/lib/dpkg'), { recursive: true });
  fs.mkdirSync(path.join(r, 'proc/sys/kernel'), { recursive: true });
  fs.writeFileSync(path.join(r, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n');
  fs.writeFileSync(path.join(r, 'proc/sys/kernel/osrelease'), '6.1.0-28-amd64\n');
  fs.writeFileSync(
    path.join(r, 'var/lib/dpkg/status'),
    Object.entries(pkgs).map(([p, v]) => `Package: ${p}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${v}\n`).join('\n'),
  );
  roots[name] = r;
}

// 3. The center: its dispatch key (agents pin the public half), a notifier
//    for what needs a person, the policy database, and per host the upgrade
//    command (default `apt-get install -y --only-upgrade PKG=VERSION`).
//    (CLI: `gatesock center run --controller … --root …`.)
const printNotifier: Notifier = {
  kind: 'print',
  async send(n: SecurityNotification) {
    console.log(`to a person    ${n.title}\n               ${n.instructions}`);
  },
  async close() {},
};
const key = generateIdentityKey();
const center = await SecurityCenter.open({
  key,
  connector: new RelayAgentConnector(relay),
  notifier: printNotifier,
  dispatch: { waves: [1, 0.5], retries: 1, backoffMs: 200 },
  policy: {
    policy: { roles: { server: { services: [{ proto: 'tcp', port: 22, from: ['10.0.0.0/8'] }] } }, hosts: {}, defaultRole: 'server' },
    defaults: {},
    hosts: Object.fromEntries(Object.keys(hosts).map((h) => [h, { upgradeCommand: [process.execPath, upgrade, path.join(roots[h]!, 'var/lib/dpkg/status'), '{package}', '{version}'] }])),
  },
});
center.on('action', (a) => console.log(`action         ${a.hostId.padEnd(6)} ${a.findingKey}: ${a.state}${a.state === 'failed' ? ` (${a.detail})` : ''}`));
const server = await center.listen({ ...relay, identity: createServerIdentity(), pcid: 'example-security-center' });
console.log(`center         ${server.pcid} ${server.msid.slice(0, 17)}…`);

// 4. The agents (trigger 1: each joins with its full report). Countermeasures
//    run in a separate loader process per dispatch; from source here, so through tsx.
//    (CLI: `gatesock center agent --center-key center.pub --host web-1 …`.)
const executor = new ProcessExecutor({ loaderPath: fileURLToPath(new URL('../src/delivery/dispatch/agent/loader-main.ts', import.meta.url)), execArgv: ['--import', 'tsx'] });
const agents: SecurityAgent[] = [];
let n = 0;
for (const name of Object.keys(hosts)) {
  const agent = await SecurityAgent.open({
    identity: createServerIdentity(),
    centerKey: key.publicKey,
    stateDir: path.join(work, name, 'state'),
    workDir: path.join(work, name, 'work'),
    executor,
    host: name,
    center: { pcid: 'example-security-center', relay, msid: server.msid },
    collect: { root: roots[name]!, rpm: false, addresses: [`10.0.0.${++n}`], services: { procRoot: path.join(roots[name]!, 'proc') } },
  });
  const answer = await agent.start({ ...relay, pcid: `example-sec-${name}` });
  console.log(`agent          ${name} joined: ${answer.status}`);
  agents.push(agent);
}

// 5. Trigger 3: a new advisory (OSV, as Debian publishes them) and our own
//    countermeasure entry for a second one that needs a person.
//    (CLI: `gatesock center import-advisories DSA-9001-1.json …`.)
const osv = (id: string, pkg: string, fixed: string) =>
  parseOsv(JSON.stringify({ id, modified: '2026-11-20T10:00:00Z', summary: `${pkg} - security update`, affected: [{ package: { ecosystem: 'Debian:12', name: pkg }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }] }] }));
const manual = parseCountermeasureDocument({ format: 'gatesock-countermeasures/1', countermeasures: { 'LOCAL-2026-0002': [{ kind: 'manual', instructions: 'sudo is pinned on db-1: upgrade it by hand.' }] } });
const result = await center.importAdvisories([...osv('DSA-9001-1', 'openssl', '3.0.11-1~deb12u2'), ...osv('LOCAL-2026-0002', 'sudo', '1.9.13p3-1+deb12u1')], manual);
for (const a of result.affected) console.log(`affected       ${a.advisoryId}: ${a.hosts.join(', ')}`);

// 6. Trigger 2: the agents report again after the run; the center confirms.
const deadline = Date.now() + 20_000;
const automatic = async () => (await center.actions()).filter((a) => a.mode === 'automatic');
while ((await automatic()).some((a) => a.state !== 'confirmed' && a.state !== 'failed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
for (const f of center.findings()) console.log(`still open     ${f.hostId}: ${f.reason}`);
const fixed = await automatic();
const ok = fixed.length === 2 && fixed.every((a) => a.state === 'confirmed');
console.log(ok ? 'fixed          every automatic countermeasure is confirmed by a report' : 'NOT fixed');
if (!ok) process.exitCode = 1;

// 7. Stop everything.
for (const a of agents) await a.close();
await center.close();
await loopback.close();
fs.rmSync(work, { recursive: true, force: true });
console.log('closed');
