/**
 * Arithmetic in GF(2^8), the field of the 256-shard Reed–Solomon codec.
 *
 * The field is GF(2)[x] / (x^8 + x^4 + x^3 + x^2 + 1), polynomial 0x11d with
 * generator 2 — the one ISA-L, klauspost/reedsolomon, zfec and Backblaze's
 * JavaReedSolomon use, so coefficient tables can be compared with theirs.
 * Addition is XOR. All tables are built once, at module load (STYLE.md §6),
 * and never change after.
 *
 * @packageDocumentation
 */

/**
 * The reduction polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d).
 * @public
 */
export const GF256_POLYNOMIAL = 0x11d;

/**
 * `GF256_EXP[i]` = 2^i, for 0 ≤ i < 510: doubled so that
 * `GF256_EXP[GF256_LOG[a] + GF256_LOG[b]]` needs no reduction mod 255.
 * @internal
 */
export const GF256_EXP = new Uint8Array(510);
/**
 * `GF256_LOG[a]` = log₂ a for a ≠ 0; `GF256_LOG[0]` is 0 and meaningless.
 * @internal
 */
export const GF256_LOG = new Uint8Array(256);
/**
 * The full product table: `GF256_MUL[(c << 8) | x]` = c · x. 64 KiB; the
 * 256 bytes of row `c` are what the multiply kernels index for a coefficient.
 * @internal
 */
export const GF256_MUL = new Uint8Array(65536);
/**
 * `GF256_INV[a]` = a⁻¹ for a ≠ 0; `GF256_INV[0]` is 0 and meaningless.
 * @internal
 */
export const GF256_INV = new Uint8Array(256);

{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    GF256_EXP[i] = x;
    GF256_EXP[i + 255] = x;
    GF256_LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= GF256_POLYNOMIAL;
  }
  for (let a = 1; a < 256; a++) {
    const la = GF256_LOG[a]!;
    GF256_INV[a] = GF256_EXP[255 - la]!;
    for (let b = 1; b < 256; b++) GF256_MUL[(a << 8) | b] = GF256_EXP[la + GF256_LOG[b]!]!;
  }
}

/**
 * `GF256_ROWS[c]` is row `c` of {@link GF256_MUL} as its own 256-byte view
 * (`GF256_ROWS[c][x]` = c · x), made once so the kernels index a row without
 * an offset and without allocating a view per call.
 * @internal
 */
export const GF256_ROWS: readonly Uint8Array[] = Array.from({ length: 256 }, (_, c) =>
  GF256_MUL.subarray(c << 8, (c + 1) << 8),
);

/**
 * The product a · b in GF(2^8) (bytes 0–255).
 * @public
 */
export function gfMul(a: number, b: number): number {
  return GF256_MUL[((a & 0xff) << 8) | (b & 0xff)]!;
}

/**
 * The multiplicative inverse a⁻¹ in GF(2^8). Throws a `RangeError` for 0,
 * which has none.
 * @public
 */
export function gfInv(a: number): number {
  if ((a & 0xff) === 0) throw new RangeError('GF(2^8): 0 has no inverse');
  return GF256_INV[a & 0xff]!;
}

/**
 * The quotient a / b in GF(2^8). Throws a `RangeError` when b is 0.
 * @public
 */
export function gfDiv(a: number, b: number): number {
  return gfMul(a, gfInv(b));
}

/**
 * a^n in GF(2^8) for an integer n ≥ 0 (0^0 = 1).
 * @public
 */
export function gfPow(a: number, n: number): number {
  if (n === 0) return 1;
  if ((a & 0xff) === 0) return 0;
  return GF256_EXP[(GF256_LOG[a & 0xff]! * n) % 255]!;
}

/**
 * Reference twin of {@link gfMul}: shift-and-add ("Russian peasant")
 * multiplication with reduction by 0x11d, using no table. Slow; for tests.
 * @internal
 */
export function gfMulSlow(a: number, b: number): number {
  let p = 0;
  a &= 0xff;
  b &= 0xff;
  while (b !== 0) {
    if (b & 1) p ^= a;
    b >>>= 1;
    a <<= 1;
    if (a & 0x100) a ^= GF256_POLYNOMIAL;
  }
  return p;
}
