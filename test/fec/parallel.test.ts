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
import { findBatchOverlap } from '../../src/fec/rs8-support.js';

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

/** A block with up to m shards lost (seeded picks), as ReedSolomon would be given it. */
function holed(full: readonly Uint8Array[], m: number, picks: readonly number[]): (Uint8Array | null)[] {
  const lost = new Set(picks.slice(0, m).map((x) => x % full.length));
  return full.map((s, i) => (lost.has(i) ? null : s));
}

describe('ParallelReedSolomon reconstruct into caller outputs', () => {
  it('writes the shards it fills into `into` (shared or not), with ReedSolomon’s bytes; ReedSolomon takes `into` too', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 40_000 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer(),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (k, m, len, shared, dataOnly, seed, picks) => {
          const rs = new ReedSolomon(k, m);
          const p = createParallelReedSolomon(k, m, { workerUrl, threads: 2, minShardLength: 0 });
          try {
            const data = shards(k, len, seed);
            const full = [...data, ...rs.encode(data)];
            const expected = rs.reconstruct(holed(full, m, picks), { dataOnly });
            for (const codec of [rs, p]) {
              const into = shards(k + m, len, seed + 5, shared);
              const got = holed(full, m, picks);
              const missing = got.map((s, i) => (s === null ? i : -1)).filter((i) => i >= 0);
              await codec.reconstruct(got, { dataOnly, into });
              expect(same(got.filter(Boolean), expected.filter(Boolean))).toBe(true);
              for (const i of missing) {
                if (dataOnly && i >= k) expect(got[i]).toBeNull();
                else expect(got[i]).toBe(into[i]); // written in place, no fresh array
              }
            }
          } finally {
            await p.close();
          }
        },
      ),
      { numRuns: 30 },
    );
  });
});

/** Blocks of random lengths (some long enough to be cut into chunks), ordinary or shared. */
function batch(k: number, lens: readonly number[], seed: number, shared: (b: number) => boolean): Uint8Array[][] {
  return lens.map((len, b) => shards(k, len, seed + b * 7919, shared(b)));
}

