/**
 * The WebAssembly SIMD kernels of GF(2^8) (gf256-simd.wat / gf256-simd.ts)
 * and the choice between them and the portable JS loops (gf256-kernel.ts):
 *
 * - the committed module is what the generator makes of the committed .wat
 *   (re-run in memory), and its bytes match their recorded SHA-256;
 * - each SIMD kernel equals its reference twin on random coefficients,
 *   lengths around every step boundary (0, 1, 15, 16, 17, 31, 32, 33, …),
 *   ranges, subarrays at odd offsets on both sides, in place, and ranges
 *   longer than one piece of WebAssembly memory; the block product too, for
 *   blocks that need slicing and blocks too wide for the memory;
 * - the codec, run once with each kernel on identical shards (STYLE.md §6's
 *   option matrix), gives the reference parity and reconstructs every
 *   erasure pattern tried;
 * - GATESOCK_FEC_SIMD=0 selects the portable loops; no WebAssembly, or a
 *   module it refuses, means no SIMD kernels (the fallback).
 *
 * Where this runtime's WebAssembly has no SIMD, the SIMD-only checks skip
 * and say so; the portable half still runs.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  GF256_SIMD_AVAILABLE,
  combinePortable,
  combineRows,
  gaussJordanPortable,
  gf256Kernel,
  mul,
  mulAdd,
  mulAddRef,
  mulRef,
  selectGf256Kernel,
  xorInto,
  type Gf256KernelName,
} from '../../src/fec/gf256-kernel.js';
import { SIMD16_MAX_INPUTS, gf256SimdBytes, loadGf256Simd } from '../../src/fec/gf256-simd.js';
import { GF256_SIMD_SOURCE_SHA256, GF256_SIMD_WASM_SHA256 } from '../../src/fec/gf256-simd-module.js';
import { identityMatrix, invertMatrix, multiplyMatrices } from '../../src/fec/matrix.js';
import { ReedSolomon, rs8ParityMatrix } from '../../src/fec/reed-solomon.js';
import { StreamingEncoder } from '../../src/fec/streaming.js';
import { gf65536Div, gf65536Mul } from '../../src/fec/gf65536.js';
import { ReedSolomon16 } from '../../src/fec/reed-solomon16.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const simd = loadGf256Simd();
if (!simd) console.log('gf256-simd: this runtime has no WebAssembly SIMD; SIMD-only checks skip, the portable ones run');

type Kernel = (c: number, input: Uint8Array, output: Uint8Array, start: number, end: number) => void;

/** Deterministic pseudo-random bytes from a seed. */
function bytes(len: number, seed: number): Uint8Array {
  let x = seed | 1;
  const a = new Uint8Array(len);
  for (let i = 0; i < len; i++) a[i] = (x = (Math.imul(x, 1103515245) + 12345) | 0) >>> 23;
  return a;
}

const same = (a: Uint8Array, b: Uint8Array | null | undefined) => b instanceof Uint8Array && Buffer.from(a).equals(Buffer.from(b));

/** Lengths at and around each step of the kernels (byte tail, 16, 32), then random ones. */
const lengthArb = fc.oneof(
  fc.constantFrom(0, 1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 1023, 1024, 1025),
  fc.integer({ min: 0, max: 100 }),
  fc.integer({ min: 0, max: 3000 }),
);

/** An input and an output at independent offsets in larger buffers, a range and a coefficient. */
const job = fc
  .record({
    len: lengthArb,
    inOffset: fc.integer({ min: 0, max: 17 }),
    outOffset: fc.integer({ min: 0, max: 17 }),
    c: fc.oneof(fc.constantFrom(0, 1, 2, 0x8e, 255), fc.integer({ min: 0, max: 255 })),
    seed: fc.integer(),
    whole: fc.boolean(),
    cut: fc.tuple(fc.nat(), fc.nat()),
  })
  .map(({ len, inOffset, outOffset, c, seed, whole, cut }) => {
    const a = whole ? 0 : cut[0] % (len + 1);
    const b = whole ? len : cut[1] % (len + 1);
    return {
      c,
      len,
      inBuf: bytes(len + inOffset + 9, seed),
      inOffset,
      outBuf: bytes(len + outOffset + 9, seed ^ 0x5a5a),
      outOffset,
      start: Math.min(a, b),
      end: Math.max(a, b),
    };
  });

