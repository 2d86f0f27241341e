/**
 * The hot loops of the GF(2^8) codec: `out ^= c · in` (multiply-add),
 * `out = c · in` (multiply), `out ^= in`, and a block's matrix product
 * `outputs = rows · inputs` ({@link combineRows}, what encode and
 * reconstruct run).
 *
 * Also here: Gauss–Jordan elimination ({@link gaussJordan}, the decode
 * matrices) and the GF(2^16) block product ({@link combineRows16}, for
 * reed-solomon16.ts).
 *
 * Two implementations, one choice (STYLE.md §6, after klauspost/reedsolomon's
 * per-platform loops with a portable fallback):
 *
 * - **simd**: WebAssembly SIMD, split-nibble tables and `i8x16.swizzle`
 *   (gf256-simd.wat, loaded by gf256-simd.ts). Chosen at module load when
 *   `WebAssembly.validate` accepts the module, unless the environment
 *   variable `GATESOCK_FEC_SIMD` is `0` (or `off`/`false`/`no`).
 * - **portable**: the JavaScript loops below, used otherwise, and by the
 *   single-array functions for ranges under {@link SIMD_MIN} bytes, where
 *   copying into WebAssembly memory costs more than it saves.
 *
 * Both give identical bytes: test/fec/gf256-simd.test.ts checks each SIMD
 * kernel against the reference twins and runs the codec with each kernel
 * on identical shards; `GATESOCK_FEC_SIMD=0 npx vitest run test/fec` runs
 * every FEC test on the portable loops.
 *
 * Measured (Node 20.20, 2-core AMD EPYC, loaded machine; MB of input per
 * CPU-second, `npm run bench -- "simd vs js"`): multiply-add of 64 KiB, JS
 * ≈ 2,100, SIMD ≈ 15,300 including the three copies; of 1 KiB, ≈ 1,400–1,700
 * against ≈ 6,900–7,300; a block product of 192 inputs × 10 outputs ×
 * 1,400 B, 14× the JS loop: there the copy (each input in, each output out,
 * once) is small beside nIn · nOut multiplications. A 192 × 192 inverse:
 * ≈ 1.1 ms JS, ≈ 0.2 ms SIMD.
 *
 * The portable loop, shape: shortcuts for `c === 0` and `c === 1`; otherwise
 * one 256-byte row of the full product table per coefficient
 * ({@link GF256_ROWS}, made at module load); sixteen bytes per step as four
 * packed 32-bit reads and writes where input and output share their
 * alignment mod 4, then a word tail and a byte tail. No allocation or
 * closure inside a loop: the only objects made are two `Int32Array` views
 * per call, before the loop.
 *
 * Chosen by measurement (Node 20.20, one 64 KiB multiply-add repeated with
 * varying coefficients, MB/s of input, on the machine of the first
 * `npm run bench -- fec` figures): byte
 * loop with `T[(c << 8) | x]` ≈ 790; the same unrolled by 4 ≈ 1,340; one word
 * per step ≈ 1,400; one word per step on a row view ≈ 1,700; two words ≈
 * 1,890; four words ≈ 2,100 (kept). Fusing two or four outputs per input
 * word was slower (≈ 900–1,400): too many live values for the registers.
 * `Int32Array` rather than `Uint32Array` keeps every value a small integer in
 * V8 (no heap numbers above 2^31). Lanes are read and written back in place,
 * so the result does not depend on the platform's byte order.
 *
 * `mulAddRef` and `mulRef` are the plain reference twins (STYLE.md §1); a
 * property test gives both the same random input, including odd lengths and
 * subarrays whose `byteOffset` is not a multiple of 4.
 *
 * These functions trust their arguments (the codec checks shapes once):
 * `c` is a byte, `0 ≤ start ≤ end ≤ min(input.length, output.length)`.
 *
 * @packageDocumentation
 */
import { GF256_INV, GF256_MUL, GF256_ROWS } from './gf256.js';
import { SIMD16_MAX_INPUTS, loadGf256Simd, type Gf256Simd } from './gf256-simd.js';

/** Below this many bytes the word path's two views cost more than they save. */
const WORD_MIN = 32;

/**
 * Below this many bytes the single-array functions run the JS loop even when
 * SIMD is in use: the calls into WebAssembly and the copies cost more than
 * they save (measured, MB/s of a multiply-add, JS / SIMD: 16 B ≈ 200 / 170,
 * 32 B ≈ 180 / 320, 64 B ≈ 310 / 690, 256 B ≈ 320 / 1,800).
 * @internal
 */
export const SIMD_MIN = 32;

/** The names of the two implementations (see the module notes). @internal */
export type Gf256KernelName = 'simd' | 'portable';

