/**
 * The hot loops of the GF(2^8) codec: `out ^= c · in` (multiply-add) and
 * `out = c · in` (multiply) over byte arrays.
 *
 * Shape (STYLE.md §6, after klauspost/reedsolomon's portable loop): shortcuts
 * for `c === 0` and `c === 1`; otherwise one 256-byte row of the full product
 * table per coefficient ({@link GF256_ROWS}, made at module load); sixteen
 * bytes per step as four packed 32-bit reads and writes where input and
 * output share their alignment mod 4, then a word tail and a byte tail. No
 * allocation or closure inside a loop: the only objects made are two
 * `Int32Array` views per call, before the loop.
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
import { GF256_MUL, GF256_ROWS } from './gf256.js';

/** Below this many bytes the word path's two views cost more than they save. */
const WORD_MIN = 32;

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
 * `output[i] ^= c · input[i]` for `start ≤ i < end` (default: all of `input`).
 * @public
 */
export function mulAdd(c: number, input: Uint8Array, output: Uint8Array, start = 0, end = input.length): void {
  if (c === 0) return;
  if (c === 1) return xorInto(input, output, start, end);
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
 * `output[i] = c · input[i]` for `start ≤ i < end` (default: all of `input`).
 * @public
 */
export function mul(c: number, input: Uint8Array, output: Uint8Array, start = 0, end = input.length): void {
  if (c === 0) return void output.fill(0, start, end);
  if (c === 1) {
    if (input !== output) output.set(input.subarray(start, end), start);
    return;
  }
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
