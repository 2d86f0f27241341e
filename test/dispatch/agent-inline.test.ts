/**
 * DispatchAgent with the InlineExecutor, over in-memory channels to a test
 * center: a bundle runs and its signed report verifies; re-run with new
 * arguments without a second fetch; every bad order is refused with nothing
 * executed (a target and code that would leave marker files); cancel,
 * supersede and timeout give clear outcomes; reports survive a lost
 * channel until acknowledged; one bad channel leaves the others alone.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createServerIdentity, generateIdentityKey } from '../../src/session/index.js';
import { SockIo } from '../../src/socket/index.js';
import { memoryPair } from '../../src/transport/index.js';
import { DispatchAgent, InlineExecutor, type DispatchAgentOptions } from '../../src/delivery/dispatch/agent/index.js';
import { encodeMessage, signChannelAuth } from '../../src/delivery/dispatch/wire/index.js';
import { ECHO_TARGET, TestCenter, alive, filesUnder, tempDir, until } from './fixtures/agent/harness.js';

const dirs: string[] = [];
const agents: DispatchAgent[] = [];
afterAll(async () => {
  await Promise.allSettled(agents.map((a) => a.close()));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const center = new TestCenter();

async function newAgent(more: Partial<DispatchAgentOptions> = {}) {
  const root = tempDir('agent-inline');
  dirs.push(root);
  const identity = createServerIdentity();
  const agent = await DispatchAgent.open({
    identity,
    centerKey: center.key.publicKey,
    stateDir: path.join(root, 'state'),
    workDir: path.join(root, 'work'),
    executor: new InlineExecutor(),
    syncState: false,
    ...more,
  });
  agents.push(agent);
  const link = await center.connect(agent);
  return { agent, link, root, work: path.join(root, 'work') };
}

/** A bundle whose target sleeps 30 s (a run in progress, until cancelled or superseded). */
const sleeper = (name: string) =>
  center.bundle({ name, target: { bytes: new TextEncoder().encode('#!/bin/sh\nexec sleep 30\n'), path: 'slow.sh' }, code: 'export default async (ctx) => { await ctx.spawnTarget(); };' });
const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;
const ranNothing = (work: string) => !fs.existsSync(path.join(work, 'target-ran')) && !fs.existsSync(path.join(work, 'bin', 'echo.sh.code-ran'));