/** The SIMD kernels of this thread, whether in use or not (undefined: unavailable). */
const simdLoaded: Gf256Simd | undefined = loadGf256Simd();

/** True when the environment asks for the portable kernel: GATESOCK_FEC_SIMD=0 / off / false / no. */
function simdSwitchedOff(): boolean {
  const v = typeof process === 'object' ? process.env?.GATESOCK_FEC_SIMD : undefined;
  return v !== undefined && /^(0|off|false|no)$/i.test(v.trim());
}

/** The SIMD kernels when in use; undefined means the portable loops. */
let simd: Gf256Simd | undefined = simdSwitchedOff() ? undefined : simdLoaded;

/**
 * True when this runtime's WebAssembly has SIMD and the module loaded (in
 * use or not).
 * @internal
 */
export const GF256_SIMD_AVAILABLE: boolean = simdLoaded !== undefined;

/**
 * The implementation in use in this thread.
 * @internal
 */
export function gf256Kernel(): Gf256KernelName {
  return simd === undefined ? 'portable' : 'simd';
}

/**
 * Switch this thread's implementation (tests and benchmarks run the codec
 * with each; worker threads keep their own, chosen at their load). Asking
 * for `simd` where it is unavailable leaves `portable`. Returns the one now
 * in use.
 * @internal
 */
export function selectGf256Kernel(name: Gf256KernelName): Gf256KernelName {
  simd = name === 'simd' ? simdLoaded : undefined;
  return gf256Kernel();
}

/** True when bytes `start…` of `a` and `b` can be read as aligned words after a common head. */
function sameAlignment(a: Uint8Array, b: Uint8Array, start: number, end: number): boolean {
  return end - start >= WORD_MIN && ((a.byteOffset ^ b.byteOffset) & 3) === 0;
}

/** Bytes from `start` to the next 4-byte boundary of `a`'s buffer. */
function headLength(a: Uint8Array, start: number): number {
  return (4 - ((a.byteOffset + start) & 3)) & 3;
}

/** The four bytes of word `x`, each replaced by its product in row `T`, in place. */
function lanes(T: Uint8Array, x: number): number {
  return T[x & 0xff]! | (T[(x >>> 8) & 0xff]! << 8) | (T[(x >>> 16) & 0xff]! << 16) | (T[x >>> 24]! << 24);
}

/**
 * `output[i] ^= input[i]` for `start ≤ i < end`: the `c === 1` case of
 * {@link mulAdd}, and the addition of GF(2^8).
 * @public
 */
export function xorInto(input: Uint8Array, output: Uint8Array, start = 0, end = input.length): void {
  if (simd !== undefined && end - start >= SIMD_MIN) return simd.xorInto(input, output, start, end);
  xorIntoPortable(input, output, start, end);
}

/**
 * `output[i] ^= c · input[i]` for `start ≤ i < end` (default: all of `input`).
 * @public
 */
export function mulAdd(c: number, input: Uint8Array, output: Uint8Array, start = 0, end = input.length): void {
  if (c === 0) return;
  if (simd !== undefined && end - start >= SIMD_MIN) {
    if (c === 1) return simd.xorInto(input, output, start, end);
    return simd.mulAdd(c, input, output, start, end);
  }
  mulAddPortableAny(c, input, output, start, end);
}

/**
 * `output[i] = c · input[i]` for `start ≤ i < end` (default: all of `input`).
 * @public
 */
export function mul(c: number, input: Uint8Array, output: Uint8Array, start = 0, end = input.length): void {
  if (simd !== undefined && end - start >= SIMD_MIN && c > 1) return simd.mul(c, input, output, start, end);
  mulPortableAny(c, input, output, start, end);
}

/**
 * `outputs[r][i] = Σ_t rows[r][t] · inputs[t][i]` for `start ≤ i < end`: the
 * matrix product of one block (encode: the parity rows times the data;
 * reconstruct: rows of the decode matrix times the present shards). `rows`
 * has one row of at least `inputs.length` coefficients per output; outputs
 * are overwritten in the range (nothing else is written) and must not
 * overlap an input. At least one input.
 *
 * With SIMD, each input is copied into WebAssembly memory once and each
 * output out once per slice, and two outputs are computed at a time over all
 * inputs; else {@link combinePortable}.
 * @internal
 */
export function combineRows(
  rows: readonly Uint8Array[],
  inputs: readonly Uint8Array[],
  outputs: readonly Uint8Array[],
  start: number,
  end: number,
): void {
  if (simd !== undefined && end - start >= SIMD_MIN && simd.combine(rows, inputs, outputs, start, end)) return;
  combinePortable(rows, inputs, outputs, start, end);
}