/** `fast` and `ref` on the same job give the same whole buffers, and the input is untouched. */
function twins(fast: Kernel, ref: Kernel, runs = 300): void {
  fc.assert(
    fc.property(job, ({ c, len, inBuf, inOffset, outBuf, outOffset, start, end }) => {
      const input = inBuf.subarray(inOffset, inOffset + len);
      const o1 = outBuf.slice();
      const o2 = outBuf.slice();
      const inCopy = inBuf.slice();
      fast(c, input, o1.subarray(outOffset, outOffset + len), start, end);
      ref(c, input, o2.subarray(outOffset, outOffset + len), start, end);
      if (!same(o1, o2)) expect(o1).toEqual(o2);
      if (!same(inCopy, inBuf)) throw new Error('input changed');
    }),
    { numRuns: runs },
  );
}

const xorRef: Kernel = (_c, input, output, start, end) => {
  for (let i = start; i < end; i++) output[i]! ^= input[i]!;
};

/** `outputs = rows · inputs` over [start, end) by the definition, with the reference kernel. */
function combineRef(rows: readonly Uint8Array[], inputs: readonly Uint8Array[], outputs: readonly Uint8Array[], start: number, end: number): void {
  outputs.forEach((out, r) => {
    out.fill(0, start, end);
    inputs.forEach((input, t) => mulAddRef(rows[r]![t]!, input, out, start, end));
  });
}

/** A random block product: shapes, offsets, a range; `wide` allows blocks past the WebAssembly memory's rows area. */
function blockJob(maxIn: number, maxOut: number, maxLen: number) {
  return fc
    .record({
      nIn: fc.integer({ min: 1, max: maxIn }),
      nOut: fc.integer({ min: 1, max: maxOut }),
      len: fc.oneof(fc.constantFrom(1, 15, 16, 17, 32, 33), fc.integer({ min: 0, max: maxLen })),
      offset: fc.integer({ min: 0, max: 7 }),
      seed: fc.integer(),
      cut: fc.tuple(fc.nat(), fc.nat()),
    })
    .map(({ nIn, nOut, len, offset, seed, cut }) => {
      const a = cut[0] % (len + 1);
      const b = cut[1] % (len + 1);
      const rows = Array.from({ length: nOut }, (_, r) => bytes(nIn, seed + r));
      // Some zero and one coefficients, as the codec's matrices have.
      if (nIn > 1) rows[0]![1] = 0;
      rows[rows.length - 1]![0] = 1;
      const inputs = Array.from({ length: nIn }, (_, t) => bytes(len + offset, seed ^ (t + 1) * 7919).subarray(offset));
      const outputs = Array.from({ length: nOut }, (_, r) => bytes(len + 3, seed ^ (r + 1) * 104729).subarray(3));
      return { rows, inputs, outputs, start: Math.min(a, b), end: Math.max(a, b) };
    });
}

type Combine = (rows: readonly Uint8Array[], inputs: readonly Uint8Array[], outputs: readonly Uint8Array[], start: number, end: number) => void;

function combineTwins(fast: Combine, arb: ReturnType<typeof blockJob>, runs: number): void {
  fc.assert(
    fc.property(arb, ({ rows, inputs, outputs, start, end }) => {
      const o1 = outputs.map((o) => o.slice());
      const o2 = outputs.map((o) => o.slice());
      const inCopy = inputs.map((i) => i.slice());
      fast(rows, inputs, o1, start, end);
      combineRef(rows, inputs, o2, start, end);
      o1.forEach((o, r) => {
        if (!same(o, o2[r])) expect({ output: r, bytes: o }).toEqual({ output: r, bytes: o2[r] });
      });
      inputs.forEach((i, t) => {
        if (!same(i, inCopy[t])) throw new Error(`input ${t} changed`);
      });
    }),
    { numRuns: runs },
  );
}

describe('the generated module', () => {
  it('is what scripts/gen-gf256-wasm.mjs makes of the committed .wat (regenerate after editing the .wat)', async () => {
    const gen = (await import(pathToFileURL(`${root}scripts/gen-gf256-wasm.mjs`).href)) as {
      generate(wat: string): Promise<string>;
      WAT_PATH: string;
      MODULE_PATH: string;
    };
    const wat = readFileSync(`${root}${gen.WAT_PATH}`, 'utf8');
    const committed = readFileSync(`${root}${gen.MODULE_PATH}`, 'utf8');
    expect(createHash('sha256').update(wat).digest('hex')).toBe(GF256_SIMD_SOURCE_SHA256);
    expect(committed === (await gen.generate(wat))).toBe(true);
    // And a changed source does give another module (the check can fail).
    expect(committed === (await gen.generate(wat.replace('(memory (export "memory") 10)', '(memory (export "memory") 11)')))).toBe(false);
  });

  it('holds the bytes its SHA-256 names', () => {
    expect(createHash('sha256').update(gf256SimdBytes()).digest('hex')).toBe(GF256_SIMD_WASM_SHA256);
  });
});

