/**
 * `gatesock agent` and `gatesock dispatch keygen|bundle|send|resume|rerun|status|verify-log`:
 * verifiable dispatch from the command line, a thin shell over
 * `gatesock/delivery` (docs/dispatch.md).
 *
 * The center lives in a folder (`--center`, default `./.gatesock/center`):
 * `center.key` (secret) and `center.pub`, the store `center.db` with its
 * bundles in `center.db.bundles/`, and the evidence log `evidence.log`. A
 * dispatch runs inside the `send` command's process; its state is in the
 * store, so an interrupted one continues with `resume`.
 *
 * Fleet file (`--agents FILE`): one agent per line, `MSID PCID` (what
 * `gatesock agent` prints when it starts); `#` starts a comment.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import {
  DISPATCH_DEFAULTS,
  DispatchAgent,
  DispatchCenter,
  RelayAgentConnector,
  SqliteDispatchStore,
  centerKeyId,
  isTargetSuccess,
  formatLogHead,
  parseLogHead,
  verifyEvidenceLog,
  type AgentRef,
  type DispatchRun,
  type DispatchSummary,
  type LogHead,
  type TargetResult,
} from '../delivery/index.js';
import { ConfigError } from '../errors/index.js';
import { IdentityKey, isMsid, loadOrCreateServerIdentity } from '../session/index.js';
import { collect, formatTable, fraction, intIn, readPublicKey, writeKeyPair, type Io } from './args.js';
import { checkReachable, kind, loadRoots, parseValue } from './config.js';
import { EXIT } from './errors.js';
import { onShutdown } from './lifecycle.js';
import { ENDPOINT_DEFAULTS, ROOT_HINT } from './serve.js';

/** Defaults of the dispatch commands, shown by `--help`. */
export const DISPATCH_CLI_DEFAULTS = Object.freeze({
  center: './.gatesock/center',
  agentDir: './.gatesock/agent',
  ttlDays: 30,
  timeoutSeconds: 60,
});

/** The files of a center folder. */
function centerFiles(dir: string) {
  const d = path.resolve(dir);
  return { dir: d, key: path.join(d, 'center.key'), pub: path.join(d, 'center.pub'), db: path.join(d, 'center.db'), log: path.join(d, 'evidence.log') };
}

function loadCenterKey(dir: string): IdentityKey {
  const f = centerFiles(dir);
  let text: string;
  try {
    text = fs.readFileSync(f.key, 'utf8');
  } catch {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `no center key at ${f.key}; make one with \`gatesock dispatch keygen --center ${dir}\``);
  }
  return IdentityKey.fromPem(text);
}

/** Relay flags shared by `agent` and the commands that reach agents. */
interface RelayFlags {
  controller: string;
  root: string;
  e2e: boolean;
  proxy?: string;
}

async function relayOptions(o: RelayFlags) {
  const controller = parseValue(kind.controller(), o.controller, '--controller');
  const roots = await loadRoots(o.root, ROOT_HINT);
  const proxy = o.proxy === undefined ? undefined : parseValue(kind.proxy(), o.proxy, '--proxy');
  if (!proxy) await checkReachable(controller, 'the controller');
  return { controller, roots, endToEnd: o.e2e, ...(proxy ? { link: { proxy } } : {}) };
}

function addRelayFlags(command: Command): Command {
  return command
    .option('--controller <host:port>', "the controller's address", ENDPOINT_DEFAULTS.controller)
    .option('--root <file>', "the gateway system's root certificate (PEM)", ENDPOINT_DEFAULTS.root)
    .option('--no-e2e', 'turn the end-to-end layer off (the gateways can then read orders and reports)')
    .option('--proxy <[user:password@]host:port>', 'reach the controller and gateways through this HTTP CONNECT proxy');
}