/**
 * GF(2^16) block product on the SIMD kernel (see gf256-simd.wat `dot16`):
 * `outputs[r]` = Σ_t coefficient(r, t) · `inputs[t]` over 16-bit
 * little-endian words, for shards of one even length. Returns false, having
 * written nothing, when the SIMD kernel is not in use or the block has more
 * inputs than it takes; the caller (reed-solomon16.ts) then runs its own
 * log/exp loop, the portable path of GF(2^16).
 * @internal
 */
export function combineRows16(
  coefficient: (r: number, t: number) => number,
  inputs: readonly Uint8Array[],
  outputs: readonly Uint8Array[],
): boolean {
  const nIn = inputs.length;
  if (simd === undefined || nIn === 0 || nIn > SIMD16_MAX_INPUTS || outputs.length === 0) return false;
  const coefficients = new Uint16Array(outputs.length * nIn);
  for (let r = 0; r < outputs.length; r++) for (let t = 0; t < nIn; t++) coefficients[r * nIn + t] = coefficient(r, t);
  return simd.combine16(coefficients, inputs, outputs);
}

/**
 * Gauss–Jordan elimination: turns `work` (n rows of n bytes) into the
 * identity and `inv` (the identity on entry, n rows of n) into work⁻¹, in
 * place. Returns false when `work` is singular (both then hold partial
 * results). With SIMD the whole elimination runs in one WebAssembly call on
 * copies of both matrices (n ≤ 256 fits), not one call per row operation;
 * else {@link gaussJordanPortable}. Both pick the same pivots, so the
 * results are identical.
 * @internal
 */
export function gaussJordan(work: Uint8Array[], inv: Uint8Array[]): boolean {
  if (simd !== undefined && work.length >= GAUSS_SIMD_MIN) {
    const ok = simd.invert(work, inv);
    if (ok !== undefined) return ok;
  }
  return gaussJordanPortable(work, inv);
}

/**
 * Below this order the JS elimination is as fast as the copies in and out
 * of WebAssembly memory.
 */
const GAUSS_SIMD_MIN = 8;

/**
 * The portable {@link gaussJordan}: for each column, the first non-zero
 * pivot at or below the diagonal swapped up, the pivot row scaled to a
 * leading 1, the column cleared in every other row (characteristic 2:
 * subtract = add), all with the kernels of this module.
 * @internal
 */
export function gaussJordanPortable(work: Uint8Array[], inv: Uint8Array[]): boolean {
  const n = work.length;
  for (let col = 0; col < n; col++) {
    let p = col;
    while (p < n && work[p]![col] === 0) p++;
    if (p === n) return false;
    if (p !== col) {
      [work[p], work[col]] = [work[col]!, work[p]!];
      [inv[p], inv[col]] = [inv[col]!, inv[p]!];
    }
    const scale = GF256_INV[work[col]![col]!]!;
    mulPortableAny(scale, work[col]!, work[col]!, 0, n);
    mulPortableAny(scale, inv[col]!, inv[col]!, 0, n);
    for (let r = 0; r < n; r++) {
      const f = work[r]![col]!;
      if (r === col || f === 0) continue;
      mulAddPortableAny(f, work[col]!, work[r]!, 0, n);
      mulAddPortableAny(f, inv[col]!, inv[r]!, 0, n);
    }
  }
  return true;
}

/**
 * Bytes per slice of the shards in {@link combinePortable}, so that one
 * slice of every input and output can stay in cache for very large shards.
 * Measured on Node 20 (RS(10,4) × 64 KiB, MB/s of data, output-major /
 * input-major): 2 KiB 396/398, 4 KiB 429/424, 8 KiB 445/444, 16 KiB 456/457,
 * 32 KiB 461/465, unsliced 468/464; RS(64,8) × 1,400 B is flat at 184–194
 * either way. The kernel's arithmetic, not memory, bounds the speed at these
 * sizes, so the slice is large (fewer calls, fewer views) and the loop order
 * is the simpler output-major one.
 */
const SLICE = 32 * 1024;

/**
 * The portable {@link combineRows}: slice by slice, output-major (one output
 * at a time, every input multiplied into it), so each output is read and
 * written once per input while its slice is hot, and the first input writes
 * rather than adds (no zero-fill pass).
 * @internal
 */
export function combinePortable(
  rows: readonly Uint8Array[],
  inputs: readonly Uint8Array[],
  outputs: readonly Uint8Array[],
  start: number,
  end: number,
): void {
  const n = inputs.length;
  for (let s = start; s < end; s += SLICE) {
    const e = Math.min(end, s + SLICE);
    for (let r = 0; r < outputs.length; r++) {
      const row = rows[r]!;
      const out = outputs[r]!;
      mulPortableAny(row[0]!, inputs[0]!, out, s, e);
      for (let t = 1; t < n; t++) mulAddPortableAny(row[t]!, inputs[t]!, out, s, e);
    }
  }
}

