/**
 * `gatesock center run|import-advisories|import-scan|hosts|findings|actions|agent`:
 * the security center (issue 8) from the command line, a thin shell over
 * src/delivery/security.
 *
 * The center lives in a folder (`--dir`, default `./.gatesock/security-center`):
 * `center.key` (secret; signs countermeasure bundles) and `center.pub` (agents
 * pin it), `identity/` (the center's relay server identity: its MSID), the
 * configuration database `config.db`, the security database `security.db`,
 * the dispatch store `dispatch.db` (bundles in `dispatch.db.bundles/`) and
 * the evidence log `evidence.log`. `run` keeps the center online; the import
 * commands open the same folder, act (dispatching through the relay), and
 * exit; a running center picks up advisories stored by another process
 * within `--sync` seconds (and makes no second action for a finding that
 * already has one). With `--postgres URL` the configuration and security
 * databases are in that PostgreSQL database instead of the two files (the
 * keys, identity, dispatch store and evidence log stay in the folder).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { InlineExecutor, RelayAgentConnector, type AgentConnector, type RelayAgentConnectorOptions } from '../delivery/dispatch/index.js';
import { SecurityAgent } from '../delivery/security/agent/index.js';
import { SecurityCenter, checkPolicyDocument, type ActionRecord, type PolicyDocument } from '../delivery/security/center/index.js';
import { isPostgresUrl } from '../delivery/security/secdb/index.js';
import { SmtpNotifier, WebhookNotifier, type Notifier } from '../delivery/security/notify/index.js';
import type { Finding } from '../delivery/security/diagnosis/index.js';
import { ConfigError } from '../errors/index.js';
import { IdentityKey, loadOrCreateServerIdentity } from '../session/index.js';
import { collect, formatTable, intIn, readPublicKey, writeKeyPair, type Io } from './args.js';
import { checkReachable, kind, loadRoots, parseValue } from './config.js';
import { onShutdown } from './lifecycle.js';
import { ENDPOINT_DEFAULTS, ROOT_HINT } from './serve.js';

/** Defaults of the center commands, shown by `--help`. */
export const CENTER_CLI_DEFAULTS = Object.freeze({
  dir: './.gatesock/security-center',
  agentDir: './.gatesock/security-agent',
  pcid: 'security-center',
  intervalSeconds: 3600,
  syncSeconds: 5,
});

/** The files of a center folder. */
export function centerFolder(dir: string) {
  const d = path.resolve(dir);
  return {
    dir: d,
    key: path.join(d, 'center.key'),
    pub: path.join(d, 'center.pub'),
    identity: path.join(d, 'identity'),
    config: path.join(d, 'config.db'),
    security: path.join(d, 'security.db'),
    dispatch: path.join(d, 'dispatch.db'),
    log: path.join(d, 'evidence.log'),
  };
}

interface RelayFlags {
  controller: string;
  root: string;
  e2e: boolean;
}

interface NotifyFlags {
  smtp?: string;
  mailFrom?: string;
  mailTo: string[];
  webhook?: string;
}

interface CenterFlags extends RelayFlags, NotifyFlags {
  dir: string;
  policy?: string;
  postgres?: string;
  enrollment?: 'open' | 'closed';
}

/** `--device server|network-device`. */
function deviceKind(value: string): 'server' | 'network-device' {
  if (value !== 'server' && value !== 'network-device') throw new InvalidArgumentError('must be server or network-device');
  return value;
}

/** `--enrollment open|closed`. */
function enrollmentMode(value: string): 'open' | 'closed' {
  if (value !== 'open' && value !== 'closed') throw new InvalidArgumentError('must be open or closed');
  return value;
}

async function relayOptions(o: RelayFlags) {
  const controller = parseValue(kind.controller(), o.controller, '--controller');
  const roots = await loadRoots(o.root, ROOT_HINT);
  await checkReachable(controller, 'the controller');
  return { controller, roots, endToEnd: o.e2e };
}

function addRelayFlags(c: Command): Command {
  return c
    .option('--controller <host:port>', "the controller's address", ENDPOINT_DEFAULTS.controller)
    .option('--root <file>', "the gateway system's root certificate (PEM)", ENDPOINT_DEFAULTS.root)
    .option('--no-e2e', 'turn the end-to-end layer off');
}