describe('selection and fallback', () => {
  it('uses SIMD by default exactly where WebAssembly validates the module', () => {
    const wasm = (globalThis as { WebAssembly?: { validate(b: Uint8Array): boolean } }).WebAssembly;
    const validates = wasm !== undefined && wasm.validate(gf256SimdBytes());
    expect(GF256_SIMD_AVAILABLE).toBe(validates);
    if (!process.env.GATESOCK_FEC_SIMD) expect(gf256Kernel()).toBe(validates ? 'simd' : 'portable');
  });

  it('falls back (no SIMD kernels) without WebAssembly, or when it refuses the module', () => {
    expect(loadGf256Simd(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0xff]))).toBeUndefined();
    const g = globalThis as { WebAssembly?: unknown };
    const saved = g.WebAssembly;
    try {
      g.WebAssembly = undefined;
      expect(loadGf256Simd()).toBeUndefined();
    } finally {
      g.WebAssembly = saved;
    }
  });

  it('GATESOCK_FEC_SIMD=0 selects the portable loops at load', () => {
    const script = `import('${pathToFileURL(`${root}src/fec/gf256-kernel.ts`).href}').then((m) => console.log(m.gf256Kernel()))`;
    const run = (value: string | undefined) => {
      const env = { ...process.env };
      if (value === undefined) delete env.GATESOCK_FEC_SIMD;
      else env.GATESOCK_FEC_SIMD = value;
      return execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: root, env, encoding: 'utf8', timeout: 30_000 }).trim();
    };
    expect(run('0')).toBe('portable');
    expect(run(undefined)).toBe(GF256_SIMD_AVAILABLE ? 'simd' : 'portable');
  });

  it('selectGf256Kernel switches this thread and reports what is in use', () => {
    const before = gf256Kernel();
    try {
      expect(selectGf256Kernel('portable')).toBe('portable');
      expect(selectGf256Kernel('simd')).toBe(GF256_SIMD_AVAILABLE ? 'simd' : 'portable');
    } finally {
      selectGf256Kernel(before);
    }
  });
});

