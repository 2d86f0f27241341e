/**
 * Systematic Reed–Solomon erasure code over GF(2^8): `k` data shards, `m`
 * parity shards, `k + m ≤ 256`, any `k` of them give the data back (MDS).
 *
 * ## Generator matrix
 *
 * The generator is `[I; P]`: the k × k identity (data shards are sent as they
 * are) over an m × k parity matrix `P` derived from a Cauchy matrix
 *
 *     C[i][j] = 1 / (x_i + y_j),   x_i = k + i,  y_j = j
 *
 * (the `x` and `y` are distinct bytes because `k + m ≤ 256`, so no
 * denominator is 0). This is ISA-L's `gf_gen_cauchy1_matrix` and
 * klauspost/reedsolomon's `WithCauchyMatrix`. Every square submatrix of a
 * Cauchy matrix is invertible, so every k × k submatrix of `[I; C]` is too
 * (expand along its identity rows: what is left is a square minor of `C`):
 * the code is MDS for every `k` and `m`, with no search and no special cases,
 * unlike a Vandermonde matrix, which must first be made systematic by a
 * matrix inversion. And row `i` of `C` depends on `i` alone, so a single
 * parity shard is cheap to compute on its own ({@link ReedSolomon.encodeIndex}).
 *
 * We then scale `C`'s columns so that its first row is all ones, and its rows
 * so that its first column is all ones: `P = R · C · S` with `R`, `S`
 * invertible diagonal matrices. Scaling a row or a column by a non-zero
 * constant scales every minor that contains it by that constant, so `P` is
 * still MDS; but parity shard 0 becomes the plain XOR of the data shards (the
 * kernel's `c === 1` shortcut) and data shard 0 enters every parity shard
 * unmultiplied. With `m = 1` the code is simple XOR parity. The price: our
 * parity bytes are not ISA-L's or klauspost's for the same data; the field
 * (polynomial 0x11d) is the same.
 *
 * ## Security
 *
 * FEC proves nothing about authenticity. Reconstruction turns whatever
 * shards it is given into data; a forged or corrupted shard silently yields
 * wrong data, and `verify` only checks that parity is consistent with data
 * (anyone can compute consistent parity). Authenticate shards before decoding
 * (the multicast layer does) and check the digest of what comes out.
 *
 * @packageDocumentation
 */
import { FecError } from '../errors/index.js';
import type { ErasureCoder } from './coder.js';
import { GF256_INV, gfMul } from './gf256.js';
import { combineRows } from './gf256-kernel.js';
import type { Gf256Matrix } from './matrix.js';
import {
  DecodeMatrixCache,
  checkCount,
  checkDataShards,
  checkDecodeCacheSize,
  checkOutputShard,
  checkParityOutputs,
  checkReconstructShards,
  checkShard,
  reconstructOutputs,
} from './rs8-support.js';

/**
 * Largest `k + m` of the GF(2^8) code.
 * @public
 */
export const RS8_MAX_SHARDS = 256;

/**
 * Options of {@link ReedSolomon}.
 * @public
 */
export interface ReedSolomonOptions {
  /**
   * How many decode matrices (one per erasure pattern) to keep, least
   * recently used dropped first. Default 32; 0 disables the cache.
   */
  readonly decodeCacheSize?: number;
}

/**
 * Options of `reconstruct` ({@link ReedSolomon.reconstruct},
 * {@link ParallelReedSolomon.reconstruct}).
 * @public
 */
export interface ReconstructOptions {
  /** Fill only the missing data shards, not the missing parity shards. Default false. */
  readonly dataOnly?: boolean;
  /**
   * Where to write the shards it fills: one entry per slot of `shards`
   * (`k + m`); for a slot that is filled, its entry, when given, is written
   * and put into `shards` instead of a fresh array (same length as the
   * shards, sharing no memory with a present shard or another output).
   * Entries of slots that are present, or not filled (parity with
   * `dataOnly`), are not looked at. With {@link ParallelReedSolomon},
   * `SharedArrayBuffer`-backed outputs are written by the worker threads
   * directly, with no copy. Default: fresh arrays.
   */
  readonly into?: readonly (Uint8Array | null | undefined)[];
}

/**
 * `outputs[r] = Σ_t rows[r][t] · inputs[t]` over bytes `[0, len)`: the
 * kernel's block product (WebAssembly SIMD when available, else the JS loop;
 * see gf256-kernel.ts).
 */
function combine(rows: readonly Uint8Array[], inputs: readonly Uint8Array[], outputs: readonly Uint8Array[], len: number): void {
  combineRows(rows, inputs, outputs, 0, len);
}

/**
 * The m × k parity matrix `P` (see the module notes): Cauchy, then the first
 * row and the first column scaled to ones.
 * @internal
 */