function addCenterFlags(c: Command): Command {
  return c
    .option('--dir <dir>', 'the center folder: keys, identity, databases, evidence log', CENTER_CLI_DEFAULTS.dir)
    .option('--policy <file>', 'store this policy document (JSON: { policy, defaults, hosts }) first')
    .option('--postgres <url>', 'keep the configuration and security databases in this PostgreSQL database (postgres://user@host:5432/db) instead of config.db and security.db')
    .option('--smtp <host:port>', 'e-mail findings that need a person through this SMTP server')
    .option('--mail-from <address>', 'sender of those e-mails')
    .option('--mail-to <address>', 'recipient; repeatable', collect, [])
    .option('--webhook <url>', 'POST findings that need a person to this URL (gatesock-notification-v1)');
}

function notifierOf(o: NotifyFlags): Notifier | undefined {
  if (o.smtp !== undefined) {
    const m = /^(.+):(\d{1,5})$/.exec(o.smtp);
    if (!m) throw new ConfigError('GS_ERR_INVALID_OPTION', '--smtp must be host:port');
    if (o.mailFrom === undefined || o.mailTo.length === 0) throw new ConfigError('GS_ERR_INVALID_OPTION', '--smtp needs --mail-from and at least one --mail-to');
    return new SmtpNotifier({ host: m[1]!, port: Number(m[2]), from: o.mailFrom, to: o.mailTo });
  }
  if (o.webhook !== undefined) return new WebhookNotifier({ url: o.webhook });
  return undefined;
}

function readPolicy(file: string): PolicyDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `--policy ${file}: ${(err as Error).message}`);
  }
  return checkPolicyDocument(doc);
}

/** The center key, made on first use. */
function centerKey(dir: string, io: Io): IdentityKey {
  const f = centerFolder(dir);
  if (!fs.existsSync(f.key)) {
    writeKeyPair({ out: f.dir, name: 'center' }, 'agents pinning the old key would refuse every countermeasure', io);
    io.note(`made the center key ${f.key}; agents pin ${f.pub} (--center-key)`);
  }
  return IdentityKey.fromPem(fs.readFileSync(f.key, 'utf8'));
}

/** Open the center on its folder. Without relay flags it cannot reach agents (read-only commands). */
export async function openCenterFolder(o: { dir: string; policy?: string; postgres?: string; enrollment?: 'open' | 'closed' } & Partial<NotifyFlags>, relay: RelayAgentConnectorOptions | undefined, io: Io): Promise<SecurityCenter> {
  if (o.postgres !== undefined && !isPostgresUrl(o.postgres)) throw new ConfigError('GS_ERR_INVALID_OPTION', '--postgres must be a postgres:// or postgresql:// connection string');
  const f = centerFolder(o.dir);
  fs.mkdirSync(f.dir, { recursive: true });
  const key = centerKey(o.dir, io);
  const connector: AgentConnector = relay ? new RelayAgentConnector(relay) : { connect: () => Promise.reject(new ConfigError('GS_ERR_INVALID_OPTION', 'this command does not reach agents')) };
  const notifier = notifierOf({ mailTo: [], ...o });
  return SecurityCenter.open({
    key,
    connector,
    configStore: o.postgres ?? f.config,
    securityStore: o.postgres ?? f.security,
    dispatchStore: f.dispatch,
    dispatchLog: f.log,
    ...(notifier ? { notifier } : {}),
    ...(o.policy !== undefined ? { policy: readPolicy(o.policy) } : {}),
    ...(o.enrollment !== undefined ? { enrollment: o.enrollment } : {}),
  });
}

const short = (s: string, n = 17): string => (s.length > n ? `${s.slice(0, n)}…` : s);

/** One row per action. */
export function actionTable(actions: readonly ActionRecord[]): string[] {
  const rows = [['action', 'host', 'trigger', 'mode', 'state', 'finding', 'detail']];
  for (const a of actions) rows.push([a.id, a.hostId, a.trigger, a.mode, a.state, a.findingKey, a.detail ?? '-']);
  return formatTable(rows);
}

