/**
 * DispatchAgent with the ProcessExecutor: a real loader process per
 * dispatch (the loader entry run from source through tsx). The job travels
 * over IPC only (not in the loader's command line or environment), the code
 * is never written to disk, a re-run reuses the same process, a loader that
 * crashes is reported as crashed, and a hang is ended at the bundle timeout
 * with the whole process tree (loader, target, the target's child).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createServerIdentity } from '../../src/session/index.js';
import { DispatchAgent, ProcessExecutor } from '../../src/delivery/dispatch/agent/index.js';
import { TestCenter, alive, filesUnder, tempDir, until } from './fixtures/agent/harness.js';

const loaderPath = fileURLToPath(new URL('../../src/delivery/dispatch/agent/loader-main.ts', import.meta.url));
const executor = new ProcessExecutor({ loaderPath, execArgv: ['--import', 'tsx'] });
const center = new TestCenter();
const dirs: string[] = [];
const agents: DispatchAgent[] = [];
afterAll(async () => {
  await Promise.allSettled(agents.map((a) => a.close()));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function newAgent() {
  const root = tempDir('agent-process');
  dirs.push(root);
  const agent = await DispatchAgent.open({
    identity: createServerIdentity(),
    centerKey: center.key.publicKey,
    stateDir: path.join(root, 'state'),
    workDir: path.join(root, 'work'),
    executor,
    syncState: false,
  });
  agents.push(agent);
  const pids: number[] = [];
  agent.on('log', (l) => {
    const m = /^pid (\d+)/.exec(l.message);
    if (m) pids.push(Number(m[1]));
  });
  return { agent, link: await center.connect(agent), root, work: path.join(root, 'work'), pids };
}

describe('DispatchAgent (process executor)', () => {
  it('runs in a loader process that holds the job only in memory, and re-runs in the same process', async () => {
    const { agent, link, root, work, pids } = await newAgent();
    const code = `
      import { readFileSync } from 'node:fs';
      export default async (ctx) => {
        const self = (f) => readFileSync('/proc/self/' + f).toString('latin1');
        ctx.log('pid ' + process.pid);
        ctx.log('cmdline ' + self('cmdline'));
        ctx.log('environ ' + self('environ'));
        const r = await ctx.spawnTarget();
        if (r.exitCode !== 0) throw new Error('exit ' + r.exitCode);
      };`;
    const lines: string[] = [];
    agent.on('log', (l) => lines.push(l.message));
    const bundle = center.bundle({ name: 'proc-echo', code });
    const binding = center.bind(agent.msid, bundle);
    expect((await link.run(binding, bundle)).t).toBe('accepted');
    const { report, check } = await link.report(binding, 20_000);
    expect(check).toMatchObject({ ok: true });
    expect(report.fields).toMatchObject({ outcome: 'ran', exitCode: 0, start: 'started' });
    expect(pids).toHaveLength(1);
    expect(pids[0]).not.toBe(process.pid);
    // Neither the evidence nor the binding is on the loader's command line or in its environment.
    const seen = lines.filter((l) => l.startsWith('cmdline ') || l.startsWith('environ ')).join('\n');
    expect(seen).toContain('gatesock-dispatch-loader'); // what ps shows (process.title)
    expect(seen).toContain('environ ');
    expect(seen).not.toContain(binding.fields.evidence);
    expect(seen).not.toContain(binding.encoded.slice(0, 40));

    const again = center.bind(agent.msid, bundle, { dispatchId: binding.fields.dispatchId, run: 1, args: ['x'] });
    expect((await link.rerun(again)).t).toBe('accepted');
    expect((await link.report(again, 20_000)).check.ok).toBe(true);
    expect(pids).toEqual([pids[0], pids[0]]); // the same loader process
    expect(fs.readFileSync(path.join(work, 'ran.log'), 'utf8')).toBe('a b\nx\n');
    // The code was never a file: not under the agent, not in the temp directory's new files.
    const needle = "readFileSync('/proc/self/'";
    expect(filesUnder(root).filter((f) => f.bytes.includes(needle))).toEqual([]);
    // A new dispatch ends the previous loader first.
    const next = center.bundle({ name: 'proc-next', code: "export default async (ctx) => { ctx.log('pid ' + process.pid); };", target: undefined });
    const b2 = center.bind(agent.msid, next);
    expect((await link.run(b2, next)).t).toBe('accepted');
    expect((await link.report(b2, 20_000)).report.fields.outcome).toBe('ran');
    expect(pids).toHaveLength(3);
    expect(pids[2]).not.toBe(pids[0]);
    expect(await until(() => !alive(pids[0]!), 3_000)).toBe(true);
  });

  it('a loader that dies mid-run is reported as crashed, and its target is ended', async () => {
    const { agent, link, work } = await newAgent();
    // The loader dies while its target still runs: the target goes with it.
    const sleeper = new TextEncoder().encode('#!/bin/sh\necho $$ > sleeper.pid\nexec sleep 30\n');
    const bundle = center.bundle({
      name: 'proc-crash',
      target: { bytes: sleeper, path: 'sleeper.sh' },
      code: "import { existsSync } from 'node:fs'; export default async (ctx) => { ctx.log('pid ' + process.pid); ctx.spawnTarget(); const pidFile = ctx.target.path.replace(/sleeper[.]sh$/, 'sleeper.pid'); while (!existsSync(pidFile)) await new Promise((r) => setTimeout(r, 10)); process.exit(7); };",
    });
    const binding = center.bind(agent.msid, bundle);
    expect((await link.run(binding, bundle)).t).toBe('accepted');
    const { report, check } = await link.report(binding, 20_000);
    expect(check.ok).toBe(true);
    expect(report.fields.outcome).toBe('crashed');
    expect(report.fields.reason).toMatch(/^GS_ERR_DISPATCH_LOADER_FAILED: loader exited with code 7/);
    // (start is best effort here: a loader that calls process.exit() can die before its "target started" message leaves.)
    const sleeperPid = Number(fs.readFileSync(path.join(work, 'sleeper.pid'), 'utf8'));
    expect(await until(() => !alive(sleeperPid), 3_000)).toBe(true);
  });

  it('a hang is ended at the bundle timeout with the whole process tree', async () => {
    const { agent, link, work, pids } = await newAgent();
    // The target starts a grandchild and both hang.
    const hang = new TextEncoder().encode('#!/bin/sh\nsleep 30 &\necho $! > grandchild.pid\necho $$ > target.pid\nwait\n');
    const bundle = center.bundle({
      name: 'proc-hang',
      timeoutMs: 5_000, // room for the loader to start under tsx on a busy machine
      target: { bytes: hang, path: 'hang.sh' },
      code: "export default async (ctx) => { ctx.log('pid ' + process.pid); await ctx.spawnTarget(); };",
    });
    const binding = center.bind(agent.msid, bundle);
    expect((await link.run(binding, bundle)).t).toBe('accepted');
    const { report, check } = await link.report(binding, 20_000);
    expect(check.ok).toBe(true);
    expect(report.fields).toMatchObject({ outcome: 'timeout', reason: 'GS_ERR_DISPATCH_TIMEOUT', start: 'started' });
    const procs = [pids[0]!, ...['target.pid', 'grandchild.pid'].map((f) => Number(fs.readFileSync(path.join(work, f), 'utf8')))];
    expect(await until(() => procs.every((p) => !alive(p)), 3_000)).toBe(true);
  });
});