describe.skipIf(!simd)('SIMD kernels equal their reference twins', () => {
  const s = simd!;
  it('mulAdd', () => twins((c, i, o, a, b) => s.mulAdd(c, i, o, a, b), mulAddRef));
  it('mul', () => twins((c, i, o, a, b) => s.mul(c, i, o, a, b), mulRef));
  it('xorInto', () => twins((_c, i, o, a, b) => s.xorInto(i, o, a, b), xorRef));

  it('in place (input and output the same array), and over ranges longer than one memory piece', () => {
    for (const len of [0, 1, 17, 1000, 600_001]) {
      const x = bytes(len, len + 1);
      const a = x.slice();
      const b = x.slice();
      s.mul(0x53, a, a, 0, len);
      mulRef(0x53, b, b, 0, len);
      expect(same(a, b)).toBe(true);
      s.mulAdd(0xca, a, a, 0, len);
      mulAddRef(0xca, b, b, 0, len);
      expect(same(a, b)).toBe(true);
      const y = bytes(len, len + 2);
      const o1 = y.slice();
      const o2 = y.slice();
      s.mulAdd(0x1d, x, o1, 0, len);
      mulAddRef(0x1d, x, o2, 0, len);
      expect(same(o1, o2)).toBe(true);
      s.xorInto(x, o1, 1 % (len + 1), len);
      xorRef(0, x, o2, 1 % (len + 1), len);
      expect(same(o1, o2)).toBe(true);
    }
  });

  it('block product: random shapes and ranges', () => {
    combineTwins((r, i, o, a, b) => expect(s.combine(r, i, o, a, b)).toBe(true), blockJob(24, 12, 2500), 150);
  });

  it('block product: wide blocks cut into slices (k, m up to 255)', () => {
    combineTwins((r, i, o, a, b) => expect(s.combine(r, i, o, a, b)).toBe(true), blockJob(255, 255, 3000), 6);
  });

  it('Gauss–Jordan: the same inverse (or the same "singular") as the JS elimination, n from 1 to 300', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(31, 32, 33, 192, 255, 256, 300)), fc.integer(), fc.boolean(), (n, seed, singular) => {
        const a = Array.from({ length: n }, (_, r) => bytes(n, seed + r));
        // Sparse-ish rows too, so pivots need swapping.
        a.forEach((row, r) => r % 3 === 1 && row.fill(0, 0, Math.min(n, r)));
        if (singular && n > 1) a[n - 1]!.set(a[0]!);
        const w1 = a.map((r) => r.slice());
        const w2 = a.map((r) => r.slice());
        const i1 = Array.from({ length: n }, (_, r) => new Uint8Array(n).fill(1, r, r + 1));
        const i2 = i1.map((r) => r.slice());
        const ok = s.invert(w1, i1);
        expect(ok).toBe(gaussJordanPortable(w2, i2));
        if (ok) {
          // The JS loop swaps row objects, the SIMD one row contents: compare values.
          i1.forEach((row, r) => expect(same(row, i2[r])).toBe(true));
          w1.forEach((row, r) => expect(row.every((b, c) => b === (r === c ? 1 : 0))).toBe(true));
        }
        if (singular && n > 1) expect(ok).toBe(false);
      }),
      { numRuns: 40 },
    );
  });

  it('GF(2^16) block product: random shapes, coefficients 0, 1 and others, odd offsets; more rows than its rows area', () => {
    const check = (nIn: number, nOut: number, len: number, seed: number) => {
      const co = new Uint16Array(nIn * nOut);
      const raw = bytes(2 * co.length, seed);
      for (let i = 0; i < co.length; i++) co[i] = i % 11 === 3 ? 0 : i % 13 === 5 ? 1 : raw[2 * i]! | (raw[2 * i + 1]! << 8);
      const inputs = Array.from({ length: nIn }, (_, t) => bytes(len + 1, seed + t + 1).subarray(1));
      const outputs = Array.from({ length: nOut }, (_, r) => bytes(len, seed - r - 1));
      expect(s.combine16(co, inputs, outputs)).toBe(true);
      for (let r = 0; r < nOut; r++) {
        for (let w = 0; w < len / 2; w++) {
          let acc = 0;
          for (let t = 0; t < nIn; t++) acc ^= gf65536Mul(co[r * nIn + t]!, inputs[t]![2 * w]! | (inputs[t]![2 * w + 1]! << 8));
          const got = outputs[r]![2 * w]! | (outputs[r]![2 * w + 1]! << 8);
          if (got !== acc) expect({ nIn, nOut, len, r, w, got }).toEqual({ nIn, nOut, len, r, w, got: acc });
        }
      }
    };
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 6 }),
        fc.oneof(fc.constantFrom(2, 14, 16, 18, 30, 32, 34, 64), fc.integer({ min: 1, max: 800 }).map((n) => 2 * n)),
        fc.integer(),
        check,
      ),
      { numRuns: 60 },
    );
    check(200, 200, 34, 7); // 40,000 coefficients: two groups of rows
    expect(s.combine16(new Uint16Array(SIMD16_MAX_INPUTS + 1), Array.from({ length: SIMD16_MAX_INPUTS + 1 }, () => new Uint8Array(2)), [new Uint8Array(2)])).toBe(false);
  });

  it('refuses a block wider than its memory (nIn · nOut > 65,536), writing nothing', () => {
    const rows = Array.from({ length: 300 }, (_, r) => bytes(300, r));
    const inputs = Array.from({ length: 300 }, (_, t) => bytes(64, t + 1000));
    const outputs = Array.from({ length: 300 }, () => new Uint8Array(64).fill(7));
    expect(s.combine(rows, inputs, outputs, 0, 64)).toBe(false);
    expect(outputs.every((o) => o.every((b) => b === 7))).toBe(true);
  });
});