/** Parse a fleet file: `MSID PCID` per line. */
export function parseFleet(text: string, file: string): AgentRef[] {
  const agents: AgentRef[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const m = /^(\S+)\s+(.+)$/.exec(line);
    if (!m || !isMsid(m[1]!)) throw new ConfigError('GS_ERR_INVALID_OPTION', `${file}:${i + 1}: expected "MSID PCID", got "${line.slice(0, 80)}"`);
    const msid = m[1]!;
    if (seen.has(msid.toLowerCase())) throw new ConfigError('GS_ERR_INVALID_OPTION', `${file}:${i + 1}: ${msid} is listed twice`);
    seen.add(msid.toLowerCase());
    agents.push({ msid, pcid: m[2]!.trim() });
  });
  if (agents.length === 0) throw new ConfigError('GS_ERR_INVALID_OPTION', `${file}: no agents listed`);
  return agents;
}

/** Waves flag: `1,0.1` → [1, 0.1]. */
function parseWaves(text: string): number[] {
  const waves = text.split(',').map(Number);
  if (waves.length === 0 || waves.some((w) => !(w > 0))) throw new ConfigError('GS_ERR_INVALID_OPTION', '--waves must be positive counts or fractions, e.g. 1,0.1');
  return waves;
}

const shortMsid = (msid: string): string => (msid.length > 17 ? `${msid.slice(0, 17)}…` : msid);

/** The final table: one row per agent. */
export function targetTable(targets: readonly TargetResult[]): string[] {
  const rows = [['pcid', 'msid', 'wave', 'state', 'outcome', 'exit', 'reason']];
  for (const t of targets) {
    rows.push([t.pcid, shortMsid(t.msid), String(t.wave), t.state, t.outcome ?? '-', t.exitCode === null ? (t.signal ?? '-') : String(t.exitCode), t.reason ?? '-']);
  }
  return formatTable(rows);
}

/** A center over the folder's store and log, reaching agents through the relay. */
async function openCenter(dir: string, relay: RelayFlags | undefined): Promise<DispatchCenter> {
  const f = centerFiles(dir);
  const key = loadCenterKey(dir);
  const connector = relay
    ? new RelayAgentConnector(await relayOptions(relay))
    : { connect: () => Promise.reject(new ConfigError('GS_ERR_INVALID_OPTION', 'this command does not reach agents')) };
  return DispatchCenter.open({ key, store: f.db, connector, logPath: f.log });
}

/** Follow runs to their end with a progress bar; print the tables; set the exit status. */
async function follow(runs: readonly DispatchRun[], progress: boolean | undefined, io: Io): Promise<void> {
  const showBar = progress ?? process.stderr.isTTY === true;
  const bar = showBar
    ? new SingleBar({ format: '{bar} {value}/{total} agents | verified {verified}', stream: process.stderr, hideCursor: true, barsize: 30, noTTYOutput: true, notTTYSchedule: 1000 })
    : undefined;
  let total = 0;
  const done = new Map<DispatchRun, { done: number; verified: number }>();
  for (const run of runs) {
    run.on('progress', (p) => {
      done.set(run, { done: p.done, verified: p.verified });
      total = Math.max(total, p.total);
      const sum = [...done.values()].reduce((a, b) => ({ done: a.done + b.done, verified: a.verified + b.verified }), { done: 0, verified: 0 });
      bar?.setTotal(total);
      bar?.update(sum.done, { verified: sum.verified });
    });
    run.on('wave', (w) => io.note(`wave ${w.index + 1}: ${w.size - w.failures}/${w.size} ran and exited 0${w.stopped ? ' — failures over the threshold; the rest is skipped' : ''}`));
    run.on('failure', (f) => io.note(`failed verification from ${shortMsid(f.msid)}: ${f.reason}: ${f.message}`));
  }
  bar?.start(1, 0, { verified: 0 });
  let summaries: DispatchSummary[];
  try {
    summaries = await Promise.all(runs.map((r) => r.done));
  } finally {
    bar?.stop();
  }
  let failed = 0;
  for (const s of summaries) {
    io.print(`dispatch ${s.dispatchId} run ${s.run}: ${s.state}`);
    for (const line of targetTable(s.targets)) io.print(line);
    // Verified means the report is authentic; success also needs the run itself to have gone well.
    const verified = s.counts.verified ?? 0;
    const succeeded = s.targets.filter(isTargetSuccess).length;
    io.print(`${succeeded}/${s.total} agents ran it and exited 0; ${verified}/${s.total} reports verified`);
    if (succeeded !== s.total) failed++;
  }
  if (failed > 0) process.exitCode = EXIT.dispatch;
}

