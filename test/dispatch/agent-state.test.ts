/**
 * The agent's state across restarts: a report not yet acknowledged, the
 * version floor (no rollback) and the bindings already acted on (no
 * replay) all survive; the file is replaced whole; a damaged file is a
 * clear error, not a silent fresh start. Options are checked by name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, DispatchError } from '../../src/errors/index.js';
import { createServerIdentity } from '../../src/session/index.js';
import { DispatchAgent, InlineExecutor, STATE_FILE } from '../../src/delivery/dispatch/agent/index.js';
import { MAX_PENDING_REPORTS, checkReport, decodeReport, fromBase64url, signReport } from '../../src/delivery/dispatch/wire/index.js';
import { TestCenter, expectation, tempDir, until } from './fixtures/agent/harness.js';

const center = new TestCenter();
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('DispatchAgent state', () => {
  it('keeps the pending report, the version floor and the bindings acted on across a restart', async () => {
    const root = tempDir('agent-state');
    dirs.push(root);
    const identity = createServerIdentity();
    const options = { identity, centerKey: center.key.publicKey, stateDir: path.join(root, 'state'), workDir: path.join(root, 'work'), executor: new InlineExecutor() };

    const first = await DispatchAgent.open(options);
    const link = await center.connect(first);
    const v3 = center.bundle({ name: 'floor', version: 3 });
    const b3 = center.bind(first.msid, v3);
    expect((await link.run(b3, v3)).t).toBe('accepted');
    const { report } = await link.report(b3); // never acknowledged
    await link.close();
    await first.close();
    expect(fs.readdirSync(path.join(root, 'state'))).toEqual([STATE_FILE]); // no temporary file left

    const second = await DispatchAgent.open(options);
    const again = await center.connect(second);
    expect(again.hello.pending).toEqual([{ report: report.encoded }]);
    const v2 = center.bundle({ name: 'floor', version: 2 });
    const b2 = center.bind(second.msid, v2);
    expect(await again.run(b2, v2)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_ROLLBACK' });
    expect(await again.run(b3, v3)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_REPLAYED' });
    // The same version again, under a new binding, is fine.
    const b3b = center.bind(second.msid, v3);
    expect((await again.run(b3b, v3)).t).toBe('accepted');
    expect((await again.report(b3b)).check.ok).toBe(true);
    await again.ack(b3);
    await again.ack(b3b);
    await again.ack(b2);
    await new Promise((r) => setTimeout(r, 50));
    await again.close();
    await second.close();

    const saved = JSON.parse(fs.readFileSync(path.join(root, 'state', STATE_FILE), 'utf8'));
    expect(saved.bundles).toEqual({ floor: 3 });
    expect(saved.pending).toEqual([]);
    expect(saved.taken.map((t: [string, number, number]) => t[0]).sort()).toEqual([b3.fields.dispatchId, b3b.fields.dispatchId].sort());
  });

  it('signs a true crashed outcome, on start, for a run its killed predecessor took and never reported', async () => {
    const root = tempDir('agent-state-lost');
    dirs.push(root);
    const identity = createServerIdentity();
    const options = (dir: string) => ({ identity, centerKey: center.key.publicKey, stateDir: path.join(root, dir), workDir: path.join(root, 'work'), executor: new InlineExecutor() });
    const first = await DispatchAgent.open(options('state'));
    const link = await center.connect(first);
    const slow = center.bundle({ name: 'lost', code: 'export default async () => { await new Promise((r) => setTimeout(r, 30_000)); };', target: undefined });
    const binding = center.bind(first.msid, slow);
    expect((await link.run(binding, slow)).t).toBe('accepted');
    // What a SIGKILL would leave: the state as saved when the order was accepted (copied before anything reports).
    const onDisk = fs.readFileSync(path.join(root, 'state', STATE_FILE), 'utf8');
    expect(JSON.parse(onDisk).running).toMatchObject([{ dispatchId: binding.fields.dispatchId, run: 0, evidence: binding.fields.evidence }]);
    fs.mkdirSync(path.join(root, 'killed'));
    fs.writeFileSync(path.join(root, 'killed', STATE_FILE), onDisk);
    await link.close();
    await first.close();

    const second = await DispatchAgent.open(options('killed'));
    const again = await center.connect(second);
    expect(again.hello.pending).toHaveLength(1);
    const report = decodeReport(again.hello.pending[0]!.report, fromBase64url(again.hello.certificate, 'certificate', 16_384));
    expect(checkReport(report, expectation(binding)).ok).toBe(true);
    expect(report.fields).toMatchObject({ outcome: 'crashed', reason: 'agent restarted during the run', start: 'none', exitCode: null });
    // Still never runs twice.
    expect(await again.run(binding, slow)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_REPLAYED' });
    await again.ack(binding);
    await again.close();
    await second.close();
    const saved = JSON.parse(fs.readFileSync(path.join(root, 'killed', STATE_FILE), 'utf8'));
    expect(saved.running).toEqual([]);
    expect(saved.pending).toEqual([]);
    // Reported once: a third start has nothing to report.
    const third = await DispatchAgent.open(options('killed'));
    const last = await center.connect(third);
    expect(last.hello.pending).toEqual([]);
    await last.close();
    await third.close();
  });

  it('lists what one hello holds of many pending reports and sends the rest as report messages', async () => {
    const root = tempDir('agent-state-many');
    dirs.push(root);
    const identity = createServerIdentity();
    const reports = Array.from({ length: 70 }, (_, run) =>
      signReport(
        {
          dispatchId: 'ab'.repeat(16), run, agentMsid: identity.msid, bundleDigest: `sha256:${'0'.repeat(64)}`, evidence: 'cd'.repeat(32),
          outcome: 'ran', reason: null, start: 'none', exitCode: null, signal: null,
          stdout: { digest: `sha256:${'1'.repeat(64)}`, size: 0 }, stderr: { digest: `sha256:${'1'.repeat(64)}`, size: 0 }, startedAt: 1, endedAt: 2,
        },
        identity,
      ),
    );
    fs.mkdirSync(path.join(root, 'state'));
    const pending = reports.map((r) => ({ dispatchId: r.fields.dispatchId, run: r.fields.run, report: r.encoded }));
    fs.writeFileSync(path.join(root, 'state', STATE_FILE), JSON.stringify({ version: 1, bundles: {}, taken: [], pending }));
    const agent = await DispatchAgent.open({ identity, centerKey: center.key.publicKey, stateDir: path.join(root, 'state'), workDir: path.join(root, 'work'), executor: new InlineExecutor() });
    const link = await center.connect(agent);
    expect(link.hello.pending.length).toBeGreaterThan(0);
    expect(link.hello.pending.length).toBeLessThanOrEqual(MAX_PENDING_REPORTS);
    const rest = reports.length - link.hello.pending.length;
    expect(await until(() => link.inbox.filter((m) => m.t === 'report').length === rest)).toBe(true);
    const seen = [...link.hello.pending.map((p) => p.report), ...link.inbox.flatMap((m) => (m.t === 'report' ? [m.report] : []))];
    expect(seen).toEqual(reports.map((r) => r.encoded));
    await link.close();
    await agent.close();
  });

  it('refuses an order it cannot record before running it', async () => {
    const root = tempDir('agent-state-nosave');
    dirs.push(root);
    const agent = await DispatchAgent.open({ identity: createServerIdentity(), centerKey: center.key.publicKey, stateDir: path.join(root, 'state'), workDir: path.join(root, 'work'), executor: new InlineExecutor() });
    const warnings: Error[] = [];
    agent.on('warning', (e) => warnings.push(e));
    fs.mkdirSync(path.join(root, 'state', `${STATE_FILE}.tmp`)); // the next save cannot write its temporary file
    const link = await center.connect(agent);
    const bundle = center.bundle({ name: 'nosave' });
    const binding = center.bind(agent.msid, bundle);
    expect(await link.run(binding, bundle)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_LOADER_FAILED' });
    expect((await link.report(binding)).report.fields).toMatchObject({ outcome: 'refused', reason: 'GS_ERR_DISPATCH_LOADER_FAILED' });
    expect(fs.existsSync(path.join(root, 'work', 'target-ran'))).toBe(false);
    expect(warnings.length).toBeGreaterThan(0);
    await link.close();
    await agent.close();
  });

  it('refuses to start on a damaged state file', async () => {
    const root = tempDir('agent-state-bad');
    dirs.push(root);
    fs.mkdirSync(path.join(root, 'state'));
    fs.writeFileSync(path.join(root, 'state', STATE_FILE), '{"version":1,"bundles":{"x":-1},"taken":[],"pending":[]}');
    const options = { identity: createServerIdentity(), centerKey: center.key.publicKey, stateDir: path.join(root, 'state'), workDir: path.join(root, 'work'), executor: new InlineExecutor() };
    const err = await DispatchAgent.open(options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DispatchError);
    expect((err as DispatchError).code).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect((err as Error).message).toContain('bundles.x');
  });

  it('checks its options by name', () => {
    const base = { identity: createServerIdentity(), centerKey: center.key.publicKey, stateDir: '/tmp/x', workDir: '/tmp/y', executor: new InlineExecutor() };
    expect(() => new DispatchAgent({ ...base, centerKey: 'ed25519:nope' })).toThrow(/centerKey/);
    expect(() => new DispatchAgent({ ...base, idleLoaderMs: 0 })).toThrow(/idleLoaderMs/);
    expect(() => new DispatchAgent({ ...base, fetchTimeoutMs: 1.5 })).toThrow(ConfigError);
    expect(() => new DispatchAgent({ ...base, workDir: '' })).toThrow(/workDir/);
  });
});