/** One line per finding: host, kind, and its own explanation. */
export function findingLines(findings: readonly Finding[]): string[] {
  return findings.map((f) => `${f.hostId}  ${f.kind}  ${f.automatic ? 'automatic' : 'manual'}  ${f.reason}`);
}

async function runCenter(o: CenterFlags & { pcid: string; sync: number }, io: Io): Promise<void> {
  const relay = await relayOptions(o);
  const center = await openCenterFolder(o, relay, io);
  const f = centerFolder(o.dir);
  const identity = await loadOrCreateServerIdentity(f.identity);
  center.on('joined', (h, d) => io.note(`joined: ${h.hostId} (${short(h.msid)}) with ${d.findings.length} findings`));
  center.on('report', (h, d) => io.note(`report: ${h.hostId}, ${d.findings.length} findings (${d.added.length} new, ${d.resolved.length} resolved)`));
  center.on('refused', (r) => io.note(`refused a report${r.host ? ` for ${r.host}` : ''}: ${r.code}: ${r.message}`));
  center.on('action', (a) => io.note(`action ${a.id} ${a.hostId} ${a.findingKey}: ${a.state}${a.detail ? ` (${a.detail})` : ''}`));
  center.on('error', (e) => io.note(`warning: ${e.message}`));
  const server = await center.listen({ ...relay, identity, pcid: o.pcid });
  // Advisories imported by `center import-advisories` (another process) reach this center within --sync seconds.
  let syncing = false;
  const timer = setInterval(() => {
    if (syncing) return;
    syncing = true;
    center
      .syncAdvisories()
      .then((r) => {
        for (const a of r.affected) io.note(`advisory ${a.advisoryId} (stored by another process): ${a.hosts.length === 0 ? 'no host affected' : a.hosts.join(', ')}`);
      })
      .catch((e: unknown) => io.note(`warning: advisory sync: ${(e as Error).message}`))
      .finally(() => (syncing = false));
  }, o.sync * 1000);
  onShutdown(async () => {
    clearInterval(timer);
    await center.close();
  });
  io.print(`pcid     ${server.pcid}`);
  io.print(`msid     ${server.msid}`);
  io.print(`key      ${f.pub} (agents pin it: --center-key)`);
  io.print(`hosts    ${(await center.hosts()).length}, advisories ${(await center.security.count()).advisories}`);
}

async function runImportAdvisories(files: string[], o: CenterFlags, io: Io): Promise<void> {
  const center = await openCenterFolder(o, await relayOptions(o), io);
  try {
    const r = await center.importAdvisoryFiles(files);
    for (const x of r.rejected) io.note(`refused ${x.file}: ${x.error.message}`);
    io.print(`stored: ${r.stored.added.length} added, ${r.stored.updated.length} updated, ${r.stored.unchanged.length} unchanged, ${r.stored.stale.length} stale`);
    for (const a of r.affected) io.print(`${a.advisoryId}: ${a.hosts.length === 0 ? 'no host affected' : a.hosts.join(', ')}`);
    if (r.actions.length > 0) for (const line of actionTable(r.actions)) io.print(line);
    if (r.rejected.length > 0) process.exitCode = 11;
  } finally {
    await center.close();
  }
}

async function runImportScan(file: string, o: CenterFlags, io: Io): Promise<void> {
  const center = await openCenterFolder(o, await relayOptions(o), io);
  try {
    const r = await center.importScan(fs.readFileSync(file));
    const rows = [['address', 'port', 'status', 'host']];
    for (const s of r.findings) rows.push([s.address, `${s.protocol}/${s.port}`, s.status, s.hostMsid ? ((await center.config.hostByMsid(s.hostMsid))?.hostId ?? short(s.hostMsid)) : '-']);
    for (const line of formatTable(rows)) io.print(line);
    if (r.actions.length > 0) for (const line of actionTable(r.actions)) io.print(line);
  } finally {
    await center.close();
  }
}

async function readOnly(o: { dir: string; postgres?: string }, io: Io, fn: (c: SecurityCenter) => void | Promise<void>): Promise<void> {
  if (o.postgres === undefined && !fs.existsSync(centerFolder(o.dir).config)) throw new ConfigError('GS_ERR_INVALID_OPTION', `no security center in ${o.dir}; start one with \`gatesock center run --dir ${o.dir}\``);
  const center = await openCenterFolder(o, undefined, io);
  try {
    await fn(center);
  } finally {
    await center.close();
  }
}