// ---------------------------------------------------------------- commands

interface BundleFlags {
  center: string;
  name: string;
  bundleVersion: number;
  code: string;
  target?: string;
  targetPath?: string;
  arg: string[];
  ttlDays: number;
  timeout: number;
  out?: string;
}

async function runBundle(o: BundleFlags, io: Io): Promise<void> {
  if ((o.target === undefined) !== (o.targetPath === undefined) && o.target !== undefined) {
    // --target without --target-path: use the file's own name.
    o.targetPath = path.basename(o.target);
  }
  const center = await openCenter(o.center, undefined);
  try {
    const bundle = await center.createBundle({
      name: o.name,
      version: o.bundleVersion,
      code: fs.readFileSync(o.code),
      ...(o.target !== undefined ? { target: { bytes: fs.readFileSync(o.target), path: o.targetPath!, args: o.arg } } : {}),
      ttlMs: o.ttlDays * 86_400_000,
      timeoutMs: o.timeout * 1000,
    });
    if (o.out) fs.writeFileSync(o.out, bundle.bytes);
    io.print(`bundle   ${bundle.digest}`);
    io.print(`name     ${bundle.metadata.name} version ${bundle.metadata.version}, expires ${new Date(bundle.metadata.expiresAt).toISOString()}`);
    io.print(`size     ${bundle.bytes.length} B (code ${bundle.metadata.code.size} B${bundle.metadata.target ? `, target ${bundle.metadata.target.path} ${bundle.metadata.target.size} B` : ''})`);
    io.print(`Send it with: gatesock dispatch send ${bundle.digest} --agents FLEET`);
  } finally {
    await center.close();
  }
}

interface SendFlags extends RelayFlags {
  center: string;
  agents: string;
  concurrency: number;
  waves?: string;
  failureThreshold?: number;
  retries?: number;
  arg: string[];
  progress?: boolean;
}

async function runSend(digest: string, o: SendFlags, io: Io): Promise<void> {
  const agents = parseFleet(fs.readFileSync(o.agents, 'utf8'), o.agents);
  const center = await openCenter(o.center, o);
  const stop = onShutdown(async () => center.close());
  try {
    const run = center.dispatch({
      bundle: digest,
      agents,
      concurrency: o.concurrency,
      ...(o.waves !== undefined ? { waves: parseWaves(o.waves) } : {}),
      ...(o.failureThreshold !== undefined ? { failureThreshold: o.failureThreshold } : {}),
      ...(o.retries !== undefined ? { retries: o.retries } : {}),
      ...(o.arg.length > 0 ? { args: o.arg } : {}),
    });
    io.note(`dispatch ${run.dispatchId}: ${agents.length} agents (interrupt with Ctrl-C; continue with \`gatesock dispatch resume\`)`);
    await follow([run], o.progress, io);
  } finally {
    stop();
    await center.close();
  }
}

async function runResume(o: RelayFlags & { center: string; progress?: boolean }, io: Io): Promise<void> {
  const center = await openCenter(o.center, o);
  const stop = onShutdown(async () => center.close());
  try {
    const runs = center.resume();
    if (runs.length === 0) {
      io.print('nothing to resume: every dispatch has ended');
      return;
    }
    io.note(`resuming ${runs.map((r) => `${r.dispatchId} run ${r.run}`).join(', ')}`);
    await follow(runs, o.progress, io);
  } finally {
    stop();
    await center.close();
  }
}

async function runRerun(id: string, o: RelayFlags & { center: string; arg: string[]; agent: string[]; progress?: boolean }, io: Io): Promise<void> {
  const center = await openCenter(o.center, o);
  const stop = onShutdown(async () => center.close());
  try {
    const run = center.rerun(id, { args: o.arg, ...(o.agent.length > 0 ? { agents: o.agent } : {}) });
    io.note(`dispatch ${id} run ${run.run}: the loaded target again with ${JSON.stringify(o.arg)}`);
    await follow([run], o.progress, io);
  } finally {
    stop();
    await center.close();
  }
}

