/**
 * The loader through the InlineExecutor, without an agent in front: it
 * re-verifies what the agent checked (a loader must not trust its parent),
 * digests all of a target's output while keeping only the first MiB, and
 * queues re-runs behind a run in progress.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createServerIdentity, generateIdentityKey } from '../../src/session/index.js';
import { InlineExecutor, type LoaderJob } from '../../src/delivery/dispatch/agent/index.js';
import { TestCenter, tempDir } from './fixtures/agent/harness.js';

const center = new TestCenter();
const agent = createServerIdentity();
const executor = new InlineExecutor();
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function job(bundleBytes: Uint8Array, binding: string, more: Partial<LoaderJob> = {}): LoaderJob {
  const workDir = tempDir('agent-loader');
  dirs.push(workDir);
  return { bundle: bundleBytes, binding, centerKey: center.key.publicKey, agentMsid: agent.msid, workDir, minVersion: 0, ...more };
}

describe('loader', () => {
  it('re-verifies bundle and binding itself', async () => {
    const bundle = center.bundle({ name: 'loader-check', version: 4 });
    const good = center.bind(agent.msid, bundle);
    const tampered = bundle.bytes.slice();
    tampered[tampered.length - 2]! ^= 1;
    const cases: [string, LoaderJob][] = [
      ['GS_ERR_DISPATCH_DIGEST_MISMATCH', job(tampered, good.encoded)],
      ['GS_ERR_DISPATCH_BAD_SIGNATURE', job(bundle.bytes, good.encoded, { centerKey: generateIdentityKey().publicKey })],
      ['GS_ERR_DISPATCH_WRONG_AGENT', job(bundle.bytes, good.encoded, { agentMsid: createServerIdentity().msid })],
      ['GS_ERR_DISPATCH_ROLLBACK', job(bundle.bytes, good.encoded, { minVersion: 5 })],
      ['GS_ERR_DISPATCH_DIGEST_MISMATCH', job(center.bundle({ name: 'loader-other' }).bytes, good.encoded)],
    ];
    for (const [code, j] of cases) {
      const handle = executor.start(j);
      const result = await handle.result;
      expect(result).toMatchObject({ outcome: 'refused', reason: code, start: 'none', dispatchId: good.fields.dispatchId });
      expect(fs.readdirSync(j.workDir)).toEqual([]);
      expect(handle.alive).toBe(false);
      await expect(handle.rerun(good.encoded)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE' });
    }
    expect(() => executor.start(job(bundle.bytes, 'garbage'))).toThrow(expect.objectContaining({ code: 'GS_ERR_DISPATCH_MALFORMED' }));
  });

  it('digests all output and keeps the first MiB; code without a default export is code-failed', async () => {
    const big = new TextEncoder().encode('#!/bin/sh\nhead -c 3000000 /dev/zero\n');
    const bundle = center.bundle({
      name: 'loader-big',
      target: { bytes: big, path: 'big.sh' },
      code: "export default async (ctx) => { const r = await ctx.spawnTarget(); ctx.log(r.stdoutBytes.length + ' ' + r.truncated + ' ' + r.stdout.size); };",
    });
    const lines: string[] = [];
    const binding = center.bind(agent.msid, bundle);
    const handle = executor.start(job(bundle.bytes, binding.encoded), { log: (m) => lines.push(m) });
    const result = await handle.result;
    expect(result).toMatchObject({ outcome: 'ran', exitCode: 0 });
    expect(result.stdout).toEqual({ digest: `sha256:${createHash('sha256').update(Buffer.alloc(3_000_000)).digest('hex')}`, size: 3_000_000 });
    expect(lines).toEqual([`${1024 * 1024} true 3000000`]);
    await handle.kill('done');

    const noDefault = center.bundle({ name: 'loader-nodefault', target: undefined, code: 'export const x = 1;' });
    const r2 = await executor.start(job(noDefault.bytes, center.bind(agent.msid, noDefault).encoded)).result;
    expect(r2).toMatchObject({ outcome: 'code-failed', reason: 'GS_ERR_DISPATCH_MALFORMED' });
  });

  it('code that never settles is ended at the timeout; a failed run leaves the code loaded for a re-run', async () => {
    const hung = center.bundle({ name: 'loader-hung', target: undefined, timeoutMs: 150, code: 'export default () => new Promise(() => {});' });
    const b0 = center.bind(agent.msid, hung);
    const h0 = executor.start(job(hung.bytes, b0.encoded));
    expect(await h0.result).toMatchObject({ outcome: 'timeout', reason: 'GS_ERR_DISPATCH_TIMEOUT', start: 'none' });
    expect(h0.alive).toBe(false);

    const flaky = center.bundle({ name: 'loader-flaky', target: undefined, code: "export default async (ctx) => { if (ctx.args[0] !== 'ok') throw new Error('bad args'); };" });
    const b1 = center.bind(agent.msid, flaky);
    const h1 = executor.start(job(flaky.bytes, b1.encoded));
    expect(await h1.result).toMatchObject({ outcome: 'code-failed', reason: 'bad args' });
    expect(h1.alive).toBe(true);
    const b2 = center.bind(agent.msid, flaky, { dispatchId: b1.fields.dispatchId, run: 1, args: ['ok'] });
    expect(await h1.rerun(b2.encoded)).toMatchObject({ outcome: 'ran', run: 1, evidence: b2.fields.evidence });
    await h1.kill('done');
  });

  it('queues a re-run behind the run in progress, each with its own evidence', async () => {
    const slow = new TextEncoder().encode('#!/bin/sh\nsleep 0.2\necho "$1" >> order.log\n');
    const bundle = center.bundle({ name: 'loader-queue', target: { bytes: slow, path: 'slow.sh', args: ['first'] }, code: 'export default async (ctx) => { await ctx.spawnTarget(); };' });
    const b0 = center.bind(agent.msid, bundle);
    const j = job(bundle.bytes, b0.encoded);
    const handle = executor.start(j);
    const b1 = center.bind(agent.msid, bundle, { dispatchId: b0.fields.dispatchId, run: 1, args: ['second'] });
    const [r0, r1] = await Promise.all([handle.result, handle.rerun(b1.encoded)]);
    expect([r0.evidence, r1.evidence]).toEqual([b0.fields.evidence, b1.fields.evidence]);
    expect([r0.outcome, r1.outcome]).toEqual(['ran', 'ran']);
    expect(r1.startedAt).toBeGreaterThanOrEqual(r0.endedAt);
    expect(fs.readFileSync(path.join(j.workDir, 'order.log'), 'utf8')).toBe('first\nsecond\n');
    await handle.kill('done');
    expect(handle.alive).toBe(false);
  });
});