export function rs8ParityMatrix(k: number, m: number): Gf256Matrix {
  const p: Gf256Matrix = [];
  for (let i = 0; i < m; i++) {
    const row = new Uint8Array(k);
    for (let j = 0; j < k; j++) row[j] = GF256_INV[(k + i) ^ j]!;
    p.push(row);
  }
  // Columns: divide column j by C[0][j] (makes row 0 all ones).
  const first = p[0]!.slice();
  for (const row of p) for (let j = 0; j < k; j++) row[j] = gfMul(row[j]!, GF256_INV[first[j]!]!);
  // Rows: divide row i by its first entry (makes column 0 all ones).
  for (const row of p) {
    const s = GF256_INV[row[0]!]!;
    for (let j = 0; j < k; j++) row[j] = gfMul(row[j]!, s);
  }
  return p;
}

/**
 * Check `k` and `m` of a GF(2^8) code; throws GS_ERR_FEC_INVALID_PARAMS.
 * @internal
 */
export function checkRs8Params(k: number, m: number): void {
  const bad = (why: string) => new FecError('GS_ERR_FEC_INVALID_PARAMS', `Reed–Solomon GF(2^8) (k=${k}, m=${m}): ${why}`);
  if (!Number.isSafeInteger(k) || k < 1) throw bad('data shard count k must be an integer ≥ 1');
  if (!Number.isSafeInteger(m) || m < 1) throw bad('parity shard count m must be an integer ≥ 1');
  if (k + m > RS8_MAX_SHARDS) throw bad(`k + m must be at most ${RS8_MAX_SHARDS}; use the GF(2^16) codec beyond`);
}

/**
 * Systematic, MDS Reed–Solomon code over GF(2^8) with `k` data and `m`
 * parity shards (1 ≤ k, 1 ≤ m, k + m ≤ 256); the generator is described in
 * the module notes (Cauchy, normalised). Follows the {@link ErasureCoder}
 * buffer contract: data shards are only read; parity and reconstructed
 * shards are written into the arrays given or freshly allocated.
 *
 * Not safe to call from two threads on shared buffers at once; one instance
 * may be shared by any number of callers in one thread. FEC proves nothing
 * about authenticity: authenticate shards before decoding.
 *
 * @example
 * ```ts
 * const rs = new ReedSolomon(4, 2);
 * const data = [1, 2, 3, 4].map((b) => new Uint8Array(1400).fill(b));
 * const parity = rs.encode(data);
 * const shards: (Uint8Array | null)[] = [...data, ...parity];
 * shards[0] = shards[3] = null;           // two lost
 * rs.reconstruct(shards);                  // shards[0], shards[3] are back
 * ```
 * @public
 */
export class ReedSolomon implements ErasureCoder {
  /** `k`: data shards per block. */
  readonly dataShards: number;
  /** `m`: parity shards per block. */
  readonly parityShards: number;
  /** `k + m`. */
  readonly totalShards: number;
  readonly #parity: Gf256Matrix;
  /** Inverse of the generator rows for a set of k present shards, keyed by their indices. */
  readonly #decoder: DecodeMatrixCache;

  /**
   * Throws {@link FecError} `GS_ERR_FEC_INVALID_PARAMS` when `k` or `m` is
   * not an integer ≥ 1 or `k + m > 256`.
   */
  constructor(dataShards: number, parityShards: number, options: ReedSolomonOptions = {}) {
    checkRs8Params(dataShards, parityShards);
    const cacheSize = checkDecodeCacheSize(options.decodeCacheSize);
    this.dataShards = dataShards;
    this.parityShards = parityShards;
    this.totalShards = dataShards + parityShards;
    this.#parity = rs8ParityMatrix(dataShards, parityShards);
    this.#decoder = new DecodeMatrixCache(this.#parity, dataShards, cacheSize);
  }

  /**
   * The coefficient of data shard `dataIndex` in parity shard `parityIndex`
   * (entry of `P`): parity shard i = Σ_j coefficient(i, j) · data shard j.
   * Throws `GS_ERR_FEC_BAD_INDEX` for an index outside the code.
   */
  coefficient(parityIndex: number, dataIndex: number): number {
    this.#checkParityIndex(parityIndex);
    if (!Number.isInteger(dataIndex) || dataIndex < 0 || dataIndex >= this.dataShards) {
      throw new FecError('GS_ERR_FEC_BAD_INDEX', `data index ${dataIndex} is outside 0…${this.dataShards - 1}`);
    }
    return this.#parity[parityIndex]![dataIndex]!;
  }

