/**
 * The center's pure parts and stores: the per-target state machine, retry
 * delays, the wave plan, and one behaviour suite for every DispatchStore
 * (memory, SQLite in memory, SQLite on a file), plus what only the file
 * can show (reopening keeps everything; a newer schema is refused).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, DispatchError } from '../../src/errors/index.js';
import { MemoryDispatchStore, type DispatchStore, type NewTarget } from '../../src/delivery/dispatch/center/store.js';
import { DISPATCH_SQLITE_SCHEMA_VERSION, SqliteDispatchStore } from '../../src/delivery/dispatch/center/sqlite-store.js';
import { TARGET_STATES, isFinalTargetState, isTargetSuccess, nextTargetState, retryDelay, type TargetEvent } from '../../src/delivery/dispatch/center/target.js';
import { planWaves, waveOf, waveStops } from '../../src/delivery/dispatch/center/waves.js';
import { createRequire } from 'node:module';

const work = mkdtempSync(join(tmpdir(), 'gatesock-center-store-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let files = 0;
const freshFile = () => join(work, `d${++files}`, 'center.sqlite');

const hex = (n: number, width = 64) => n.toString(16).padStart(width, '0');
const digest = (n: number) => `sha256:${hex(n)}`;
const msid = (n: number) => `MSID-${hex(n).toUpperCase()}`;

const OPTIONS = { concurrency: 4, waves: [1, 0.1], failureThreshold: 0.2, retries: 2, backoffMs: 10, maxBackoffMs: 100, timeoutMs: null, connectTimeoutMs: 1000, inlineMaxBytes: 1 << 20 };

describe('target state machine', () => {
  const events: TargetEvent[] = [
    { kind: 'start' },
    { kind: 'issue' },
    { kind: 'accepted' },
    { kind: 'verified' },
    { kind: 'rejected' },
    { kind: 'lost', retry: true },
    { kind: 'lost', retry: false },
    { kind: 'skip' },
    { kind: 'resume' },
  ];

  it('walks the happy path pending → connecting → issued → accepted → verified', () => {
    let s = nextTargetState('pending', { kind: 'start' })!;
    expect(s).toBe('connecting');
    s = nextTargetState(s, { kind: 'issue' })!;
    expect(s).toBe('issued');
    s = nextTargetState(s, { kind: 'accepted' })!;
    expect(s).toBe('accepted');
    expect(nextTargetState(s, { kind: 'verified' })).toBe('verified');
  });

  it('retries a lost attempt while attempts are left, then gives up', () => {
    expect(nextTargetState('issued', { kind: 'lost', retry: true })).toBe('retry-wait');
    expect(nextTargetState('retry-wait', { kind: 'start' })).toBe('connecting');
    expect(nextTargetState('connecting', { kind: 'lost', retry: false })).toBe('gave-up');
    expect(nextTargetState('accepted', { kind: 'rejected' })).toBe('failed');
  });

  it('skips only targets not in flight, and resumes in-flight ones into retry-wait', () => {
    expect(nextTargetState('pending', { kind: 'skip' })).toBe('skipped');
    expect(nextTargetState('retry-wait', { kind: 'skip' })).toBe('skipped');
    expect(nextTargetState('issued', { kind: 'skip' })).toBeUndefined();
    for (const s of ['connecting', 'issued', 'accepted'] as const) expect(nextTargetState(s, { kind: 'resume' })).toBe('retry-wait');
  });

  it('never leaves a final state', () => {
    for (const s of TARGET_STATES.filter(isFinalTargetState)) for (const e of events) expect(nextTargetState(s, e)).toBeUndefined();
  });

  it('counts success as verified, ran, exit 0 only', () => {
    const ok = { state: 'verified', outcome: 'ran', exitCode: 0, signal: null } as const;
    expect(isTargetSuccess(ok)).toBe(true);
    expect(isTargetSuccess({ ...ok, exitCode: null })).toBe(true); // code only, no target program
    expect(isTargetSuccess({ ...ok, exitCode: 1 })).toBe(false);
    expect(isTargetSuccess({ ...ok, exitCode: null, signal: 'SIGKILL' })).toBe(false);
    expect(isTargetSuccess({ ...ok, outcome: 'refused', exitCode: null })).toBe(false);
    expect(isTargetSuccess({ ...ok, state: 'failed' })).toBe(false);
  });

  it('backs off exponentially with jitter in the upper half, capped', () => {
    expect(retryDelay(1, 100, 10_000, () => 0)).toBe(50);
    expect(retryDelay(1, 100, 10_000, () => 0.999)).toBe(99);
    expect(retryDelay(4, 100, 10_000, () => 0)).toBe(400);
    expect(retryDelay(30, 100, 1000, () => 0.5)).toBe(750);
  });
});

describe('waves', () => {
  it('plans [1, 10 %, rest] and always sums to the fleet', () => {
    expect(planWaves(50, [1, 0.1])).toEqual([1, 5, 44]);
    expect(planWaves(3, [1, 0.1])).toEqual([1, 1, 1]);
    expect(planWaves(1, [1, 0.1])).toEqual([1]);
    expect(planWaves(0, [1, 0.1])).toEqual([]);
    expect(planWaves(10, [])).toEqual([10]);
    expect(planWaves(10, [4, 4, 4])).toEqual([4, 4, 2]);
    for (let n = 0; n < 200; n += 7) expect(planWaves(n, [2, 0.25, 0.5]).reduce((a, b) => a + b, 0)).toBe(n);
  });

  it('refuses a bad spec by name', () => {
    expect(() => planWaves(10, [0])).toThrow(ConfigError);
    expect(() => planWaves(10, [1.5])).toThrow(/waves/);
    expect(() => planWaves(10, [-1])).toThrow(ConfigError);
  });

  it('maps indexes to waves and stops above the threshold only', () => {
    const sizes = [1, 5, 44];
    expect([0, 1, 5, 6, 49].map((i) => waveOf(i, sizes))).toEqual([0, 1, 1, 2, 2]);
    expect(waveStops(1, 5, 0.2)).toBe(false);
    expect(waveStops(2, 5, 0.2)).toBe(true);
    expect(waveStops(1, 1, 0.2)).toBe(true);
    expect(waveStops(5, 5, 1)).toBe(false);
  });
});

function describeStore(name: string, open: () => Promise<DispatchStore>): void {
  describe(`DispatchStore: ${name}`, () => {
    let store: DispatchStore;
    beforeEach(async () => {
      store = await open();
      store.putBundle({ digest: digest(1), name: 'tool', version: 3, size: 1234, metadata: '{"name":"tool"}', createdAt: 1000 });
    });
    afterEach(async () => {
      await store.close();
    });

    const targets: NewTarget[] = [
      { msid: msid(1), pcid: 'a1', wave: 0 },
      { msid: msid(2), pcid: 'a2', wave: 1 },
      { msid: msid(3), pcid: 'a3', wave: 1 },
    ];
    const create = (id = hex(7, 32)) => store.createDispatch({ id, bundle: digest(1), options: OPTIONS, createdAt: 2000 }, { args: ['--x'], waves: [1, 2], createdAt: 2000 }, targets);

    it('keeps bundles once, by digest', () => {
      store.putBundle({ digest: digest(1), name: 'other', version: 9, size: 1, metadata: '{}', createdAt: 5 });
      expect(store.getBundle(digest(1))).toMatchObject({ name: 'tool', version: 3, size: 1234, createdAt: 1000 });
      expect(store.getBundle(digest(2))).toBeUndefined();
    });

    it('creates a dispatch with run 0 and its pending targets in order', () => {
      create();
      const id = hex(7, 32);
      expect(store.getDispatch(id)).toEqual({ id, bundle: digest(1), options: OPTIONS, state: 'running', createdAt: 2000, lastRun: 0 });
      expect(store.getRun(id, 0)).toEqual({ dispatchId: id, run: 0, args: ['--x'], state: 'running', wave: 0, waves: [1, 2], createdAt: 2000, endedAt: null });
      const rows = store.listTargets(id, 0);
      expect(rows.map((t) => t.msid)).toEqual([msid(1), msid(2), msid(3)]);
      expect(rows[0]).toMatchObject({ pcid: 'a1', wave: 0, state: 'pending', attempts: 0, evidence: null, outcome: null });
      expect(store.listTargets(id, 0, { wave: 1 }).map((t) => t.pcid)).toEqual(['a2', 'a3']);
      expect(store.countTargets(id, 0)).toMatchObject({ pending: 3, verified: 0 });
    });

    it('refuses an unknown bundle, a duplicate agent and a duplicate id', () => {
      expect(() => store.createDispatch({ id: hex(8, 32), bundle: digest(9), options: OPTIONS, createdAt: 1 }, { args: null, waves: [1], createdAt: 1 }, targets)).toThrow(DispatchError);
      expect(() =>
        store.createDispatch({ id: hex(8, 32), bundle: digest(1), options: OPTIONS, createdAt: 1 }, { args: null, waves: [2], createdAt: 1 }, [targets[0]!, targets[0]!]),
      ).toThrow(/twice/);
      expect(store.getDispatch(hex(8, 32))).toBeUndefined();
      create();
      expect(() => create()).toThrow(/already exists/);
    });

    it('updates targets and runs, and follows the latest run in the dispatch state', () => {
      create();
      const id = hex(7, 32);
      const key = { dispatchId: id, run: 0, msid: msid(2) };
      store.updateTarget(key, { state: 'retry-wait', attempts: 1, nextAttemptAt: 5000, reason: 'offline' }, 3000);
      expect(store.getTarget(key)).toMatchObject({ state: 'retry-wait', attempts: 1, nextAttemptAt: 5000, reason: 'offline', updatedAt: 3000 });
      store.updateTarget(key, { nextAttemptAt: null }, 3001);
      expect(store.getTarget(key)!.nextAttemptAt).toBeNull();
      expect(() => store.updateTarget({ ...key, msid: msid(9) }, { state: 'failed' }, 1)).toThrow(DispatchError);
      store.updateRun(id, 0, { wave: 1 });
      store.updateRun(id, 0, { state: 'done', endedAt: 9000 });
      expect(store.getRun(id, 0)).toMatchObject({ wave: 1, state: 'done', endedAt: 9000 });
      expect(store.getDispatch(id)!.state).toBe('done');
      expect(store.listDispatches({ unfinished: true })).toEqual([]);
      const n = store.createRun(id, { args: ['--y'], waves: [1], createdAt: 9500 }, [targets[0]!]);
      expect(n).toBe(1);
      expect(store.getDispatch(id)).toMatchObject({ state: 'running', lastRun: 1 });
      expect(store.listDispatches({ unfinished: true }).map((d) => d.id)).toEqual([id]);
      expect(store.listRuns(id).map((r) => [r.run, r.state, r.args])).toEqual([
        [0, 'done', ['--x']],
        [1, 'running', ['--y']],
      ]);
      expect(store.listTargets(id, 1).map((t) => t.msid)).toEqual([msid(1)]);
    });

    it('issues evidence once, supersedes the previous, and accepts a report', () => {
      create();
      const id = hex(7, 32);
      const key = { dispatchId: id, run: 0, msid: msid(1) };
      store.issueEvidence(key, hex(100), 4000);
      expect(store.getTarget(key)).toMatchObject({ evidence: hex(100), issuedAt: 4000 });
      store.issueEvidence(key, hex(101), 4100);
      expect(store.findEvidence(key, hex(100))).toMatchObject({ status: 'superseded', issuedAt: 4000 });
      expect(store.findEvidence(key, hex(101))).toMatchObject({ status: 'current' });
      expect(store.findEvidence({ ...key, msid: msid(2) }, hex(101))).toBeUndefined();
      expect(() => store.issueEvidence({ ...key, msid: msid(2) }, hex(100), 4200)).toThrow(/only once/);
      // The agent refused the re-issue (it still holds the first order): the first value is current again.
      store.reinstateEvidence(key, hex(100), 4150);
      expect(store.getTarget(key)).toMatchObject({ evidence: hex(100), issuedAt: 4000 });
      expect(store.findEvidence(key, hex(100))!.status).toBe('current');
      expect(store.findEvidence(key, hex(101))!.status).toBe('superseded');
      expect(() => store.reinstateEvidence({ ...key, msid: msid(2) }, hex(101), 4160)).toThrow(DispatchError);
      store.issueEvidence(key, hex(102), 4200);
      expect(store.findEvidence(key, hex(100))!.status).toBe('superseded');
      store.reinstateEvidence(key, hex(101), 4250);
      store.issueEvidence(key, hex(103), 4260);
      store.reinstateEvidence(key, hex(101), 4270);
      store.acceptReport(key, { state: 'verified', outcome: 'ran', exitCode: null, signal: 'SIGTERM', report: 'rep', certificate: 'cert' }, 4300);
      expect(store.getTarget(key)).toMatchObject({ state: 'verified', outcome: 'ran', exitCode: null, signal: 'SIGTERM', report: 'rep', certificate: 'cert', evidence: hex(101) });
      expect(store.findEvidence(key, hex(101))!.status).toBe('accepted');
      for (const v of [100, 102, 103]) expect(store.findEvidence(key, hex(v))!.status).toBe('superseded');
    });

    it('applies a patch given with issued evidence in the same step, and nothing when it is refused', () => {
      create();
      const key = { dispatchId: hex(7, 32), run: 0, msid: msid(1) };
      store.updateTarget(key, { state: 'connecting', attempts: 1 }, 3900);
      store.issueEvidence(key, hex(110), 4000, { state: 'issued', reason: 'reissued after timeout' });
      expect(store.getTarget(key)).toMatchObject({ state: 'issued', attempts: 1, reason: 'reissued after timeout', evidence: hex(110), issuedAt: 4000, updatedAt: 4000 });
      // A reused value throws before anything changes: the patch is not applied either.
      expect(() => store.issueEvidence(key, hex(110), 4100, { state: 'accepted' })).toThrow(/only once/);
      expect(store.getTarget(key)).toMatchObject({ state: 'issued', evidence: hex(110), updatedAt: 4000 });
    });

    it('records failures per dispatch, in order', () => {
      store.recordFailure({ dispatchId: 'a', run: 0, msid: msid(1), at: 1, reason: 'wrong-evidence', message: 'm1' });
      store.recordFailure({ dispatchId: null, run: null, msid: msid(2), at: 2, reason: 'malformed', message: 'm2' });
      store.recordFailure({ dispatchId: 'a', run: 1, msid: msid(3), at: 3, reason: 'replayed', message: 'm3' });
      expect(store.listFailures('a').map((f) => f.reason)).toEqual(['wrong-evidence', 'replayed']);
      expect(store.listFailures().map((f) => f.message)).toEqual(['m1', 'm2', 'm3']);
    });

    it('refuses calls after close', async () => {
      await store.close();
      expect(() => store.getDispatch('x')).toThrow(expect.objectContaining({ code: 'GS_ERR_DISPATCH_CLOSED' }));
      store = await open();
    });
  });
}

describeStore('memory', async () => new MemoryDispatchStore());
describeStore('sqlite :memory:', () => SqliteDispatchStore.open(':memory:'));
describeStore('sqlite file', () => SqliteDispatchStore.open(freshFile()));

describe('SqliteDispatchStore file', () => {
  it('keeps everything across a reopen', async () => {
    const file = freshFile();
    let store = await SqliteDispatchStore.open(file);
    store.putBundle({ digest: digest(1), name: 'tool', version: 1, size: 10, metadata: '{}', createdAt: 1 });
    store.createDispatch({ id: hex(1, 32), bundle: digest(1), options: OPTIONS, createdAt: 2 }, { args: null, waves: [1], createdAt: 2 }, [{ msid: msid(1), pcid: 'p', wave: 0 }]);
    store.issueEvidence({ dispatchId: hex(1, 32), run: 0, msid: msid(1) }, hex(55), 3);
    store.updateTarget({ dispatchId: hex(1, 32), run: 0, msid: msid(1) }, { state: 'issued', attempts: 1 }, 3);
    await store.close();
    store = await SqliteDispatchStore.open(file);
    expect(store.listDispatches({ unfinished: true }).map((d) => d.options)).toEqual([OPTIONS]);
    expect(store.getTarget({ dispatchId: hex(1, 32), run: 0, msid: msid(1) })).toMatchObject({ state: 'issued', attempts: 1, evidence: hex(55), issuedAt: 3 });
    await store.close();
  });

  it('refuses a file with a newer schema, and a file that is not a dispatch store', async () => {
    const file = freshFile();
    await (await SqliteDispatchStore.open(file)).close();
    const Raw = createRequire(import.meta.url)('better-sqlite3') as new (p: string) => { pragma(s: string): unknown; exec(s: string): void; close(): void };
    let raw = new Raw(file);
    raw.pragma(`user_version = ${DISPATCH_SQLITE_SCHEMA_VERSION + 1}`);
    raw.close();
    await expect(SqliteDispatchStore.open(file)).rejects.toThrow(/newer/);
    const other = freshFile();
    (await import('node:fs')).mkdirSync(join(other, '..'), { recursive: true });
    raw = new Raw(other);
    raw.exec('CREATE TABLE targets (x INTEGER)');
    raw.close();
    await expect(SqliteDispatchStore.open(other)).rejects.toThrow(ConfigError);
  });
});