async function runStatus(id: string | undefined, o: { center: string }, io: Io): Promise<void> {
  const f = centerFiles(o.center);
  if (!fs.existsSync(f.db)) throw new ConfigError('GS_ERR_INVALID_OPTION', `no center store at ${f.db}`);
  if (id === undefined) {
    const store = await SqliteDispatchStore.open(f.db);
    try {
      const rows = [['dispatch', 'bundle', 'created', 'state', 'runs']];
      for (const d of store.listDispatches()) rows.push([d.id, d.bundle.slice(0, 19) + '…', new Date(d.createdAt).toISOString(), d.state, String(d.lastRun + 1)]);
      for (const line of formatTable(rows)) io.print(line);
    } finally {
      await store.close();
    }
    return;
  }
  const center = await openCenter(o.center, undefined);
  try {
    const s = center.status(id);
    io.print(`dispatch ${s.id}, bundle ${s.bundle}, created ${new Date(s.createdAt).toISOString()}`);
    for (const r of s.runs) {
      io.print(`run ${r.run} (${r.args === null ? "the bundle's arguments" : JSON.stringify(r.args)}): ${r.state}, wave ${r.wave + 1}/${r.waves.length}`);
      for (const line of targetTable(r.targets)) io.print(line);
    }
    for (const f of s.failures) io.print(`failed verification ${new Date(f.at).toISOString()} ${shortMsid(f.msid)} run ${f.run ?? '-'}: ${f.reason}: ${f.message}`);
  } finally {
    await center.close();
  }
}

interface VerifyLogFlags {
  key?: string;
  center: string;
  expectHead?: string;
  allowNoHead?: boolean;
}

/**
 * The head to check `file` against: `--expect-head` (N/hash, or a head
 * file), else FILE.head when it exists, else none.
 */
function verifyLogHeadOption(file: string, o: VerifyLogFlags): { head?: string | LogHead; from: string } {
  if (o.expectHead !== undefined) {
    if (/^\d+\/[0-9a-f]+$/.test(o.expectHead.trim())) {
      try {
        return { head: parseLogHead(o.expectHead), from: 'the expected head' };
      } catch (err) {
        throw new ConfigError('GS_ERR_INVALID_OPTION', `--expect-head: ${(err as Error).message}`);
      }
    }
    try {
      return { head: fs.readFileSync(o.expectHead, 'utf8'), from: o.expectHead };
    } catch {
      throw new ConfigError('GS_ERR_INVALID_OPTION', `--expect-head: ${o.expectHead} is neither N/HASH nor a readable head file`);
    }
  }
  const beside = `${file}.head`;
  return fs.existsSync(beside) ? { head: fs.readFileSync(beside, 'utf8'), from: beside } : { from: 'none' };
}

function runVerifyLog(file: string, o: VerifyLogFlags, io: Io): void {
  const key = readPublicKey(o.key ?? centerFiles(o.center).pub, '--key');
  const { head, from } = verifyLogHeadOption(file, o);
  const result = verifyEvidenceLog(fs.readFileSync(file, 'utf8'), key, { ...(head !== undefined ? { head } : {}), ...(o.allowNoHead ? { allowNoHead: true } : {}) });
  io.print(`${file}: ${result.entries} entries, every hash link and signature verifies (center key ${centerKeyId(key)})`);
  io.print(Object.entries(result.kinds).map(([k, n]) => `${k} ${n}`).join(', '));
  const end = `head ${formatLogHead(result.end)}`;
  if (result.head === null) {
    io.print(`${end}: not checked against a head${result.version === 1 ? ' (a version 1 log, written before heads)' : ''}; lines cut off the end would go unnoticed`);
  } else {
    const signed = result.head.at !== undefined ? `the signed head of ${new Date(result.head.at).toISOString()} in ${from}` : from;
    io.print(`${end}: nothing is cut off the end (checked against ${signed}${result.pastHead > 0 ? `; ${result.pastHead} entries appended after it` : ''})`);
  }
}

