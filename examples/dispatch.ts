/**
 * dispatch: verifiable dispatch in one file. A gateway system (controller +
 * one gateway), two dispatch agents (relay servers: they open no port) and
 * a dispatch center all run in this process on loopback. The center signs a
 * bundle (a small JavaScript module plus a target program), dispatches it to
 * both agents with a fresh evidence value for each, and accepts each result
 * only when the agent's signed report carries that evidence back for that
 * bundle. Then it re-runs the loaded target with new arguments (nothing is
 * fetched again) and checks its hash-chained evidence log offline.
 *
 * Each agent starts a separate loader process per dispatch; the distributed
 * code lives only in that process's memory.
 *
 * Run: npx tsx examples/dispatch.ts
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
// Users write `from 'gatesock'` and `from 'gatesock/delivery'`.
// The example imports the source so it runs without a build.
import { createServerIdentity, generateIdentityKey, type SockServer } from '../src/index.js';
import {
  DispatchAgent,
  DispatchCenter,
  ProcessExecutor,
  RelayAgentConnector,
  centerKeyId,
  decodeReport,
  verifyEvidenceLog,
  type DispatchRun,
} from '../src/delivery/index.js';
import { startLoopbackSystem } from './support/loopback-system.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gatesock-dispatch-example-'));

// 1. A gateway system on 127.0.0.1: a root CA, a controller and a gateway (built step by step in relay-echo.ts).
const loopback = await startLoopbackSystem();
const { controller, gateway } = loopback;
const system = loopback.relay;
console.log(`controller     ${controller.address}`);
console.log(`gateway        ${gateway.address}`);

// 2. The center's signing key. Agents pin its public half: they obey nothing else.
//    (CLI: `gatesock dispatch keygen` writes center.key and center.pub.)
const centerKey = generateIdentityKey();
console.log(`center key     ${centerKeyId(centerKey.publicKey)}`);

// 3. Two agents. Each has its own identity (its MSID signs its reports), a
//    state folder (rollback floor, orders acted on, reports not yet
//    acknowledged) and a work folder where targets are written. Loaders are
//    separate Node processes; run from source here, so through tsx.
//    (CLI: `gatesock agent --center-key center.pub --controller … --root …`.)
const executor = new ProcessExecutor({ loaderPath: fileURLToPath(new URL('../src/delivery/dispatch/agent/loader-main.ts', import.meta.url)), execArgv: ['--import', 'tsx'] });
const agents: { agent: DispatchAgent; server: SockServer }[] = [];
for (const name of ['example-agent-1', 'example-agent-2']) {
  const dir = path.join(work, name);
  const agent = await DispatchAgent.open({ identity: createServerIdentity(), centerKey: centerKey.publicKey, stateDir: path.join(dir, 'state'), workDir: path.join(dir, 'work'), executor });
  agent.on('log', (l) => console.log(`agent log      ${name}: ${l.message}`));
  const server = await agent.listen({ ...system, pcid: name });
  agents.push({ agent, server });
  console.log(`agent          ${server.pcid} ${server.msid.slice(0, 17)}…`);
}

// 4. The center: SQLite store (a dispatch survives a restart: `resume()`),
//    the evidence log, and agents reached through the relay by PCID, their
//    MSID checked end to end.
const logPath = path.join(work, 'evidence.log');
const center = await DispatchCenter.open({ key: centerKey, store: path.join(work, 'center.db'), connector: new RelayAgentConnector(system), logPath });

// 5. A bundle: the distributed code (an ES module; its default export gets
//    ctx) and a target program it starts. Signed with a version and an expiry.
const bundle = await center.createBundle({
  name: 'hello-fleet',
  version: 1,
  code: `export default async (ctx) => {
  ctx.log('run ' + ctx.run + ': starting the target with ' + JSON.stringify(ctx.args));
  const r = await ctx.spawnTarget();
  if (r.exitCode !== 0) throw new Error('the target exited ' + r.exitCode);
};`,
  target: { bytes: new TextEncoder().encode('#!/bin/sh\necho "hello $*"\n'), path: 'bin/hello.sh', args: ['first'] },
  timeoutMs: 20_000,
});
console.log(`bundle         ${bundle.digest.slice(0, 23)}… (${bundle.metadata.name} version ${bundle.metadata.version}, ${bundle.bytes.length} B)`);

/** Print each verified result; the report carries the digest of the target's output, which we can check. */
async function follow(run: DispatchRun, expectedOutput: string): Promise<void> {
  const expected = `sha256:${createHash('sha256').update(expectedOutput).digest('hex')}`;
  run.on('result', (r) => {
    const row = center.store.getTarget({ dispatchId: r.dispatchId, run: r.run, msid: r.msid })!;
    const report = row.report === null ? undefined : decodeReport(row.report, Buffer.from(row.certificate!, 'base64url'));
    const output = report ? `, stdout ${report.fields.stdout.digest === expected ? 'is' : 'is NOT'} ${JSON.stringify(expectedOutput)}` : '';
    console.log(`result         run ${r.run} ${r.pcid}: ${r.state}, ${r.outcome ?? '-'}, exit ${r.exitCode ?? '-'}${output}`);
  });
  const summary = await run.done;
  console.log(`run ${summary.run}          ${summary.counts.verified}/${summary.total} verified (${summary.state})`);
  if (summary.counts.verified !== summary.total) process.exitCode = 1;
}

// 6. Dispatch to both (a canary wave of one, then the rest), then re-run the
//    loaded target with new arguments: a new evidence value each, no fetch.
const fleet = agents.map(({ server }) => ({ msid: server.msid, pcid: server.pcid! }));
const first = center.dispatch({ bundle: bundle.digest, agents: fleet, waves: [1] });
await follow(first, 'hello first\n');
await follow(center.rerun(first.dispatchId, { args: ['again', 'with new args'] }), 'hello again with new args\n');

// 7. Close the center (it finishes writing the log), then check the log
//    offline with nothing but the center's public key.
//    (CLI: `gatesock dispatch verify-log evidence.log --key center.pub`.)
await center.close();
const log = verifyEvidenceLog(fs.readFileSync(logPath, 'utf8'), centerKey.publicKey, { head: fs.readFileSync(`${logPath}.head`, 'utf8') });
console.log(`evidence log   ${log.entries} entries, every hash link and signature verifies (${Object.entries(log.kinds).map(([k, n]) => `${k} ${n}`).join(', ')})`);

// 8. Stop everything.
for (const { agent, server } of agents) {
  await server.close();
  await agent.close();
}
await loopback.close();
fs.rmSync(work, { recursive: true, force: true });
console.log('closed');