describe('ParallelReedSolomon encodeBlocks', () => {
  it('gives ReedSolomon’s parity for every block of random batches (lengths, shared or not, into given outputs or fresh)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.oneof(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 8000, max: 30_000 })), { minLength: 0, maxLength: 12 }),
        fc.integer(),
        fc.boolean(),
        async (k, m, lens, seed, into) => {
          const p = createParallelReedSolomon(k, m, { workerUrl, threads: 2, minShardLength: 0 });
          const rs = new ReedSolomon(k, m);
          try {
            const blocks = batch(k, lens, seed, (b) => (seed + b) % 3 === 0);
            const expected = blocks.map((d) => rs.encode(d));
            const outputs = into ? lens.map((len, b) => shards(m, len, seed - b, (seed + b) % 2 === 0)) : undefined;
            const got = await p.encodeBlocks(blocks, outputs);
            expect(got.length).toBe(blocks.length);
            got.forEach((parity, b) => {
              expect(same(parity, expected[b]!)).toBe(true);
              if (outputs) expect(parity).toBe(outputs[b]);
            });
            // Data only read.
            expect(blocks.every((d, b) => same(d, batch(k, lens, seed, () => false)[b]!))).toBe(true);
          } finally {
            await p.close();
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it('spreads a batch of RS(64,8) x 1,400 B blocks over the workers (default threads and threshold)', async () => {
    const p = codec(64, 8);
    const rs = new ReedSolomon(64, 8);
    const blocks = batch(64, Array.from({ length: 48 }, () => 1400), 11, (b) => b % 2 === 0);
    expect(48 * 1400).toBeGreaterThanOrEqual(p.minShardLength);
    // Until the workers have computed some blocks (under load a worker may wake after this thread took them all).
    for (let call = 0; call < 20 && (call === 0 || p.piecesOnWorkers === 0); call++) {
      const got = await p.encodeBlocks(blocks);
      blocks.forEach((d, b) => expect(same(got[b]!, rs.encode(d))).toBe(true));
    }
    expect(p.runningWorkers).toBe(p.threads);
    expect(p.piecesOnWorkers).toBeGreaterThan(0); // the workers computed some blocks, copied back exactly
  });

  it('runs a batch below the threshold, and an empty one, in this thread', async () => {
    const p = codec(64, 8, { threads: 2 });
    const rs = new ReedSolomon(64, 8);
    expect(await p.encodeBlocks([])).toEqual([]);
    const blocks = batch(64, [1400, 1400, 1400], 3, () => false);
    const got = await p.encodeBlocks(blocks);
    blocks.forEach((d, b) => expect(same(got[b]!, rs.encode(d))).toBe(true));
    expect(p.runningWorkers).toBe(0);
    expect(p.piecesOnWorkers).toBe(0);
  });

  it('serves concurrent batches without mixing their buffers, and works after close()', async () => {
    const p = createParallelReedSolomon(6, 3, { workerUrl, threads: 2, minShardLength: 0 });
    const rs = new ReedSolomon(6, 3);
    const batches = Array.from({ length: 5 }, (_, i) => batch(6, Array.from({ length: 9 }, (_, b) => 500 + 37 * b + i), i * 100, () => false));
    const results = await Promise.all(batches.map((bs) => p.encodeBlocks(bs)));
    batches.forEach((bs, i) => bs.forEach((d, b) => expect(same(results[i]![b]!, rs.encode(d))).toBe(true)));
    await p.close();
    const after = await p.encodeBlocks(batches[0]!);
    batches[0]!.forEach((d, b) => expect(same(after[b]!, rs.encode(d))).toBe(true));
    expect(p.runningWorkers).toBe(0);
  });
});

describe('ParallelReedSolomon reconstructBlocks', () => {
  it('gives ReedSolomon’s shards for every block of random batches (erasure patterns, dataOnly, into)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.tuple(fc.oneof(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 8000, max: 20_000 })), fc.array(fc.nat(), { maxLength: 6 })), {
          minLength: 0,
          maxLength: 10,
        }),
        fc.integer(),
        fc.boolean(),
        fc.boolean(),
        async (k, m, spec, seed, dataOnly, withInto) => {
          const p = createParallelReedSolomon(k, m, { workerUrl, threads: 2, minShardLength: 0 });
          const rs = new ReedSolomon(k, m);
          try {
            const fulls = batch(k, spec.map(([len]) => len), seed, (b) => b % 2 === 1).map((d) => [...d, ...rs.encode(d)]);
            const expected = fulls.map((full, b) => rs.reconstruct(holed(full, m, spec[b]![1]), { dataOnly }));
            const blocks = fulls.map((full, b) => holed(full, m, spec[b]![1]));
            const into = withInto ? spec.map(([len], b) => (b % 3 === 2 ? null : shards(k + m, len, seed + b, b % 2 === 0))) : undefined;
            const ret = await p.reconstructBlocks(blocks, { dataOnly, into });
            expect(ret).toBe(blocks);
            blocks.forEach((got, b) => {
              expect(got.map((s) => s === null)).toEqual(expected[b]!.map((s) => s === null));
              expect(same(got.filter(Boolean), expected[b]!.filter(Boolean))).toBe(true);
              const given = into?.[b];
              if (given) got.forEach((s, i) => holed(fulls[b]!, m, spec[b]![1])[i] === null && s && expect(s).toBe(given[i]));
            });
          } finally {
            await p.close();
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it('spreads a batch of RS(64,8) x 1,400 B blocks, m lost each, over the workers', async () => {
    const p = codec(64, 8);
    const rs = new ReedSolomon(64, 8);
    const fulls = batch(64, Array.from({ length: 48 }, () => 1400), 5, () => true).map((d) => [...d, ...rs.encode(d)]);
    const blocks = fulls.map((full, b) => full.map((s, i) => ((i + b) % 9 === 0 ? null : s)));
    const before = p.piecesOnWorkers;
    for (let call = 0; call < 20 && (call === 0 || p.piecesOnWorkers === before); call++) {
      const holed = blocks.map((full) => full.slice());
      await p.reconstructBlocks(holed);
      holed.forEach((got, b) => expect(same(got, fulls[b]!)).toBe(true));
    }
    expect(p.piecesOnWorkers).toBeGreaterThan(before);
  });
});

describe('findBatchOverlap (the batch overlap check)', () => {
  it('finds an overlap involving a written array exactly when a pairwise check does', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(2), fc.nat(60), fc.integer({ min: 1, max: 20 }), fc.boolean()), { minLength: 1, maxLength: 40 }),
        (spec) => {
          const buffers = [new ArrayBuffer(80), new ArrayBuffer(80), new SharedArrayBuffer(80)];
          const arrays = spec.map(([b, off, len]) => new Uint8Array(buffers[b]!, off, len));
          const written = Uint8Array.from(spec, ([, , , w]) => (w ? 1 : 0));
          const meet = (i: number, j: number) =>
            arrays[i]!.buffer === arrays[j]!.buffer &&
            arrays[i]!.byteOffset < arrays[j]!.byteOffset + arrays[j]!.length &&
            arrays[j]!.byteOffset < arrays[i]!.byteOffset + arrays[i]!.length;
          let expected = false;
          for (let i = 0; i < arrays.length; i++) for (let j = 0; j < i; j++) if ((written[i] || written[j]) && meet(i, j)) expected = true;
          const hit = findBatchOverlap(arrays, written);
          expect(hit !== undefined).toBe(expected);
          if (hit) {
            const [w, other] = hit;
            expect(w).not.toBe(other);
            expect(written[w]).toBe(1);
            expect(meet(w, other)).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('ParallelReedSolomon batch bad input', () => {
  const k = 4;
  const m = 2;
  const len = 128;
  const ok = (seed = 1) => shards(k, len, seed);
  const full = (seed = 1) => {
    const d = ok(seed);
    return [...d, ...new ReedSolomon(k, m).encode(d)];
  };

  /** A bad block for ReedSolomon alone, and the same block in the middle of a batch of good ones. */
  const blockCases: [string, (c: ReedSolomon) => unknown, (p: ParallelReedSolomon) => Promise<unknown>, string, string][] = [];
  const encodeCase = (name: string, data: () => Uint8Array[], parity?: () => Uint8Array[]) =>
    blockCases.push([
      name,
      (c) => c.encode(data(), parity?.()),
      (p) => p.encodeBlocks([ok(2), data(), ok(3)], parity ? [shards(m, len, 4), parity(), shards(m, len, 5)] : undefined),
      'encode: ',
      'encodeBlocks: block 1: ',
    ]);
  const reconstructCase = (name: string, block: () => (Uint8Array | null)[], into?: () => (Uint8Array | null)[]) =>
    blockCases.push([
      name,
      (c) => c.reconstruct(block(), { into: into?.() }),
      (p) => p.reconstructBlocks([[null, ...full(2).slice(1)], block(), full(3)], { into: into ? [undefined, into(), null] : undefined }),
      'reconstruct: ',
      'reconstructBlocks: block 1: ',
    ]);
  encodeCase('too few data shards', () => ok().slice(1));
  encodeCase('too many data shards', () => [...ok(), new Uint8Array(len)]);
  encodeCase('mismatched lengths', () => [...ok().slice(1), new Uint8Array(len + 1)]);
  encodeCase('an empty shard', () => [...ok().slice(1), new Uint8Array(0)]);
  encodeCase('not a Uint8Array', () => [...ok().slice(1), [1, 2] as unknown as Uint8Array]);
  encodeCase('parity of the wrong count', ok, () => [new Uint8Array(len)]);
  encodeCase('parity of the wrong length', ok, () => [new Uint8Array(len), new Uint8Array(len - 1)]);
  const d = ok();
  encodeCase('parity overlapping its data', () => d, () => [d[2]!.subarray(0), new Uint8Array(len)]);
  reconstructCase('too few shards', () => [...ok().slice(0, 3), null, null, null]);
  reconstructCase('the wrong slot count', () => [...full(), null]);
  reconstructCase('mismatched lengths', () => [null, ...full().slice(1, 5), new Uint8Array(len + 1)]);
  reconstructCase('into of the wrong length', () => [null, ...full().slice(1)], () => [new Uint8Array(len + 1), null, null, null, null, null]);
  reconstructCase('into of the wrong slot count', () => [null, ...full().slice(1)], () => [new Uint8Array(len)]);
  const f = full();
  reconstructCase('into overlapping a present shard', () => [null, ...f.slice(1)], () => [f[3]!, null, null, null, null, null]);
  const two = new Uint8Array(2 * len);
  reconstructCase(
    'into overlapping another into',
    () => [null, null, ...f.slice(2)],
    () => [two.subarray(0, len), two.subarray(len / 2, len / 2 + len), null, null, null, null],
  );

  for (const [name, single, batched, theirPrefix, ourPrefix] of blockCases) {
    it(`rejects a block with ${name}: ReedSolomon’s error naming the block, before starting any worker`, async () => {
      const p = codec(k, m, { threads: 2, minShardLength: 0 });
      const theirs = await caught(() => single(new ReedSolomon(k, m)));
      const promise = batched(p);
      expect(promise).toBeInstanceOf(Promise); // a rejection, not a synchronous throw
      const ours = await caught(() => promise);
      expect(theirs).toBeDefined();
      expect((ours as Error).constructor).toBe((theirs as Error).constructor);
      expect((ours as FecError).code).toBe((theirs as FecError).code);
      expect((theirs as Error).message.startsWith(theirPrefix)).toBe(true);
      expect((ours as Error).message).toBe(ourPrefix + (theirs as Error).message.slice(theirPrefix.length));
      expect(p.runningWorkers).toBe(0);
    });
  }

  it('the single-block reconstruct refuses bad `into` exactly as ReedSolomon', async () => {
    const p = codec(k, m, { threads: 2, minShardLength: 0 });
    for (const [, single] of blockCases.filter((c) => c[3] === 'reconstruct: ')) {
      sameError(await caught(() => single(p as unknown as ReedSolomon)), await caught(() => single(new ReedSolomon(k, m))));
    }
    expect(p.runningWorkers).toBe(0);
  });

  it('rejects outputs overlapping another block’s shards, and batch shapes that do not match', async () => {
    const p = codec(k, m, { threads: 2, minShardLength: 0 });
    const a = ok(1);
    const b = ok(2);
    const expectCode = async (promise: Promise<unknown>, code: string, message: RegExp) => {
      const e = await caught(() => promise);
      expect(e).toBeInstanceOf(FecError);
      expect((e as FecError).code).toBe(code);
      expect((e as Error).message).toMatch(message);
    };
    await expectCode(p.encodeBlocks([a, b], [[new Uint8Array(len), new Uint8Array(len)], [a[1]!, new Uint8Array(len)]]), 'GS_ERR_FEC_INVALID_PARAMS', /^encodeBlocks: block 1 parity shard 0 overlaps block 0 data shard 1$/);
    const shared = new Uint8Array(len);
    await expectCode(p.encodeBlocks([a, b], [[shared, new Uint8Array(len)], [shared, new Uint8Array(len)]]), 'GS_ERR_FEC_INVALID_PARAMS', /parity shard 0 overlaps block . parity shard 0/);
    await expectCode(p.encodeBlocks([a, b], [[new Uint8Array(len), new Uint8Array(len)]]), 'GS_ERR_FEC_TOO_FEW_SHARDS', /encodeBlocks: parity blocks: 1 given, need 2/);
    const fa = full(1);
    const fb = full(2);
    await expectCode(
      p.reconstructBlocks([[null, ...fa.slice(1)], [null, ...fb.slice(1)]], { into: [[fb[4]!, null, null, null, null, null], null] }),
      'GS_ERR_FEC_INVALID_PARAMS',
      /reconstructBlocks: block 0 into 0 overlaps block 1 shard 4/,
    );
    await expectCode(p.reconstructBlocks([[null, ...fa.slice(1)]], { into: [] }), 'GS_ERR_FEC_TOO_FEW_SHARDS', /reconstructBlocks: into blocks: 0 given, need 1/);
    await expect(p.encodeBlocks('x' as never)).rejects.toBeInstanceOf(TypeError);
    await expect(p.encodeBlocks([a, 'x' as never])).rejects.toBeInstanceOf(TypeError);
    await expect(p.reconstructBlocks([null as never])).rejects.toBeInstanceOf(TypeError);
    expect(p.runningWorkers).toBe(0);
    // Read shards may share memory across blocks (the same zero shard in many blocks, say).
    const zero = new Uint8Array(len);
    const got = await p.encodeBlocks([[zero, zero, zero, zero], [zero, ...a.slice(1)]]);
    expect(same(got[1]!, new ReedSolomon(k, m).encode([zero, ...a.slice(1)]))).toBe(true);
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