interface AgentFlags extends RelayFlags {
  dir: string;
  centerKey: string;
  pcid?: string;
}

async function runAgent(o: AgentFlags, io: Io): Promise<void> {
  const centerKey = readPublicKey(o.centerKey, '--center-key');
  const dir = path.resolve(o.dir);
  const identity = await loadOrCreateServerIdentity(path.join(dir, 'identity'));
  const agent = await DispatchAgent.open({ identity, centerKey, stateDir: path.join(dir, 'state'), workDir: path.join(dir, 'work') });
  agent.on('accepted', (a) => io.note(`order ${a.dispatchId} run ${a.run}: ${a.name} version ${a.version}`));
  agent.on('refused', (r) => io.note(`refused${r.dispatchId ? ` ${r.dispatchId} run ${r.run}` : ''}: ${r.code}: ${r.message}`));
  agent.on('report', (r) => io.note(`report ${r.fields.dispatchId} run ${r.fields.run}: ${r.fields.outcome}${r.fields.exitCode !== null ? ` exit ${r.fields.exitCode}` : ''}`));
  agent.on('log', (l) => io.note(`log ${l.dispatchId}: ${l.message}`));
  agent.on('warning', (e) => io.note(`warning: ${e.message}`));
  const relay = await relayOptions(o);
  const server = await agent.listen({ ...relay, ...(o.pcid !== undefined ? { pcid: o.pcid } : {}) });
  onShutdown(async () => {
    await server.close();
    await agent.close();
  });
  io.print(`pcid     ${server.pcid}`);
  io.print(`msid     ${server.msid}`);
  io.print(`center   ${centerKeyId(centerKey)}`);
  io.print(`Fleet line: ${server.msid} ${server.pcid}`);
  server.endpoint.on('online', (gateway, pcid) => io.note(`online as ${pcid} via gateway ${gateway.address}`));
  server.endpoint.on('offline', (error) => io.note(`offline${error ? `: ${error.code}: ${error.message}` : ''}; logging in again`));
}

