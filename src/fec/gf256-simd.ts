/**
 * The FEC kernels on WebAssembly SIMD: the JavaScript side of
 * gf256-simd.wat (assembled into gf256-simd-module.ts by
 * scripts/gen-gf256-wasm.mjs). GF(2^8) multiply, multiply-add, xor, block
 * product and Gauss–Jordan; GF(2^16) block product.
 *
 * The codec's shards are JavaScript `Uint8Array`s; WebAssembly reads and
 * writes only its own linear memory. So every call copies: the inputs in,
 * the outputs out (and, for a multiply-add, the output in too). The copy is
 * what decides where SIMD pays most (measured, see gf256-kernel.ts and
 * bench/fec-simd.bench.ts):
 *
 * - {@link Gf256Simd.combine}, a whole block's `outputs = rows · inputs`
 *   (what encode and reconstruct run), copies each input in once and each
 *   output out once for nIn · nOut multiplications, and computes two outputs
 *   at a time with their 32-byte pieces held in registers over all inputs:
 *   the copy is small beside the work (14× the JS loop at 192 × 10).
 * - {@link Gf256Simd.mulAdd} on its own moves three times its length for one
 *   multiplication, and is still ≈ 7× the JS loop at 64 KiB, ≈ 4× at 1 KiB.
 * - {@link Gf256Simd.invert} copies two n × n matrices in and out once for
 *   the whole elimination (~n² row operations).
 *
 * Memory is fixed at load (10 pages, 640 KiB; never grown, so the byte view
 * stays valid); the layout is drawn in the .wat: the 256 coefficients'
 * nibble tables (8 KiB), the 256 inverses, scratch for GF(2^16) tables, a
 * block's coefficient rows (64 KiB), then 568 KiB of data. A block whose
 * shards do not fit is done in slices of bytes, each slice's inputs and
 * outputs together at most that (so they also stay in a 1 MiB L2 cache).
 *
 * One instance per thread (module state; worker threads load their own).
 * Functions trust their arguments as the JS kernels do.
 *
 * @packageDocumentation
 */
import { GF256_INV, GF256_MUL } from './gf256.js';
import { GF256_SIMD_WASM_BASE64 } from './gf256-simd-module.js';

/** The module's exports (see gf256-simd.wat for each function's contract). */
interface SimdExports {
  readonly memory: { readonly buffer: ArrayBuffer };
  mulAdd(c: number, input: number, output: number, len: number): void;
  mul(c: number, input: number, output: number, len: number): void;
  xorInto(input: number, output: number, len: number): void;
  dot(rows: number, nIn: number, nOut: number, input: number, output: number, stride: number, len: number): void;
  invert(n: number, work: number, inv: number, stride: number): number;
  dot16(rows: number, nIn: number, nOut: number, input: number, output: number, stride: number, len: number): void;
}

/**
 * The part of the global `WebAssembly` used here (typed locally: the
 * project's lib has no DOM types, and @types/node declares only a namespace).
 */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object) => { readonly exports: unknown };
}

/** Address of coefficient c's tables is `c << 5`: lo[16] (c·i), then hi[16] (c·(i << 4)). */
const TABLES = 0;
/** `INVERSES[a]` = a⁻¹ (256 bytes; the address is fixed in the .wat's `invert`). */
const INVERSES = TABLES + 256 * 32;
/**
 * Coefficient rows of a `dot` call (nOut rows of nIn bytes, at most
 * 256 × 256) or a `dot16` call (16-bit words, at most 32,768 of them),
 * after `dot16`'s scratch (128 bytes of tables, 32 of basis, padding).
 */
const ROWS = INVERSES + 256 + 256;
/** Start of the shard bytes. */
const DATA = ROWS + 256 * 256;
/** Bytes of the rows area. */
const ROWS_BYTES = DATA - ROWS;
/** Bytes of the memory the module declares (10 pages of 64 KiB). */
const MEMORY_BYTES = 10 * 65536;
/** Bytes for shards. */
const DATA_BYTES = MEMORY_BYTES - DATA;
/** Longest piece one single-array call copies at a time (input and output side by side). */
const PIECE = (DATA_BYTES >> 1) & ~31;

/**
 * Most inputs of a GF(2^16) block product the SIMD kernel takes: 32 bytes of
 * each input and of one output must fit in the data area.
 * @internal
 */
export const SIMD16_MAX_INPUTS = Math.floor(DATA_BYTES / 32) - 1;