interface AgentFlags extends RelayFlags {
  dir: string;
  centerKey: string;
  center: string;
  centerMsid?: string;
  host: string;
  pcid?: string;
  device: string;
  collectRoot?: string;
  file: string[];
  interval: number;
  inline?: boolean;
}

async function runAgent(o: AgentFlags, io: Io): Promise<void> {
  if (o.device !== 'server' && o.device !== 'network-device') throw new ConfigError('GS_ERR_INVALID_OPTION', '--device must be server or network-device');
  const relay = await relayOptions(o);
  const dir = path.resolve(o.dir);
  const identity = await loadOrCreateServerIdentity(path.join(dir, 'identity'));
  const agent = await SecurityAgent.open({
    identity,
    centerKey: readPublicKey(o.centerKey, '--center-key'),
    stateDir: path.join(dir, 'state'),
    workDir: path.join(dir, 'work'),
    ...(o.inline ? { executor: new InlineExecutor() } : {}),
    host: o.host,
    device: o.device,
    center: { pcid: o.center, relay, ...(o.centerMsid !== undefined ? { msid: o.centerMsid } : {}) },
    collect: { ...(o.collectRoot !== undefined ? { root: o.collectRoot } : {}), ...(o.file.length > 0 ? { files: { paths: o.file, content: true } } : {}) },
    intervalMs: o.interval * 1000,
  });
  agent.on('sent', (r, a) => io.note(`report ${r.kind} ${r.seq}: ${a.status}`));
  agent.on('refused', (r) => io.note(`refused by the center: ${r.code}: ${r.message}`));
  agent.on('firewall', (rules) => io.note(`rule set from the center: ${rules.split('\n').length} lines`));
  agent.on('ran', (r) => io.note(`countermeasure ${r.fields.dispatchId}: ${r.fields.outcome}`));
  agent.on('error', (e) => io.note(`warning: ${e.message}`));
  onShutdown(async () => {
    await agent.close();
  });
  const answer = await agent.start({ ...relay, ...(o.pcid !== undefined ? { pcid: o.pcid } : {}) });
  io.print(`host     ${o.host}`);
  io.print(`pcid     ${agent.pcid}`);
  io.print(`msid     ${agent.msid}`);
  io.print(`center   ${o.center}: first report ${answer.status}`);
}

