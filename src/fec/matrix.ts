/**
 * Small dense matrices over GF(2^8), as arrays of `Uint8Array` rows: what
 * the codec needs to build its generator and to invert the k × k
 * submatrices that decoding uses. Sizes are at most 256 × 256, so plain
 * Gauss–Jordan elimination (O(n³) table look-ups) is fine: it runs once per
 * erasure pattern, and the codec caches the result.
 *
 * @packageDocumentation
 */
import { gaussJordan, mulAdd } from './gf256-kernel.js';

/**
 * A matrix over GF(2^8): `rows[r][c]`. Every row has the same length.
 * @internal
 */
export type Gf256Matrix = Uint8Array[];

/**
 * The matrix handed to {@link invertMatrix} has no inverse. Never seen from
 * the codec's public API, whose submatrices are all invertible (MDS); a
 * throw here means a bug, not bad input.
 * @internal
 */
export class SingularMatrixError extends RangeError {
  constructor(size: number) {
    super(`GF(2^8): ${size}×${size} matrix is singular`);
    this.name = 'SingularMatrixError';
  }
}

/**
 * An `rows` × `cols` matrix of zeros.
 * @internal
 */
export function zeroMatrix(rows: number, cols: number): Gf256Matrix {
  return Array.from({ length: rows }, () => new Uint8Array(cols));
}

/**
 * The n × n identity matrix.
 * @internal
 */
export function identityMatrix(n: number): Gf256Matrix {
  const m = zeroMatrix(n, n);
  for (let i = 0; i < n; i++) m[i]![i] = 1;
  return m;
}

/**
 * The product `a · b` (a: r × n, b: n × c). Throws a `RangeError` when the
 * inner sizes differ.
 * @internal
 */
export function multiplyMatrices(a: Gf256Matrix, b: Gf256Matrix): Gf256Matrix {
  const n = b.length;
  const cols = n === 0 ? 0 : b[0]!.length;
  const out = zeroMatrix(a.length, cols);
  for (let r = 0; r < a.length; r++) {
    const row = a[r]!;
    if (row.length !== n) throw new RangeError(`matrix product: ${row.length} columns against ${n} rows`);
    // out[r] = Σ_t a[r][t] · b[t]: a row operation, so reuse the kernel.
    for (let t = 0; t < n; t++) mulAdd(row[t]!, b[t]!, out[r]!);
  }
  return out;
}

/**
 * The inverse of the square matrix `a` by Gauss–Jordan elimination on a
 * copy (`a` is left alone). Throws {@link SingularMatrixError} when `a` has
 * no inverse, and a `RangeError` when it is not square.
 * @internal
 */
export function invertMatrix(a: Gf256Matrix): Gf256Matrix {
  const n = a.length;
  const work = a.map((row) => {
    if (row.length !== n) throw new RangeError(`matrix inverse: ${n} rows of ${row.length} columns`);
    return row.slice();
  });
  const inv = identityMatrix(n);
  // The elimination is the kernel's (one WebAssembly call with SIMD).
  if (!gaussJordan(work, inv)) throw new SingularMatrixError(n);
  return inv;
}

