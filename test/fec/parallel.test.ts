/**
 * ParallelReedSolomon: the same bytes as ReedSolomon (encode and
 * reconstruct, random shapes and erasures, ordinary and SharedArrayBuffer
 * shards, lengths below the threshold and not divisible by the thread
 * count), the same typed errors before any worker starts, close(), and a
 * process that is not held open by an idle pool.
 *
 * Runs from source, so the worker is the BUILT one in dist (`npm test`
 * builds first); without it these tests fail, asking for `npm run build`.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FecError } from '../../src/errors/index.js';
import { ParallelReedSolomon, createParallelReedSolomon } from '../../src/fec/parallel.js';
import { ReedSolomon } from '../../src/fec/reed-solomon.js';

const workerUrl = new URL('../../dist/fec/parallel-worker.js', import.meta.url);
const repo = fileURLToPath(new URL('../..', import.meta.url));

beforeAll(() => {
  if (!existsSync(fileURLToPath(workerUrl))) {
    throw new Error(`${fileURLToPath(workerUrl)} is missing: run \`npm run build\` first (npm test does)`);
  }
});

const open: ParallelReedSolomon[] = [];
/** A codec whose workers are ended after the file. */
function codec(k: number, m: number, opts: { threads?: number; minShardLength?: number } = {}): ParallelReedSolomon {
  const p = createParallelReedSolomon(k, m, { workerUrl, ...opts });
  open.push(p);
  return p;
}
afterAll(async () => {
  await Promise.all(open.map((p) => p.close()));
});

/** Deterministic pseudo-random shards, ordinary or SharedArrayBuffer-backed. */
function shards(count: number, len: number, seed: number, shared = false): Uint8Array[] {
  let x = seed | 1;
  return Array.from({ length: count }, () => {
    const s = shared ? new Uint8Array(new SharedArrayBuffer(len)) : new Uint8Array(len);
    for (let i = 0; i < len; i++) s[i] = (x = (Math.imul(x, 1103515245) + 12345) | 0) >>> 23;
    return s;
  });
}

const same = (a: readonly (Uint8Array | null | undefined)[], b: readonly (Uint8Array | null | undefined)[]) =>
  a.length === b.length && a.every((s, i) => s && b[i] && Buffer.from(s).equals(Buffer.from(b[i]!)));