describe('DispatchAgent (inline executor)', () => {
  it('says hello with its MSID and certificate, runs a bundle, and signs a report that verifies', async () => {
    const { agent, link, work } = await newAgent();
    expect(link.hello.agentMsid).toBe(agent.msid);
    expect(link.hello.pending).toEqual([]);
    const logs: string[] = [];
    agent.on('log', (l) => logs.push(l.message));
    const bundle = center.bundle({ name: 'echo-ok' });
    const binding = center.bind(agent.msid, bundle);
    expect((await link.run(binding, bundle)).t).toBe('accepted');
    const { report, check } = await link.report(binding);
    expect(check).toMatchObject({ ok: true });
    expect(report.fields).toMatchObject({ outcome: 'ran', start: 'started', exitCode: 0, signal: null, reason: null, evidence: binding.fields.evidence, bundleDigest: bundle.digest });
    expect(report.fields.stdout).toEqual({ digest: sha('hello a b\n'), size: 10 });
    expect(report.fields.stderr.size).toBe(0);
    expect(fs.readFileSync(path.join(work, 'ran.log'), 'utf8')).toBe('a b\n');
    expect((fs.statSync(path.join(work, 'bin', 'echo.sh')).mode & 0o777).toString(8)).toBe('755');
    expect(logs.some((l) => l.endsWith('args a b'))).toBe(true);
    // The code was imported from memory: no file anywhere under the agent holds it.
    const marker = 'writeFileSync(ctx.target.path';
    expect(filesUnder(path.dirname(work)).filter((f) => f.bytes.includes(marker))).toEqual([]);
  });

  it('re-runs the loaded code with new arguments and fresh evidence without fetching again', async () => {
    const { agent, link, work } = await newAgent();
    const bundle = center.bundle({ name: 'echo-rerun' });
    const first = center.bind(agent.msid, bundle);
    expect((await link.run(first, bundle, false)).t).toBe('accepted');
    expect((await link.report(first)).check.ok).toBe(true);
    expect(link.fetches).toBe(1);
    const again = center.bind(agent.msid, bundle, { dispatchId: first.fields.dispatchId, run: 1, args: ['c', 'd'] });
    expect((await link.rerun(again)).t).toBe('accepted');
    const { report, check } = await link.report(again);
    expect(check).toMatchObject({ ok: true });
    expect(report.fields).toMatchObject({ run: 1, outcome: 'ran', exitCode: 0, evidence: again.fields.evidence });
    expect(report.fields.stdout.digest).toBe(sha('hello c d\n'));
    expect(link.fetches).toBe(1);
    expect(fs.readFileSync(path.join(work, 'ran.log'), 'utf8')).toBe('a b\nc d\n');
    // A re-run naming another bundle is refused, with a report.
    const other = center.bundle({ name: 'echo-other' });
    const wrong = center.bind(agent.msid, other, { dispatchId: first.fields.dispatchId, run: 2 });
    expect(await link.rerun(wrong)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_DIGEST_MISMATCH' });
    expect((await link.report(wrong)).report.fields).toMatchObject({ outcome: 'refused', reason: 'GS_ERR_DISPATCH_DIGEST_MISMATCH', start: 'none' });
  });

  describe('refuses bad orders and runs nothing', () => {
    it('a tampered bundle (with a signed refused report)', async () => {
      const { agent, link, work } = await newAgent();
      const bundle = center.bundle({ name: 'tampered' });
      const binding = center.bind(agent.msid, bundle);
      const bytes = bundle.bytes.slice();
      bytes[bytes.length - 3]! ^= 0x20; // a byte of the target program
      await link.channel.send({ t: 'run', binding: binding.encoded, inline: true, body: bytes });
      const answer = await link.expect((m) => m.t === 'error' || m.t === 'accepted');
      expect(answer).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_DIGEST_MISMATCH', dispatchId: binding.fields.dispatchId });
      const { report, check } = await link.report(binding);
      expect(check.ok).toBe(true);
      expect(report.fields).toMatchObject({ outcome: 'refused', reason: 'GS_ERR_DISPATCH_DIGEST_MISMATCH', start: 'none', exitCode: null });
      expect(ranNothing(work)).toBe(true);
    });

    it('a bundle signed by another key, an expired bundle, a rollback', async () => {
      const { agent, link, work } = await newAgent();
      const stranger = generateIdentityKey();
      const forged = center.bundle({ name: 'forged' }, stranger);
      const b1 = center.bind(agent.msid, forged);
      expect(await link.run(b1, forged)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_BAD_SIGNATURE' });
      expect((await link.report(b1)).report.fields.reason).toBe('GS_ERR_DISPATCH_BAD_SIGNATURE');

      const stale = center.bundle({ name: 'stale', now: Date.now() - 10_000, ttlMs: 1_000 });
      const b2 = center.bind(agent.msid, stale);
      expect(await link.run(b2, stale)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_EXPIRED' });
      expect((await link.report(b2)).report.fields.outcome).toBe('refused');
      expect(ranNothing(work)).toBe(true);

      const v2 = center.bundle({ name: 'versioned', version: 2, code: 'export default async () => {};' });
      const b3 = center.bind(agent.msid, v2);
      expect((await link.run(b3, v2)).t).toBe('accepted');
      expect((await link.report(b3)).report.fields.outcome).toBe('ran');
      const v1 = center.bundle({ name: 'versioned', version: 1 });
      const b4 = center.bind(agent.msid, v1);
      expect(await link.run(b4, v1)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_ROLLBACK' });
      expect((await link.report(b4)).report.fields.reason).toBe('GS_ERR_DISPATCH_ROLLBACK');
      expect(ranNothing(work)).toBe(true);
    });

    it('bindings that do not verify get only an error: another agent, another signer, expired, garbage', async () => {
      const { agent, link, work } = await newAgent();
      const refused: string[] = [];
      agent.on('refused', (r) => refused.push(r.code));
      const bundle = center.bundle({ name: 'unbound' });
      const cases: [string, ReturnType<TestCenter['bind']> | string][] = [
        ['GS_ERR_DISPATCH_WRONG_AGENT', center.bind(createServerIdentity().msid, bundle)],
        ['GS_ERR_DISPATCH_BAD_SIGNATURE', center.bind(agent.msid, bundle, {}, generateIdentityKey())],
        ['GS_ERR_DISPATCH_EXPIRED', center.bind(agent.msid, bundle, { issuedAt: Date.now() - 5_000, expiresAt: Date.now() - 1_000 })],
        ['GS_ERR_DISPATCH_MALFORMED', 'not-a-binding'],
      ];
      for (const [code, b] of cases) {
        await link.channel.send({ t: 'run', binding: typeof b === 'string' ? b : b.encoded, inline: true, body: bundle.bytes });
        expect(await link.expect((m) => m.t === 'error' || m.t === 'accepted')).toMatchObject({ t: 'error', code });
      }
      expect(refused).toEqual(cases.map(([c]) => c));
      await new Promise((r) => setTimeout(r, 50));
      expect(link.inbox.filter((m) => m.t === 'report')).toEqual([]);
      expect(ranNothing(work)).toBe(true);
    });

    it('a replayed binding (nothing runs a second time; the first report stands)', async () => {
      const { agent, link, work } = await newAgent();
      const bundle = center.bundle({ name: 'replay' });
      const binding = center.bind(agent.msid, bundle);
      expect((await link.run(binding, bundle)).t).toBe('accepted');
      expect((await link.report(binding)).check.ok).toBe(true);
      fs.rmSync(path.join(work, 'target-ran'));
      expect(await link.run(binding, bundle)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_REPLAYED' });
      // Also as a re-run of the loaded bundle.
      expect(await link.rerun(binding)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_REPLAYED' });
      await new Promise((r) => setTimeout(r, 100));
      expect(fs.existsSync(path.join(work, 'target-ran'))).toBe(false);
      expect(fs.readFileSync(path.join(work, 'ran.log'), 'utf8')).toBe('a b\n');
    });

    it('a target path through a symlink out of the work directory', async () => {
      const { agent, link, work, root } = await newAgent();
      const outside = path.join(root, 'outside');
      fs.mkdirSync(outside);
      fs.mkdirSync(work, { recursive: true });
      fs.symlinkSync(outside, path.join(work, 'bin'));
      const bundle = center.bundle({ name: 'escape' });
      const binding = center.bind(agent.msid, bundle);
      expect((await link.run(binding, bundle)).t).toBe('accepted'); // the agent's checks pass; the loader refuses
      const { report, check } = await link.report(binding);
      expect(check.ok).toBe(true);
      expect(report.fields).toMatchObject({ outcome: 'refused', reason: 'GS_ERR_DISPATCH_UNSAFE_PATH', start: 'none' });
      expect(fs.readdirSync(outside)).toEqual([]);
      expect(fs.existsSync(path.join(work, 'target-ran'))).toBe(false);
    });
  });

  it('a target that hangs is killed at the bundle timeout and reported as timeout', async () => {
    const { agent, link, work } = await newAgent();
    const hang = new TextEncoder().encode('#!/bin/sh\necho $$ > hang.pid\nexec sleep 30\n');
    const bundle = center.bundle({ name: 'hang', timeoutMs: 600, target: { bytes: hang, path: 'hang.sh' }, code: 'export default async (ctx) => { await ctx.spawnTarget(); };' });
    const binding = center.bind(agent.msid, bundle);
    expect((await link.run(binding, bundle)).t).toBe('accepted');
    const { report, check } = await link.report(binding);
    expect(check.ok).toBe(true);
    expect(report.fields).toMatchObject({ outcome: 'timeout', reason: 'GS_ERR_DISPATCH_TIMEOUT', start: 'started' });
    const pid = Number(fs.readFileSync(path.join(work, 'hang.pid'), 'utf8'));
    expect(await until(() => !alive(pid), 3_000)).toBe(true);
    // The loader ended with it: a re-run has nothing to run.
    const again = center.bind(agent.msid, bundle, { dispatchId: binding.fields.dispatchId, run: 1 });
    expect(await link.rerun(again)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE' });
  });

  it('cancel ends the running loader (outcome timeout, reason cancelled); a new dispatch supersedes the old one', async () => {
    const { agent, link } = await newAgent();
    const slow = sleeper('slow');
    const b1 = center.bind(agent.msid, slow);
    expect((await link.run(b1, slow)).t).toBe('accepted');
    await new Promise((r) => setTimeout(r, 100));
    await link.channel.send({ t: 'cancel', dispatchId: b1.fields.dispatchId });
    expect((await link.report(b1)).report.fields).toMatchObject({ outcome: 'timeout', reason: 'cancelled' });
    await link.channel.send({ t: 'cancel', dispatchId: b1.fields.dispatchId });
    expect(await link.expect((m) => m.t === 'error')).toMatchObject({ code: 'GS_ERR_DISPATCH_UNKNOWN_DISPATCH' });

    const b2 = center.bind(agent.msid, slow);
    expect((await link.run(b2, slow)).t).toBe('accepted');
    await new Promise((r) => setTimeout(r, 100));
    const quick = center.bundle({ name: 'quick' });
    const b3 = center.bind(agent.msid, quick);
    expect((await link.run(b3, quick)).t).toBe('accepted');
    expect((await link.report(b2)).report.fields).toMatchObject({ outcome: 'timeout', reason: 'superseded' });
    expect((await link.report(b3)).report.fields.outcome).toBe('ran');
  });

  it('a bundle the center lacks, a fetch never answered or cancelled, code that throws, a target that cannot start', async () => {
    const { agent, link } = await newAgent({ fetchTimeoutMs: 200 });
    const unknown = center.bundle({ name: 'nowhere' });
    center.bundles.delete(unknown.digest);
    const b1 = center.bind(agent.msid, unknown);
    expect(await link.run(b1, undefined, false)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE' });
    expect((await link.report(b1)).report.fields.outcome).toBe('refused');

    // A fetch the center never answers: refused at fetchTimeoutMs, or at once by cancel.
    link.silent = true;
    const quiet = center.bundle({ name: 'quiet' });
    const b4 = center.bind(agent.msid, quiet);
    expect(await link.run(b4, undefined, false)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_TIMEOUT' });
    expect((await link.report(b4)).report.fields).toMatchObject({ outcome: 'refused', reason: 'GS_ERR_DISPATCH_TIMEOUT' });
    link.silent = false;
    const patient = await newAgent(); // fetchTimeoutMs 30 s: only cancel ends this fetch
    patient.link.silent = true;
    const b5 = center.bind(patient.agent.msid, quiet);
    await patient.link.channel.send({ t: 'run', binding: b5.encoded, inline: false });
    expect(await until(() => patient.link.fetches === 1)).toBe(true);
    await patient.link.channel.send({ t: 'cancel', dispatchId: b5.fields.dispatchId });
    expect(await patient.link.expect((m) => m.t === 'error' && m.dispatchId === b5.fields.dispatchId)).toMatchObject({ code: 'GS_ERR_DISPATCH_TIMEOUT' });
    expect((await patient.link.report(b5)).report.fields).toMatchObject({ outcome: 'refused', reason: 'cancelled' });

    const thrower = center.bundle({ name: 'thrower', target: undefined, code: "export default async (ctx) => { ctx.log('x'); throw new Error('boom'); };" });
    const b2 = center.bind(agent.msid, thrower);
    expect((await link.run(b2, thrower)).t).toBe('accepted');
    expect((await link.report(b2)).report.fields).toMatchObject({ outcome: 'code-failed', reason: 'boom', start: 'none' });

    const missing = center.bundle({ name: 'nostart', target: { bytes: new TextEncoder().encode('not a program'), path: 'nostart', mode: 0o644 }, code: 'export default async (ctx) => { await ctx.spawnTarget(); };' });
    const b3 = center.bind(agent.msid, missing);
    expect((await link.run(b3, missing)).t).toBe('accepted');
    expect((await link.report(b3)).report.fields).toMatchObject({ outcome: 'start-failed', start: 'failed', exitCode: null });
  });

  it('keeps a report whose channel closed, lists it in the next hello, and drops it on ack', async () => {
    const { agent, link } = await newAgent();
    const slowish = new TextEncoder().encode('#!/bin/sh\nsleep 0.3\necho done\n');
    const bundle = center.bundle({ name: 'later', target: { bytes: slowish, path: 'later.sh' }, code: 'export default async (ctx) => { await ctx.spawnTarget(); };' });
    const binding = center.bind(agent.msid, bundle);
    expect((await link.run(binding, bundle)).t).toBe('accepted');
    await link.close();
    const signed = await new Promise<string>((resolve) => agent.once('report', (r) => resolve(r.encoded)));
    const second = await center.connect(agent);
    expect(second.hello.pending).toEqual([{ report: signed }]);
    await second.ack(binding);
    await until(() => false, 100);
    const third = await center.connect(agent);
    expect(third.hello.pending).toEqual([]);
  });

  it('obeys ack and cancel only on a channel the center key authenticated; anyone else changes nothing', async () => {
    const { agent, link } = await newAgent();
    // A report kept for the center (its channel closed before the report came).
    const quick = center.bundle({ name: 'auth-kept' });
    const kept = center.bind(agent.msid, quick);
    expect((await link.run(kept, quick)).t).toBe('accepted');
    await link.close();
    await new Promise<void>((resolve) => agent.once('report', () => resolve()));
    // A run in progress.
    const slow = sleeper('auth-slow');
    const running = center.bind(agent.msid, slow);
    const owner = await center.connect(agent);
    expect((await owner.run(running, slow)).t).toBe('accepted');

    const forger = generateIdentityKey();
    const peers = [
      await center.connect(agent, { auth: null }), // says nothing
      await center.connect(agent, { auth: forger }), // signs with another key
    ];
    // A third replays an auth made for another connection's challenge.
    const replayer = await center.connect(agent, { auth: null });
    await replayer.channel.send({ t: 'auth', signature: signChannelAuth({ challenge: owner.hello.challenge, agentMsid: agent.msid }, center.key) });
    peers.push(replayer);
    expect(new Set([owner, ...peers].map((p) => p.hello.challenge)).size).toBe(4); // fresh per connection
    expect(peers[1]!.hello.challenge).toMatch(/^[0-9a-f]{64}$/);
    expect(await peers[1]!.expect((m) => m.t === 'error')).toMatchObject({ code: 'GS_ERR_DISPATCH_BAD_SIGNATURE' });
    expect(await replayer.expect((m) => m.t === 'error')).toMatchObject({ code: 'GS_ERR_DISPATCH_BAD_SIGNATURE' });
    for (const peer of peers) {
      await peer.ack(kept);
      expect(await peer.expect((m) => m.t === 'error' && m.dispatchId === kept.fields.dispatchId)).toMatchObject({ code: 'GS_ERR_DISPATCH_BAD_SIGNATURE', run: 0 });
      await peer.channel.send({ t: 'cancel', dispatchId: running.fields.dispatchId });
      expect(await peer.expect((m) => m.t === 'error' && m.dispatchId === running.fields.dispatchId)).toMatchObject({ code: 'GS_ERR_DISPATCH_BAD_SIGNATURE' });
    }
    // Nothing dropped, nothing cancelled: the report is still pending, the run still going.
    const check = await center.connect(agent, { auth: null });
    expect(check.hello.pending).toHaveLength(1);
    expect(owner.inbox.some((m) => m.t === 'report')).toBe(false);
    // The authenticated center's ack and cancel work.
    await owner.ack(kept);
    await owner.channel.send({ t: 'cancel', dispatchId: running.fields.dispatchId });
    expect((await owner.report(running)).report.fields).toMatchObject({ outcome: 'timeout', reason: 'cancelled' });
    const after = await center.connect(agent, { auth: null });
    expect(after.hello.pending.map((p) => p.report)).not.toContain(check.hello.pending[0]!.report);
  });

  it('ends an idle loader after idleLoaderMs', async () => {
    const { agent, link } = await newAgent({ idleLoaderMs: 150 });
    const bundle = center.bundle({ name: 'idle' });
    const binding = center.bind(agent.msid, bundle);
    expect((await link.run(binding, bundle)).t).toBe('accepted');
    await link.report(binding);
    await new Promise((r) => setTimeout(r, 400));
    const again = center.bind(agent.msid, bundle, { dispatchId: binding.fields.dispatchId, run: 1 });
    expect(await link.rerun(again)).toMatchObject({ t: 'error', code: 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE' });
  });

  it('one broken channel does not disturb another, nor the agent', async () => {
    const { agent, link } = await newAgent();
    const warnings: Error[] = [];
    agent.on('warning', (e) => warnings.push(e));
    // A peer that sends junk bytes, and one that sends agent-only messages.
    const [a, b] = memoryPair();
    const served = agent.serve(SockIo.fromStream(b));
    const junk = SockIo.fromStream(a);
    await junk.send(new Uint8Array([0, 0, 0, 9, 0, 200, 1, 2, 3, 4, 5, 6, 7]));
    await served; // the junk channel ended; serve() resolved, did not reject
    const odd = await center.connect(agent);
    await odd.channel.send({ t: 'hello', agentMsid: agent.msid, certificate: 'AA', pending: [], challenge: '0'.repeat(64) });
    expect(await odd.expect((m) => m.t === 'error')).toMatchObject({ code: 'GS_ERR_DISPATCH_MALFORMED' });
    await odd.channel.sock.disconnect();

    // A peer that sends an order and never reads: the agent's answers to it wait, its other channels do not.
    const [c, d] = memoryPair({ highWaterMark: 64 });
    let dropped = false;
    void agent.serve(SockIo.fromStream(d)).then(() => (dropped = true));
    const stuck = center.bundle({ name: 'stuck', target: undefined, code: 'export default async () => {};' });
    c.write(encodeMessage({ t: 'run', binding: center.bind(agent.msid, stuck).encoded, inline: true, body: stuck.bytes }));
    await new Promise((r) => setTimeout(r, 50));
    // …and when it keeps sending orders without reading the answers, the agent drops it.
    expect(dropped).toBe(false);
    const junkOrder = encodeMessage({ t: 'run', binding: 'x', inline: false });
    for (let i = 0; i < 300 && !dropped; i++) c.write(junkOrder);
    expect(await until(() => dropped, 3_000)).toBe(true);

    const bundle = center.bundle({ name: 'still-fine', target: { bytes: ECHO_TARGET, path: 'e.sh' } });
    const binding = center.bind(agent.msid, bundle);
    expect((await link.run(binding, bundle)).t).toBe('accepted');
    expect((await link.report(binding)).check.ok).toBe(true);
    expect(warnings).toEqual([]);
  });
});