export function registerDispatchCommands(program: Command, io: Io): void {
  addRelayFlags(
    program
      .command('agent')
      .description('run a dispatch agent: a relay server (no open port) that runs bundles signed by the pinned center key and signs its reports; prints its fleet line')
      .requiredOption('--center-key <key>', "the center's public key: ed25519:… or a file holding it (center.pub)")
      .option('--dir <dir>', 'agent folder: identity/, state/, work/ (made on first run)', DISPATCH_CLI_DEFAULTS.agentDir)
      .option('--pcid <name>', 'ask for this PCID (default: the one the controller gave)'),
  ).action(async (o: AgentFlags) => runAgent(o, io));

  const dispatch = program.command('dispatch').description('verifiable dispatch: run signed bundles on agents and verify every report (docs/dispatch.md)');
  const centerFlag = (c: Command) => c.option('--center <dir>', 'the center folder: key, store, bundles, evidence log', DISPATCH_CLI_DEFAULTS.center);

  centerFlag(dispatch.command('keygen').description("make the center's signing key: DIR/center.key (secret) and DIR/center.pub (agents pin it: --center-key)"))
    .option('--force', 'replace an existing key (agents pinning the old one then refuse every order)')
    .action(async (o: { center: string; force?: boolean }) => {
      const { key, keyPath, pubPath } = writeKeyPair({ out: o.center, name: 'center', ...(o.force ? { force: true } : {}) }, 'agents pinning the old key then refuse every order', io);
      io.print(`key id      ${centerKeyId(key.publicKey)}`);
      io.print(`wrote ${keyPath} (secret: keep it with the center) and ${pubPath} (pin it on agents: --center-key)`);
    });

  centerFlag(dispatch.command('bundle').description('sign code (and an optional target program) into a bundle kept by the center; prints its digest'))
    .requiredOption('--name <name>', 'bundle name (1–64 of A-Z a-z 0-9 . _ -)')
    .requiredOption('--bundle-version <n>', 'version of this name; agents refuse a lower one than they ran', intIn('--bundle-version', 1, Number.MAX_SAFE_INTEGER))
    .requiredOption('--code <file>', 'the distributed code: an ES module whose default export is async (ctx) => …')
    .option('--target <file>', 'the target program the code starts')
    .option('--target-path <path>', "where the agent writes the target, relative to its work folder (default: the file's name)")
    .option('--arg <arg>', "the target's arguments; repeatable", collect, [])
    .option('--ttl-days <n>', 'days until the bundle expires', intIn('--ttl-days', 1, 3650), DISPATCH_CLI_DEFAULTS.ttlDays)
    .option('--timeout <seconds>', 'longest a run may take', intIn('--timeout', 1, 86_400), DISPATCH_CLI_DEFAULTS.timeoutSeconds)
    .option('--out <file>', 'also write the encoded bundle here')
    .action(async (o: BundleFlags) => runBundle(o, io));

  addRelayFlags(centerFlag(dispatch.command('send').description('dispatch a bundle to the fleet in canary waves; progress on a terminal, a per-agent table at the end (exit 10 unless every agent ran it, exited 0 and its report verified)')))
    .argument('<bundle>', 'the bundle digest (sha256:…)')
    .requiredOption('--agents <file>', 'fleet file: "MSID PCID" per line')
    .option('--concurrency <n>', 'agents worked on at once', intIn('--concurrency', 1, 10_000), DISPATCH_DEFAULTS.concurrency)
    .option('--waves <list>', 'canary waves: counts or fractions, e.g. 1,0.1 (the rest is the last wave)')
    .option('--failure-threshold <p>', 'stop when a wave fails more than this fraction', fraction('--failure-threshold'))
    .option('--retries <n>', 'attempts after the first for an unreachable agent', intIn('--retries', 0, 100))
    .option('--arg <arg>', "target arguments instead of the bundle's; repeatable", collect, [])
    .option('--progress', 'show the progress bar even when stderr is not a terminal')
    .option('--no-progress', 'never show the progress bar')
    .action(async (digest: string, o: SendFlags) => runSend(digest, o, io));

  addRelayFlags(centerFlag(dispatch.command('resume').description('continue every unfinished dispatch (after an interrupted send or a center restart)')))
    .option('--progress', 'show the progress bar even when stderr is not a terminal')
    .option('--no-progress', 'never show the progress bar')
    .action(async (o: RelayFlags & { center: string; progress?: boolean }) => runResume(o, io));

  addRelayFlags(centerFlag(dispatch.command('rerun').description('run the loaded target again with new arguments, without fetching the bundle again')))
    .argument('<dispatch>', 'the dispatch ID')
    .option('--arg <arg>', 'the new arguments; repeatable', collect, [])
    .option('--agent <msid>', 'only these agents (default: those that verified); repeatable', collect, [])
    .option('--progress', 'show the progress bar even when stderr is not a terminal')
    .option('--no-progress', 'never show the progress bar')
    .action(async (id: string, o: RelayFlags & { center: string; arg: string[]; agent: string[]; progress?: boolean }) => runRerun(id, o, io));

  centerFlag(dispatch.command('status').description('list dispatches, or show one: every run, a row per agent, and every failed verification'))
    .argument('[dispatch]', 'the dispatch ID')
    .action(async (id: string | undefined, o: { center: string }) => runStatus(id, o, io));

  centerFlag(
    dispatch
      .command('verify-log')
      .description("check an evidence log offline: every hash link and every signature, with the center's public key, and against its head that no line was cut off the end; prints the head (N/HASH) to keep elsewhere"),
  )
    .argument('<file>', 'the evidence log (evidence.log in the center folder)')
    .option('--key <key>', "the center's public key: ed25519:… or a file (default: center.pub in --center)")
    .option('--expect-head <head>', 'the head the log must reach: N/HASH as verify-log printed it, or a head file (default: FILE.head when it exists)')
    .option('--allow-no-head', 'verify a log that keeps a head without one (lines cut off its end then go unnoticed)')
    .action(async (file: string, o: VerifyLogFlags) => runVerifyLog(file, o, io));
}