  /**
   * Compute the `m` parity shards of `data` (`k` shards of one length ≥ 1).
   * Writes into `parity` when given (`m` arrays of that length, not
   * overlapping the data), else allocates; returns the parity shards.
   */
  encode(data: readonly Uint8Array[], parity?: Uint8Array[]): Uint8Array[] {
    const len = checkDataShards('encode', data, this.dataShards);
    const out = parity ?? Array.from({ length: this.parityShards }, () => new Uint8Array(len));
    if (parity) checkParityOutputs(parity, this.parityShards, data, len);
    combine(this.#parity, data, out, len);
    return out;
  }

  /**
   * Compute only parity shard `parityIndex` (0 ≤ index \< m; shard number
   * `k + parityIndex`), without the others: a fresh repair symbol. Equal to
   * `encode(data)[parityIndex]`. Writes into `out` when given.
   */
  encodeIndex(data: readonly Uint8Array[], parityIndex: number, out?: Uint8Array): Uint8Array {
    this.#checkParityIndex(parityIndex);
    const len = checkDataShards('encodeIndex', data, this.dataShards);
    if (out) checkOutputShard('encodeIndex: out', out, data, len);
    const target = out ?? new Uint8Array(len);
    combine([this.#parity[parityIndex]!], data, [target], len);
    return target;
  }

  /**
   * Compute parity shards `parityIndices` (each 0 ≤ index \< m) together, in
   * one block product (one pass over the data for all of them): equal to
   * `parityIndices.map((i) => encodeIndex(data, i))`, cheaper per shard.
   * Returns new arrays, in the order asked.
   */
  encodeIndices(data: readonly Uint8Array[], parityIndices: readonly number[]): Uint8Array[] {
    for (const i of parityIndices) this.#checkParityIndex(i);
    const len = checkDataShards('encodeIndices', data, this.dataShards);
    const outs = parityIndices.map(() => new Uint8Array(len));
    if (outs.length > 0) combine(parityIndices.map((i) => this.#parity[i]!), data, outs, len);
    return outs;
  }

  /**
   * Fill the missing entries of `shards` (length `k + m`, missing =
   * `undefined`/`null`) from `k` present ones, in place, with fresh arrays
   * (or the arrays of `options.into`); with `dataOnly`, only the data
   * shards. Returns `shards`.
   *
   * Uses the lowest-numbered `k` present shards (data first: fewest
   * multiplications); other present shards are not read, nor checked
   * against the result — call {@link ReedSolomon.verify} for that.
   * Throws `GS_ERR_FEC_TOO_FEW_SHARDS` with fewer than `k` present,
   * `GS_ERR_FEC_SHARD_SIZE` when present shards differ in length or one is
   * empty (or an `into` array has another length), `GS_ERR_FEC_INVALID_PARAMS`
   * when an `into` array overlaps a present shard or another one.
   */
  reconstruct(shards: (Uint8Array | null | undefined)[], options: ReconstructOptions = {}): Uint8Array[] {
    const k = this.dataShards;
    const { len, chosen } = checkReconstructShards(shards, k, this.totalShards);
    const missingData: number[] = [];
    for (let j = 0; j < k; j++) if (shards[j] == null) missingData.push(j);
    const missingParity: number[] = [];
    if (!options.dataOnly) for (let i = 0; i < this.parityShards; i++) if (shards[k + i] == null) missingParity.push(i);
    const outs = reconstructOutputs('reconstruct', options.into, shards, [...missingData, ...missingParity.map((i) => k + i)], len);
    if (missingData.length > 0) {
      const rows = this.#decoder.rows(chosen, missingData);
      combine(rows, chosen.map((i) => shards[i]!), outs.slice(0, rows.length), len);
      missingData.forEach((j, r) => (shards[j] = outs[r]!));
    }
    if (missingParity.length > 0) {
      const data = shards.slice(0, k) as Uint8Array[];
      const parityOuts = outs.slice(missingData.length);
      combine(missingParity.map((i) => this.#parity[i]!), data, parityOuts, len);
      missingParity.forEach((i, r) => (shards[k + i] = parityOuts[r]!));
    }
    return shards as Uint8Array[];
  }

  /**
   * True when the parity shards of a complete block (`k + m` shards of one
   * length) match its data shards. Consistent parity proves nothing about
   * who made the block. Throws `GS_ERR_FEC_TOO_FEW_SHARDS` when a shard is
   * missing, `GS_ERR_FEC_SHARD_SIZE` when lengths differ.
   */
  verify(shards: readonly Uint8Array[]): boolean {
    const k = this.dataShards;
    checkCount('verify: shards', shards.length, this.totalShards);
    let len = -1;
    for (let i = 0; i < shards.length; i++) {
      const s = shards[i];
      if (s === null || s === undefined) throw new FecError('GS_ERR_FEC_TOO_FEW_SHARDS', `verify: shard ${i} is missing`);
      len = checkShard(`verify: shard ${i}`, s, len);
    }
    const data = shards.slice(0, k);
    const scratch = new Uint8Array(len);
    for (let i = 0; i < this.parityShards; i++) {
      combine([this.#parity[i]!], data, [scratch], len);
      const p = shards[k + i]!;
      for (let b = 0; b < len; b++) if (scratch[b] !== p[b]) return false;
    }
    return true;
  }

  #checkParityIndex(parityIndex: number): void {
    if (!Number.isInteger(parityIndex) || parityIndex < 0 || parityIndex >= this.parityShards) {
      throw new FecError('GS_ERR_FEC_BAD_INDEX', `parity index ${parityIndex} is outside 0…${this.parityShards - 1}`);
    }
  }



}

/**
 * A {@link ReedSolomon} code with `k` data and `m` parity shards: the
 * factory form of `new ReedSolomon(k, m, options)`.
 * @public
 */
export function createReedSolomon(dataShards: number, parityShards: number, options?: ReedSolomonOptions): ReedSolomon {
  return new ReedSolomon(dataShards, parityShards, options);
}