/** The error `f` throws or rejects with (undefined if none). */
async function caught(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** Same class, same FEC code, same message. */
function sameError(ours: unknown, theirs: unknown): void {
  expect(theirs).toBeDefined();
  expect(ours).toBeDefined();
  expect((ours as Error).constructor).toBe((theirs as Error).constructor);
  expect((ours as FecError).code).toBe((theirs as FecError).code);
  expect((ours as Error).message).toBe((theirs as Error).message);
}

describe('ParallelReedSolomon encode', () => {
  it('gives ReedSolomon’s parity for random k, m and lengths (sliced across 3 workers and this thread)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 40_000 }),
        fc.boolean(),
        fc.integer(),
        async (k, m, len, shared, seed) => {
          // minShardLength 0: every length that can be cut is cut, odd ones included.
          const p = createParallelReedSolomon(k, m, { workerUrl, threads: 3, minShardLength: 0 });
          try {
            const data = shards(k, len, seed, shared);
            const expected = new ReedSolomon(k, m).encode(data);
            expect(same(await p.encode(data), expected)).toBe(true);
            const into = shards(m, len, seed + 1, shared);
            const out = await p.encode(data, into);
            expect(out).toBe(into);
            expect(same(into, expected)).toBe(true);
          } finally {
            await p.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('cuts at the default threshold: 64 KiB + odd lengths in parallel, shorter ones inline, both exact', async () => {
    const p = codec(10, 4, { threads: 2 });
    const rs = new ReedSolomon(10, 4);
    expect(p.minShardLength).toBe(65536);
    for (const len of [1, 3, 1400, 65535]) {
      const data = shards(10, len, len);
      expect(same(await p.encode(data), rs.encode(data))).toBe(true);
    }
    expect(p.runningWorkers).toBe(0); // nothing below the threshold started a worker
    for (const len of [65536, 65536 + 1, 65536 * 3 + 5, 200_003]) {
      const data = shards(10, len, len, len % 2 === 0);
      expect(same(await p.encode(data), rs.encode(data))).toBe(true);
    }
    expect(p.runningWorkers).toBe(2);
  });

  it('takes SharedArrayBuffer data and parity as they are, subarrays at odd offsets included', async () => {
    const p = codec(5, 3, { threads: 2, minShardLength: 0 });
    const len = 10_007;
    const sab = new SharedArrayBuffer(8 * len + 8);
    const views = Array.from({ length: 8 }, (_, i) => new Uint8Array(sab, 1 + i * len, len));
    const src = shards(5, len, 7);
    src.forEach((s, i) => views[i]!.set(s));
    const data = views.slice(0, 5);
    const parity = views.slice(5);
    await p.encode(data, parity);
    expect(same(parity, new ReedSolomon(5, 3).encode(src))).toBe(true);
    expect(same(data, src)).toBe(true); // data only read
  });

  it('serves concurrent jobs without mixing their buffers', async () => {
    const p = codec(6, 3, { threads: 2, minShardLength: 0 });
    const rs = new ReedSolomon(6, 3);
    const blocks = Array.from({ length: 8 }, (_, i) => shards(6, 40_000 + i * 97, i + 1));
    const results = await Promise.all(blocks.map((d) => p.encode(d)));
    blocks.forEach((d, i) => expect(same(results[i]!, rs.encode(d))).toBe(true));
  });
});

describe('ParallelReedSolomon reconstruct', () => {
  it('gives ReedSolomon’s shards for random erasures (≤ m lost), with and without dataOnly', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 40_000 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer(),
        fc.array(fc.nat(), { maxLength: 12 }),
        async (k, m, len, shared, dataOnly, seed, picks) => {
          const p = createParallelReedSolomon(k, m, { workerUrl, threads: 2, minShardLength: 0 });
          const rs = new ReedSolomon(k, m);
          const data = shards(k, len, seed, shared);
          try {
          const full = [...data, ...rs.encode(data)];
          const lost = new Set(picks.slice(0, m).map((x) => x % (k + m)));
          const holed = () => full.map((s, i) => (lost.has(i) ? null : s));
          const expected = rs.reconstruct(holed(), { dataOnly });
          const got = holed();
          const ret = await p.reconstruct(got, { dataOnly });
          expect(ret).toBe(got);
          expect(got.map((s) => s === null)).toEqual(expected.map((s) => s === null));
          expect(same(got.filter(Boolean), expected.filter(Boolean))).toBe(true);
          expect(same(got.slice(0, k), data)).toBe(true);
          if (!dataOnly) expect(same(got, full)).toBe(true);
          } finally {
            await p.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('rebuilds m lost data shards of 1 MiB blocks above the default threshold', async () => {
    const p = codec(10, 4);
    const rs = new ReedSolomon(10, 4);
    const data = shards(10, 1 << 20, 3);
    const full = [...data, ...rs.encode(data)];
    const holed = full.map((s, i) => (i < 2 || i === 11 || i === 13 ? null : s));
    await p.reconstruct(holed);
    expect(same(holed, full)).toBe(true);
  });
});

describe('ParallelReedSolomon bad input', () => {
  const k = 4;
  const m = 2;
  const big = 128; // above minShardLength 0: the parallel path's own checks
  const ok = () => shards(k, big, 1);

  const cases: [string, (c: ReedSolomon | ParallelReedSolomon) => unknown][] = [
    ['too few data shards', (c) => c.encode(ok().slice(1))],
    ['too many data shards', (c) => c.encode([...ok(), new Uint8Array(big)])],
    ['mismatched lengths', (c) => c.encode([...ok().slice(1), new Uint8Array(big + 1)])],
    ['an empty shard', (c) => c.encode([...ok().slice(1), new Uint8Array(0)])],
    ['not a Uint8Array', (c) => c.encode([...ok().slice(1), [1, 2] as unknown as Uint8Array])],
    ['parity of the wrong count', (c) => c.encode(ok(), [new Uint8Array(big)])],
    ['parity of the wrong length', (c) => c.encode(ok(), [new Uint8Array(big), new Uint8Array(big - 1)])],
    [
      'parity overlapping data',
      (c) => {
        const d = ok();
        return c.encode(d, [d[2]!.subarray(0), new Uint8Array(big)]);
      },
    ],
    [
      'parity overlapping parity',
      (c) => {
        const buf = new Uint8Array(big * 2);
        return c.encode(ok(), [buf.subarray(0, big), buf.subarray(big / 2, big / 2 + big)]);
      },
    ],
    ['reconstruct with too few shards', (c) => c.reconstruct([...ok().slice(0, 3), null, null, null])],
    ['reconstruct with the wrong slot count', (c) => c.reconstruct([...ok(), null])],
    ['reconstruct with mismatched lengths', (c) => c.reconstruct([...ok().slice(0, 3), new Uint8Array(big + 1), null, null])],
  ];

  for (const [name, call] of cases) {
    it(`rejects ${name} with ReedSolomon’s error, before starting any worker`, async () => {
      const p = codec(k, m, { threads: 2, minShardLength: 0 });
      const theirs = await caught(() => call(new ReedSolomon(k, m)));
      const ours = await caught(() => call(p));
      sameError(ours, theirs);
      expect(p.runningWorkers).toBe(0);
      // The promise form: a rejection, not a synchronous throw.
      const promise = call(p) as Promise<unknown>;
      expect(promise).toBeInstanceOf(Promise);
      await expect(promise).rejects.toBeInstanceOf(Error);
    });
  }

  it('rejects bad parameters and options with GS_ERR_FEC_INVALID_PARAMS', () => {
    for (const [kk, mm] of [[0, 1], [1, 0], [200, 57], [1.5, 2]] as const) {
      const theirs = (() => { try { new ReedSolomon(kk, mm); } catch (e) { return e; } })();
      const ours = (() => { try { new ParallelReedSolomon(kk, mm); } catch (e) { return e; } })();
      sameError(ours, theirs);
    }
    for (const opts of [{ threads: 0 }, { threads: 1.5 }, { minShardLength: -1 }, { decodeCacheSize: -1 }]) {
      expect(() => new ParallelReedSolomon(4, 2, opts)).toThrow(FecError);
      try {
        new ParallelReedSolomon(4, 2, opts);
      } catch (e) {
        expect((e as FecError).code).toBe('GS_ERR_FEC_INVALID_PARAMS');
      }
    }
  });
});

describe('ParallelReedSolomon threads', () => {
  it('defaults to availableParallelism() - 1 workers, at least 1', async () => {
    const { availableParallelism } = await import('node:os');
    expect(new ParallelReedSolomon(4, 2).threads).toBe(Math.max(1, availableParallelism() - 1));
  });

  it('close() ends the workers; later calls still give the right bytes, in this thread', async () => {
    const p = createParallelReedSolomon(8, 3, { workerUrl, threads: 2, minShardLength: 0 });
    const data = shards(8, 70_000, 5);
    const expected = new ReedSolomon(8, 3).encode(data);
    expect(same(await p.encode(data), expected)).toBe(true);
    expect(p.runningWorkers).toBe(2);
    await p.close();
    expect(p.runningWorkers).toBe(0);
    expect(same(await p.encode(data), expected)).toBe(true);
    expect(p.runningWorkers).toBe(0);
    await p.destroy(); // idempotent
  });

  it('a job cut off by close() rejects instead of returning partial bytes', async () => {
    const p = createParallelReedSolomon(8, 3, { workerUrl, threads: 1 });
    const job = p.encode(shards(8, 1 << 20, 9)); // fresh pool: the worker is still starting
    await p.close();
    await expect(job).rejects.toThrow(/worker/);
  });

  it('a bad workerUrl rejects the job', async () => {
    const p = createParallelReedSolomon(4, 2, { workerUrl: pathToFileURL(join(repo, 'no-such-worker.js')), minShardLength: 0 });
    await expect(p.encode(shards(4, 1000, 1))).rejects.toThrow();
    await p.close();
  });

  describe('process lifetime (child processes)', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'gatesock-parallel-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /** Run a TypeScript script (through tsx) that imports the source module; resolve with stdout. */
    async function child(body: string): Promise<string> {
      const file = join(dir, `child-${Math.random().toString(36).slice(2)}.mts`);
      const src = pathToFileURL(join(repo, 'src/fec/parallel.ts')).href;
      writeFileSync(
        file,
        `import { ParallelReedSolomon } from ${JSON.stringify(src)};\n` +
          `const workerUrl = new URL(${JSON.stringify(workerUrl.href)});\n` +
          `const data = Array.from({ length: 10 }, (_, i) => new Uint8Array(1 << 20).fill(i + 1));\n${body}\n`,
      );
      const env = { ...process.env };
      delete env.NODE_OPTIONS;
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], { cwd: repo, env, timeout: 15_000 });
      return stdout;
    }

    it('an idle pool that was never closed does not keep the process alive', async () => {
      const out = await child(
        `const p = new ParallelReedSolomon(10, 4, { workerUrl, threads: 2 });\n` +
          `const parity = await p.encode(data);\nconsole.log(p.runningWorkers, parity.length);`,
      );
      expect(out.trim()).toBe('2 4'); // and it exited by itself, well within the timeout
    });

    it('a pending job keeps the process alive until it settles (top-level await)', async () => {
      const out = await child(
        // A warm, idle (unref'd) worker first: a worker that is still starting holds the process anyway.
        `const p = new ParallelReedSolomon(10, 4, { workerUrl, threads: 1 });\nawait p.encode(data);\n` +
          `await new Promise((r) => setTimeout(r, 100));\n` +
          `const big = Array.from({ length: 10 }, (_, i) => new Uint8Array(8 << 20).fill(i + 1));\n` +
          `const parity = await p.encode(big);\nawait p.reconstruct([null, ...big.slice(1), ...parity]);\nconsole.log('done');`,
      );
      expect(out.trim()).toBe('done');
    });
  });
});