/** `n` rounded up to a multiple of 32 (the `dot` step). */
function up32(n: number): number {
  return (n + 31) & ~31;
}

/**
 * The module's bytes, decoded from the generated base64.
 * @internal
 */
export function gf256SimdBytes(): Uint8Array {
  const s = atob(GF256_SIMD_WASM_BASE64);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

/**
 * The SIMD kernels of one instance of the module. Same contracts as the
 * functions of gf256-kernel.ts.
 * @internal
 */
export interface Gf256Simd {
  /** `output[i] ^= c · input[i]` for `start ≤ i < end`. */
  mulAdd(c: number, input: Uint8Array, output: Uint8Array, start: number, end: number): void;
  /** `output[i] = c · input[i]` for `start ≤ i < end`. */
  mul(c: number, input: Uint8Array, output: Uint8Array, start: number, end: number): void;
  /** `output[i] ^= input[i]` for `start ≤ i < end`. */
  xorInto(input: Uint8Array, output: Uint8Array, start: number, end: number): void;
  /**
   * `outputs[r][i] = Σ_t rows[r][t] · inputs[t][i]` for `start ≤ i < end`;
   * false (nothing written) when the block is too wide for the memory
   * (nIn · nOut > 65,536), so the caller runs the JS loop instead.
   */
  combine(
    rows: readonly Uint8Array[],
    inputs: readonly Uint8Array[],
    outputs: readonly Uint8Array[],
    start: number,
    end: number,
  ): boolean;
  /**
   * Gauss–Jordan elimination as gf256-kernel.ts `gaussJordan`: `work`
   * (n rows of n bytes) becomes the identity and `inv` (the identity on
   * entry) work⁻¹; true, or false when `work` is singular. `undefined`
   * (nothing written) when n · up32(n) · 2 exceeds the memory.
   */
  invert(work: Uint8Array[], inv: Uint8Array[]): boolean | undefined;
  /**
   * GF(2^16), words little-endian: `outputs[r]` = Σ_t coefficients[r·nIn + t]
   * · `inputs[t]` over all of their (even) length, nIn = inputs.length.
   * False (nothing written) when a slice of 32 bytes of every input and
   * one output does not fit in the memory (nIn > {@link SIMD16_MAX_INPUTS});
   * callers then run their own loop. Rows beyond what the memory's rows area holds
   * (32,768 coefficients) are done in groups, each copying the inputs again.
   */
  combine16(coefficients: Uint16Array, inputs: readonly Uint8Array[], outputs: readonly Uint8Array[]): boolean;
}

/**
 * Instantiate the SIMD module, or `undefined` when this runtime has no
 * WebAssembly or its WebAssembly lacks SIMD (`WebAssembly.validate` says no),
 * or instantiation fails.
 * @internal
 */
export function loadGf256Simd(bytes: Uint8Array = gf256SimdBytes()): Gf256Simd | undefined {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  let ex: SimdExports;
  try {
    if (typeof wasm !== 'object' || !wasm.validate(bytes)) return undefined;
    // Synchronous on purpose: the module is 1.7 KB, and the kernel must be
    // chosen before the first call (module load), not after a promise.
    ex = new wasm.Instance(new wasm.Module(bytes)).exports as SimdExports;
  } catch {
    return undefined;
  }
  if (ex.memory.buffer.byteLength < MEMORY_BYTES) return undefined;
  const heap = new Uint8Array(ex.memory.buffer);
  heap.set(GF256_INV, INVERSES);
  for (let c = 0; c < 256; c++) {
    for (let i = 0; i < 16; i++) {
      heap[TABLES + (c << 5) + i] = GF256_MUL[(c << 8) | i]!;
      heap[TABLES + (c << 5) + 16 + i] = GF256_MUL[(c << 8) | (i << 4)]!;
    }
  }

  /** `a[start, end)` as an array to copy from: `a` itself when that is the whole of it. */
  const range = (a: Uint8Array, start: number, end: number): Uint8Array =>
    start === 0 && end === a.length ? a : a.subarray(start, end);

  return {
    mulAdd(c, input, output, start, end) {
      for (let s = start; s < end; s += PIECE) {
        const e = Math.min(end, s + PIECE);
        heap.set(range(input, s, e), DATA);
        heap.set(range(output, s, e), DATA + PIECE);
        ex.mulAdd(c, DATA, DATA + PIECE, e - s);
        output.set(heap.subarray(DATA + PIECE, DATA + PIECE + e - s), s);
      }
    },
    mul(c, input, output, start, end) {
      for (let s = start; s < end; s += PIECE) {
        const e = Math.min(end, s + PIECE);
        heap.set(range(input, s, e), DATA);
        ex.mul(c, DATA, DATA + PIECE, e - s);
        output.set(heap.subarray(DATA + PIECE, DATA + PIECE + e - s), s);
      }
    },
    xorInto(input, output, start, end) {
      for (let s = start; s < end; s += PIECE) {
        const e = Math.min(end, s + PIECE);
        heap.set(range(input, s, e), DATA);
        heap.set(range(output, s, e), DATA + PIECE);
        ex.xorInto(DATA, DATA + PIECE, e - s);
        output.set(heap.subarray(DATA + PIECE, DATA + PIECE + e - s), s);
      }
    },
    combine(rows, inputs, outputs, start, end) {
      const nIn = inputs.length;
      const nOut = outputs.length;
      if (nIn * nOut > DATA - ROWS || (nIn + nOut) * 32 > DATA_BYTES) return false;
      if (nOut === 0 || end <= start) return true;
      for (let r = 0; r < nOut; r++) heap.set(rows[r]!.subarray(0, nIn), ROWS + r * nIn);
      // Slice stride: the whole range when every input and output fits, else
      // the most that does (a multiple of 32, at least 32 by the test above).
      const stride = Math.min(up32(end - start), Math.floor(DATA_BYTES / (nIn + nOut)) & ~31);
      const out = DATA + nIn * stride;
      for (let s = start; s < end; s += stride) {
        const e = Math.min(end, s + stride);
        const n = e - s;
        for (let t = 0; t < nIn; t++) heap.set(range(inputs[t]!, s, e), DATA + t * stride);
        // Bytes n…up32(n) of each slot are stale: they give stale results
        // past n that are never copied out.
        ex.dot(ROWS, nIn, nOut, DATA, out, stride, up32(n));
        for (let r = 0; r < nOut; r++) outputs[r]!.set(heap.subarray(out + r * stride, out + r * stride + n), s);
      }
      return true;
    },
    combine16(coefficients, inputs, outputs) {
      const nIn = inputs.length;
      if (nIn === 0 || nIn > ROWS_BYTES >> 1) return false;
      const len = inputs[0]!.length;
      const group = Math.min(outputs.length, Math.floor(ROWS_BYTES / 2 / nIn));
      if ((nIn + group) * 32 > DATA_BYTES) return false;
      for (let r0 = 0; r0 < outputs.length; r0 += group) {
        const nOut = Math.min(group, outputs.length - r0);
        // Little-endian words into memory (WebAssembly memory is little-endian).
        for (let i = 0; i < nOut * nIn; i++) {
          const c = coefficients[r0 * nIn + i]!;
          heap[ROWS + 2 * i] = c & 0xff;
          heap[ROWS + 2 * i + 1] = c >>> 8;
        }
        const stride = Math.min(up32(len), Math.floor(DATA_BYTES / (nIn + nOut)) & ~31);
        const out = DATA + nIn * stride;
        for (let s = 0; s < len; s += stride) {
          const e = Math.min(len, s + stride);
          for (let t = 0; t < nIn; t++) heap.set(range(inputs[t]!, s, e), DATA + t * stride);
          ex.dot16(ROWS, nIn, nOut, DATA, out, stride, up32(e - s));
          for (let r = 0; r < nOut; r++) outputs[r0 + r]!.set(heap.subarray(out + r * stride, out + r * stride + e - s), s);
        }
      }
      return true;
    },
    invert(work, inv) {
      const n = work.length;
      const stride = up32(n);
      if (2 * n * stride > DATA_BYTES) return undefined;
      const w = DATA;
      const v = DATA + n * stride;
      // Padding columns must be zero: c · 0 stays 0 through every row operation.
      heap.fill(0, w, v + n * stride);
      for (let r = 0; r < n; r++) {
        heap.set(work[r]!, w + r * stride);
        heap.set(inv[r]!, v + r * stride);
      }
      const ok = ex.invert(n, w, v, stride) === 1;
      for (let r = 0; r < n; r++) {
        work[r]!.set(heap.subarray(w + r * stride, w + r * stride + n));
        inv[r]!.set(heap.subarray(v + r * stride, v + r * stride + n));
      }
      return ok;
    },
  };
}