describe.each<Gf256KernelName>(['simd', 'portable'])('the codec with the %s kernel', (name) => {
  const unavailable = name === 'simd' && !GF256_SIMD_AVAILABLE;
  let before: Gf256KernelName;
  beforeAll(() => {
    before = gf256Kernel();
    selectGf256Kernel(name);
  });
  afterAll(() => {
    selectGf256Kernel(before);
  });

  it.skipIf(unavailable)('is the kernel in use', () => {
    expect(gf256Kernel()).toBe(name);
  });

  it.skipIf(unavailable)('mulAdd, mul, xorInto (the public functions) equal their reference twins', () => {
    twins(mulAdd, mulAddRef, 150);
    twins(mul, mulRef, 150);
    twins((_c, i, o, a, b) => xorInto(i, o, a, b), xorRef, 150);
  });

  it.skipIf(unavailable)('combineRows equals the definition, narrow and wide blocks (wider than the SIMD memory too)', () => {
    combineTwins(combineRows, blockJob(24, 12, 2500), 100);
    combineTwins(combineRows, blockJob(300, 300, 200), 3);
  });

  it.skipIf(unavailable)('RS 192+64 × 1,400 B: reference parity; 10 and 32 erasures (data and parity) come back', () => {
    const k = 192;
    const m = 64;
    const data = Array.from({ length: k }, (_, j) => bytes(1400, j + 1));
    const rs = new ReedSolomon(k, m);
    const parity = rs.encode(data);
    const ref = rs8ParityMatrix(k, m).map((row) => {
      const out = new Uint8Array(1400);
      row.forEach((c, j) => mulAddRef(c, data[j]!, out));
      return out;
    });
    parity.forEach((p, i) => expect(same(p, ref[i])).toBe(true));
    const all = [...data, ...parity];
    for (const [erasures, seed] of [[10, 1], [32, 2], [64, 3]] as const) {
      const lost = new Set<number>();
      for (let x = seed; lost.size < erasures; ) lost.add((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % (k + m));
      const shards = all.map((s, i) => (lost.has(i) ? null : s));
      rs.reconstruct(shards);
      shards.forEach((s, i) => expect(same(all[i]!, s), `shard ${i} of ${erasures} lost`).toBe(true));
    }
  });

  it.skipIf(unavailable)('random codes and erasure patterns: encode, reconstruct, verify, StreamingEncoder agree', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.oneof(fc.constantFrom(1, 15, 16, 17, 33), fc.integer({ min: 1, max: 2000 })),
        fc.integer(),
        (k, m, len, seed) => {
          const rs = new ReedSolomon(k, m);
          const data = Array.from({ length: k }, (_, j) => bytes(len, seed + j));
          const parity = rs.encode(data);
          const stream = new StreamingEncoder(rs);
          let streamed: Uint8Array[] | undefined;
          for (let j = k - 1; j >= 0; j--) streamed = stream.add(j, data[j]!);
          parity.forEach((p, i) => expect(same(p, streamed![i])).toBe(true));
          const all = [...data, ...parity];
          expect(rs.verify(all)).toBe(true);
          let x = seed | 1;
          const lost = new Set<number>();
          const want = 1 + ((seed >>> 0) % m);
          while (lost.size < want) lost.add((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % (k + m));
          const shards = all.map((s, i) => (lost.has(i) ? null : s));
          rs.reconstruct(shards);
          shards.forEach((s, i) => expect(same(all[i]!, s)).toBe(true));
        },
      ),
      { numRuns: 60 },
    );
  });

  it.skipIf(unavailable)('GF(2^16): parity by the definition (Σ d_j / (i ⊕ j), little-endian words); erasures come back', () => {
    for (const [k, m, len, seed] of [[1, 1, 2, 1], [3, 2, 30, 2], [17, 5, 34, 3], [40, 8, 198, 4], [300, 20, 64, 5]] as const) {
      const rs = new ReedSolomon16(k, m);
      const data = Array.from({ length: k }, (_, j) => bytes(len + 1, seed * 1000 + j).subarray(1)); // odd byteOffset
      const parity = rs.encode(data);
      parity.forEach((p, i) => {
        const want = new Uint8Array(len);
        for (let w = 0; w < len / 2; w++) {
          let acc = 0;
          for (let j = 0; j < k; j++) acc ^= gf65536Div(data[j]![2 * w]! | (data[j]![2 * w + 1]! << 8), (k + i) ^ j);
          want[2 * w] = acc & 0xff;
          want[2 * w + 1] = acc >>> 8;
        }
        expect(same(p, want), `k=${k} m=${m} parity ${i}`).toBe(true);
        expect(same(rs.encodeIndex(data, i), want)).toBe(true);
      });
      const all = [...data, ...parity];
      expect(rs.verify(all)).toBe(true);
      // Lose m shards: data first, then parity too.
      const lost = new Set(Array.from({ length: m }, (_, i) => (i % 2 === 0 ? Math.floor((i * k) / m) : k + i)));
      const shards = all.map((x, i) => (lost.has(i) ? null : x));
      rs.reconstruct(shards);
      shards.forEach((x, i) => expect(same(all[i]!, x), `k=${k} m=${m} shard ${i}`).toBe(true));
    }
  });

  it.skipIf(unavailable)('matrix inverse (row operations through mul/mulAdd) gives the identity', () => {
    for (const n of [1, 5, 31, 32, 33, 100]) {
      const p = rs8ParityMatrix(n, n); // a Cauchy-derived square matrix: invertible
      const inv = invertMatrix(p);
      const id = identityMatrix(n);
      multiplyMatrices(p, inv).forEach((row, r) => expect(same(row, id[r])).toBe(true));
    }
  });
});

it('the portable block product equals the definition', () => {
  combineTwins(combinePortable, blockJob(16, 8, 1000), 40);
});