/** {@link mulAddPortable} with its `c === 0` and `c === 1` shortcuts. */
function mulAddPortableAny(c: number, input: Uint8Array, output: Uint8Array, start: number, end: number): void {
  if (c === 0) return;
  if (c === 1) return xorIntoPortable(input, output, start, end);
  mulAddPortable(c, input, output, start, end);
}

/** {@link mulPortable} with its `c === 0` and `c === 1` shortcuts. */
function mulPortableAny(c: number, input: Uint8Array, output: Uint8Array, start: number, end: number): void {
  if (c === 0) return void output.fill(0, start, end);
  if (c === 1) {
    if (input !== output) output.set(input.subarray(start, end), start);
    return;
  }
  mulPortable(c, input, output, start, end);
}

/**
 * The portable {@link xorInto}.
 * @internal
 */
export function xorIntoPortable(input: Uint8Array, output: Uint8Array, start = 0, end = input.length): void {
  let i = start;
  if (sameAlignment(input, output, start, end)) {
    for (const head = i + headLength(input, i); i < head; i++) output[i]! ^= input[i]!;
    const n = (end - i) >> 2;
    const w = new Int32Array(input.buffer, input.byteOffset + i, n);
    const o = new Int32Array(output.buffer, output.byteOffset + i, n);
    for (let j = 0; j < n; j++) o[j]! ^= w[j]!;
    i += n << 2;
  }
  for (; i < end; i++) output[i]! ^= input[i]!;
}

/**
 * The portable {@link mulAdd}, for `c` ≥ 2 (no shortcuts: `c === 0` and
 * `c === 1` give right results, the slow way).
 * @internal
 */
export function mulAddPortable(c: number, input: Uint8Array, output: Uint8Array, start = 0, end = input.length): void {
  const T = GF256_ROWS[c]!;
  let i = start;
  if (sameAlignment(input, output, start, end)) {
    for (const head = i + headLength(input, i); i < head; i++) output[i]! ^= T[input[i]!]!;
    const n = (end - i) >> 2;
    const w = new Int32Array(input.buffer, input.byteOffset + i, n);
    const o = new Int32Array(output.buffer, output.byteOffset + i, n);
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      o[j]! ^= lanes(T, w[j]!);
      o[j + 1]! ^= lanes(T, w[j + 1]!);
      o[j + 2]! ^= lanes(T, w[j + 2]!);
      o[j + 3]! ^= lanes(T, w[j + 3]!);
    }
    for (; j < n; j++) o[j]! ^= lanes(T, w[j]!);
    i += n << 2;
  }
  // Tail, or everything when the alignments differ or the range is short.
  for (; i < end; i++) output[i]! ^= T[input[i]!]!;
}

/**
 * The portable {@link mul}, for `c` ≥ 2 (as {@link mulAddPortable}).
 * @internal
 */
export function mulPortable(c: number, input: Uint8Array, output: Uint8Array, start = 0, end = input.length): void {
  const T = GF256_ROWS[c]!;
  let i = start;
  if (sameAlignment(input, output, start, end)) {
    for (const head = i + headLength(input, i); i < head; i++) output[i] = T[input[i]!]!;
    const n = (end - i) >> 2;
    const w = new Int32Array(input.buffer, input.byteOffset + i, n);
    const o = new Int32Array(output.buffer, output.byteOffset + i, n);
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      o[j] = lanes(T, w[j]!);
      o[j + 1] = lanes(T, w[j + 1]!);
      o[j + 2] = lanes(T, w[j + 2]!);
      o[j + 3] = lanes(T, w[j + 3]!);
    }
    for (; j < n; j++) o[j] = lanes(T, w[j]!);
    i += n << 2;
  }
  for (; i < end; i++) output[i] = T[input[i]!]!;
}

/**
 * Reference twin of {@link mulAdd}: one byte at a time, no shortcuts.
 * @internal
 */
export function mulAddRef(c: number, input: Uint8Array, output: Uint8Array, start = 0, end = input.length): void {
  for (let i = start; i < end; i++) output[i]! ^= GF256_MUL[(c << 8) | input[i]!]!;
}

/**
 * Reference twin of {@link mul}: one byte at a time, no shortcuts.
 * @internal
 */
export function mulRef(c: number, input: Uint8Array, output: Uint8Array, start = 0, end = input.length): void {
  for (let i = start; i < end; i++) output[i] = GF256_MUL[(c << 8) | input[i]!]!;
}