/** Register `gatesock center …`. */
export function registerCenterCommands(program: Command, io: Io): void {
  const center = program.command('center').description('the security center: find vulnerable hosts and fix them through verifiable dispatch (issue 8)');

  addCenterFlags(addRelayFlags(center.command('run').description('run the center as a relay server: agents push their reports to its PCID; prints its PCID and MSID')))
    .option('--pcid <name>', 'ask for this PCID', CENTER_CLI_DEFAULTS.pcid)
    .option('--sync <seconds>', 'look for advisories imported by other processes this often', intIn('--sync', 1, 86_400), CENTER_CLI_DEFAULTS.syncSeconds)
    .option('--enrollment <mode>', 'open: the first agent to report under a host name owns it; closed: only hosts registered with `center enroll` may report', enrollmentMode, 'open')
    .action(async (o: CenterFlags & { pcid: string; sync: number }) => runCenter(o, io));

  addCenterFlags(addRelayFlags(center.command('import-advisories').description('import OSV JSON and countermeasure files (folders: every *.json), check every host at once, act on the affected ones')))
    .argument('<files...>', 'OSV records (one or a list per file) and gatesock-countermeasures/1 files')
    .action(async (files: string[], o: CenterFlags) => runImportAdvisories(files, o, io));

  addCenterFlags(addRelayFlags(center.command('import-scan').description("import a scanner's findings (nmap -oX), confirm each against the host's own report, act on the confirmed ones")))
    .argument('<file>', 'nmap XML output')
    .action(async (file: string, o: CenterFlags) => runImportScan(file, o, io));

  center
    .command('enroll')
    .description('register a host before it reports: only the agent with this MSID may report under this host ID (required with `run --enrollment closed`)')
    .argument('<host>', 'the host ID, as the policy names it')
    .argument('<msid>', "the agent's MSID (what `gatesock center agent` prints)")
    .argument('<pcid>', "the PCID of the agent's dispatch server")
    .option('--device <kind>', 'server or network-device', deviceKind, 'server')
    .option('--dir <dir>', 'the center folder', CENTER_CLI_DEFAULTS.dir)
    .option('--postgres <url>', 'the center keeps its databases in this PostgreSQL database')
    .action(async (host: string, msid: string, pcid: string, o: { device: 'server' | 'network-device'; dir: string; postgres?: string }) => {
      const c = await openCenterFolder(o, undefined, io);
      try {
        const h = await c.enrollHost(host, msid, pcid, o.device);
        io.print(`enrolled ${h.hostId}: ${h.msid} at ${h.pcid} (${h.device})`);
      } finally {
        await c.close();
      }
    });

  center
    .command('hosts')
    .description('list the hosts: ID, MSID, PCID, kind, last report')
    .option('--dir <dir>', 'the center folder', CENTER_CLI_DEFAULTS.dir)
    .option('--postgres <url>', 'the center keeps its databases in this PostgreSQL database')
    .action(async (o: { dir: string; postgres?: string }) =>
      readOnly(o, io, async (c) => {
        const rows = [['host', 'msid', 'pcid', 'device', 'seq', 'last report']];
        for (const h of await c.hosts()) rows.push([h.hostId, short(h.msid), h.pcid, h.device, String((await c.config.latest(h.hostId))?.seq ?? '-'), h.lastSeen ? new Date(h.lastSeen).toISOString() : '-']);
        for (const line of formatTable(rows)) io.print(line);
      }),
    );

  center
    .command('findings')
    .description("list current findings (of one host), each with its explanation")
    .argument('[host]', 'only this host')
    .option('--dir <dir>', 'the center folder', CENTER_CLI_DEFAULTS.dir)
    .option('--postgres <url>', 'the center keeps its databases in this PostgreSQL database')
    .action(async (host: string | undefined, o: { dir: string; postgres?: string }) =>
      readOnly(o, io, async (c) => {
        if (host !== undefined && (await c.config.getHost(host)) === undefined) throw new ConfigError('GS_ERR_INVALID_OPTION', `no host ${host} at this center`);
        const lines = findingLines(c.findings(host));
        if (lines.length === 0) io.print('no findings');
        for (const l of lines) io.print(l);
      }),
    );

  center
    .command('actions')
    .description('list countermeasure actions and their state (planned, dispatched, verified-ran, confirmed, notified, failed)')
    .argument('[host]', 'only this host')
    .option('--dir <dir>', 'the center folder', CENTER_CLI_DEFAULTS.dir)
    .option('--postgres <url>', 'the center keeps its databases in this PostgreSQL database')
    .action(async (host: string | undefined, o: { dir: string; postgres?: string }) =>
      readOnly(o, io, async (c) => {
        const list = await c.actions(host);
        if (list.length === 0) io.print('no actions');
        else for (const line of actionTable(list)) io.print(line);
      }),
    );

  addRelayFlags(center.command('agent').description("run a security agent: a dispatch agent for countermeasures (relay server) that reports this host's configuration to the center (relay client)"))
    .requiredOption('--center-key <key>', "the center's public key: ed25519:… or a file (center.pub)")
    .requiredOption('--host <id>', 'this host ID, as the policy names it')
    .option('--center <pcid>', "the center's PCID", CENTER_CLI_DEFAULTS.pcid)
    .option('--center-msid <msid>', "the center's MSID (checked end to end)")
    .option('--pcid <name>', "ask for this PCID for the agent's dispatch server")
    .option('--device <kind>', 'server or network-device', 'server')
    .option('--dir <dir>', 'agent folder: identity/, state/, work/', CENTER_CLI_DEFAULTS.agentDir)
    .option('--collect-root <dir>', 'collect from this root instead of / (a chroot or image)')
    .option('--file <path>', 'a configuration file to report (hash and content); repeatable', collect, [])
    .option('--interval <seconds>', 'report period', intIn('--interval', 1, 86_400), CENTER_CLI_DEFAULTS.intervalSeconds)
    .option('--inline', 'run countermeasures inside the agent process (no loader process; for trials)')
    .action(async (o: AgentFlags) => runAgent(o, io));
}
