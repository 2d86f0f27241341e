/**
 * Argument checks and the decode-matrix cache shared by the GF(2^8) codecs
 * (`ReedSolomon`, and `ParallelReedSolomon`, which must refuse exactly what
 * it refuses, before any work is dispatched). Internal to src/fec.
 */
import { FecError } from '../errors/index.js';
import { combineRows } from './gf256-kernel.js';
import { invertMatrix, zeroMatrix, type Gf256Matrix } from './matrix.js';

/** Whether two byte arrays share any memory. */
export function overlaps(a: Uint8Array, b: Uint8Array): boolean {
  if (a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/**
 * Throw unless `count` is `want`: fewer is GS_ERR_FEC_TOO_FEW_SHARDS, more
 * is GS_ERR_FEC_BAD_INDEX (an index beyond the code).
 */
export function checkCount(what: string, count: number, want: number): void {
  if (count < want) throw new FecError('GS_ERR_FEC_TOO_FEW_SHARDS', `${what}: ${count} given, need ${want}`);
  if (count > want) throw new FecError('GS_ERR_FEC_BAD_INDEX', `${what}: ${count} given, the code has ${want}`);
}

/**
 * Throw unless `shard` is a non-empty Uint8Array of length `len` (or any
 * non-zero length when `len` is -1): a `TypeError` for another type,
 * `GS_ERR_FEC_SHARD_SIZE` naming `what` otherwise. Returns its length.
 * @internal
 */
export function checkShard(what: string, shard: unknown, len: number): number {
  if (!(shard instanceof Uint8Array)) throw new TypeError(`${what} is not a Uint8Array`);
  if (shard.length === 0) throw new FecError('GS_ERR_FEC_SHARD_SIZE', `${what} is empty`);
  if (len !== -1 && shard.length !== len) {
    throw new FecError('GS_ERR_FEC_SHARD_SIZE', `${what} has ${shard.length} bytes, the others ${len}`);
  }
  return shard.length;
}

/** Check the `k` data shards; returns their common length. */
export function checkDataShards(what: string, data: readonly Uint8Array[], k: number): number {
  checkCount(`${what}: data shards`, data.length, k);
  let len = -1;
  for (let j = 0; j < data.length; j++) len = checkShard(`${what}: data shard ${j}`, data[j], len);
  return len;
}

/** Check an output shard: right length, not overlapping any data shard. */
export function checkOutputShard(what: string, out: Uint8Array, data: readonly Uint8Array[], len: number): void {
  checkShard(what, out, len);
  for (let j = 0; j < data.length; j++) {
    if (overlaps(out, data[j]!)) throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `${what} overlaps data shard ${j}`);
  }
}

/**
 * Check caller-given parity outputs for `encode`: `m` of them, right length,
 * overlapping nothing (unless `checkOverlaps` is false: lengths only).
 */
export function checkParityOutputs(
  parity: readonly Uint8Array[],
  m: number,
  data: readonly Uint8Array[],
  len: number,
  what = 'encode',
  checkOverlaps = true,
): void {
  checkCount(`${what}: parity shards`, parity.length, m);
  parity.forEach((p, i) => {
    if (!checkOverlaps) return void checkShard(`${what}: parity shard ${i}`, p, len);
    checkOutputShard(`${what}: parity shard ${i}`, p, data, len);
    for (let j = 0; j < i; j++) {
      if (overlaps(p, parity[j]!)) throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `${what}: parity shard ${i} overlaps parity shard ${j}`);
    }
  });
}

/**
 * Check the shards given to `reconstruct` (`total` slots, missing =
 * null/undefined, at least `k` present, one length); returns that length and
 * the first `k` present indices, the rows decoding will use.
 */
export function checkReconstructShards(
  shards: readonly (Uint8Array | null | undefined)[],
  k: number,
  total: number,
  what = 'reconstruct',
): { len: number; chosen: number[] } {
  checkCount(`${what}: shard slots`, shards.length, total);
  let len = -1;
  const chosen: number[] = [];
  let present = 0;
  for (let i = 0; i < shards.length; i++) {
    const s = shards[i];
    if (s === null || s === undefined) continue;
    len = checkShard(`${what}: shard ${i}`, s, len);
    present++;
    if (chosen.length < k) chosen.push(i);
  }
  if (present < k) throw new FecError('GS_ERR_FEC_TOO_FEW_SHARDS', `${what}: ${present} of ${total} shards present, need ${k}`);
  return { len, chosen };
}

/**
 * The arrays reconstruct writes slots `fill` into: `into[i]` where the
 * caller gave one (checked: `len` bytes, overlapping no present shard and no
 * other output; not the overlaps when `checkOverlaps` is false), else a
 * fresh array. `into`, when given, has one entry per slot of `shards`;
 * entries of slots not in `fill` are not looked at.
 */
export function reconstructOutputs(
  what: string,
  into: readonly (Uint8Array | null | undefined)[] | undefined,
  shards: readonly (Uint8Array | null | undefined)[],
  fill: readonly number[],
  len: number,
  checkOverlaps = true,
): Uint8Array[] {
  if (into === undefined) return fill.map(() => new Uint8Array(len));
  if (!Array.isArray(into)) throw new TypeError(`${what}: into must be an array of ${shards.length} slots`);
  checkCount(`${what}: into slots`, into.length, shards.length);
  const given: number[] = [];
  return fill.map((i) => {
    const out = into[i];
    if (out === null || out === undefined) return new Uint8Array(len);
    checkShard(`${what}: into ${i}`, out, len);
    if (!checkOverlaps) return out;
    shards.forEach((s, p) => {
      if (s && overlaps(out, s)) throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `${what}: into ${i} overlaps shard ${p}`);
    });
    for (const j of given) {
      if (overlaps(out, into[j]!)) throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `${what}: into ${i} overlaps into ${j}`);
    }
    given.push(i);
    return out;
  });
}

/**
 * The first pair of arrays (indices into `arrays`) sharing memory where at
 * least one is written (`written[i]` non-zero), or undefined when there is
 * none; read arrays may share memory with each other. One sort and a sweep
 * per buffer rather than a check of every pair, and no object per array: a
 * batch of 64 blocks of 72 shards has 4,608 arrays, and a pairwise check
 * would cost as much as coding a block.
 */
export function findBatchOverlap(arrays: readonly Uint8Array[], written: Uint8Array): [number, number] | undefined {
  const byBuffer = new Map<ArrayBufferLike, number[]>();
  const hasWrite = new Set<ArrayBufferLike>();
  for (let i = 0; i < arrays.length; i++) {
    const buffer = arrays[i]!.buffer;
    const list = byBuffer.get(buffer);
    if (list) list.push(i);
    else byBuffer.set(buffer, [i]);
    if (written[i]) hasWrite.add(buffer);
  }
  for (const buffer of hasWrite) {
    const list = byBuffer.get(buffer)!;
    const n = list.length;
    if (n < 2) continue;
    // Sort by start: a native numeric sort of start · n + position when that is exact, else a comparator.
    let maxStart = 0;
    for (const i of list) maxStart = Math.max(maxStart, arrays[i]!.byteOffset);
    let order: number[];
    if ((maxStart + 1) * n <= Number.MAX_SAFE_INTEGER) {
      const keys = new Float64Array(n);
      for (let p = 0; p < n; p++) keys[p] = arrays[list[p]!]!.byteOffset * n + p;
      keys.sort();
      order = Array.from(keys, (key) => list[key % n]!);
    } else {
      order = list.slice().sort((a, b) => arrays[a]!.byteOffset - arrays[b]!.byteOffset);
    }
    // Sorted by start, an array overlaps an earlier one iff it starts before that one's end.
    let reach = -1; // the earlier array that ends last
    let reachWritten = -1; // the earlier written array that ends last
    let reachEnd = 0;
    let reachWrittenEnd = 0;
    for (const i of order) {
      const a = arrays[i]!;
      const start = a.byteOffset;
      const end = start + a.byteLength;
      if (written[i]) {
        if (reach >= 0 && start < reachEnd) return [i, reach];
      } else if (reachWritten >= 0 && start < reachWrittenEnd) {
        return [reachWritten, i];
      }
      if (end > reachEnd) [reach, reachEnd] = [i, end];
      if (written[i] && end > reachWrittenEnd) [reachWritten, reachWrittenEnd] = [i, end];
    }
  }
  return undefined;
}

/** Check a `decodeCacheSize` option; returns it with its default (32). */
export function checkDecodeCacheSize(value: number | undefined): number {
  const size = value ?? 32;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `decodeCacheSize must be an integer ≥ 0, got ${size}`);
  }
  return size;
}

/**
 * The rows that rebuild the missing data shards `missing` from the present
 * shards `chosen` (k ascending shard indices: every present data shard,
 * then `e = missing.length` parity shards), one row per missing shard,
 * columns in `chosen`'s order — the rows `missing` of the inverse of the
 * chosen generator rows, without inverting that k × k matrix.
 *
 * With `J` the chosen parity rows, `M` the missing and `K` the present data
 * shards, parity gives `P[J][M] · d_M = p_J + P[J][K] · d_K` (in GF(2^8),
 * minus is plus), so with `A = P[J][M]` (e × e, invertible: a square
 * submatrix of a normalised Cauchy matrix):
 *
 *     d_M = A⁻¹ · p_J  +  (A⁻¹ · P[J][K]) · d_K
 *
 * An e × e inverse and an e × e by e × (k − e) product instead of a k × k
 * inverse: at 5 % loss of k = 192, e ≈ 10, about 10⁴ field operations
 * instead of 10⁷.
 * @internal
 */
export function rs8DecodeRows(parity: Gf256Matrix, k: number, chosen: readonly number[], missing: readonly number[]): Gf256Matrix {
  const e = missing.length;
  const present = chosen.length - e; // the data shards among `chosen` come first
  const j = chosen.slice(present).map((i) => i - k);
  if (j.length !== e || j.some((p) => p < 0) || (present > 0 && chosen[present - 1]! >= k)) {
    throw new RangeError(`decode rows: ${e} missing data shards need exactly ${e} parity shards among the chosen`);
  }
  if (e === 0) return [];
  const a: Gf256Matrix = j.map((p) => Uint8Array.from(missing, (col) => parity[p]![col]!));
  const ainv = invertMatrix(a);
  // A⁻¹ · P[J] over every column, a row at a time with the kernels (not a field
  // multiplication per entry); then each row keeps the present data shards' columns.
  const rows = zeroMatrix(e, k);
  combineRows(ainv, j.map((p) => parity[p]!), rows, 0, k);
  for (let r = 0; r < e; r++) {
    const row = rows[r]!;
    // In place: chosen[t] ≥ t (ascending data shard indices), so no column is read after it is overwritten.
    for (let t = 0; t < present; t++) row[t] = row[chosen[t]!]!;
    row.set(ainv[r]!, present);
  }
  return rows;
}

/**
 * Inverses of the generator rows chosen for decoding, kept in a small LRU
 * keyed by the erasure pattern (a Map iterates in insertion order, so its
 * first key is the least recently used).
 */
export class DecodeMatrixCache {
  readonly #cache = new Map<string, Gf256Matrix>();
  readonly #rows = new Map<string, Gf256Matrix>();

  constructor(
    private readonly parity: Gf256Matrix,
    private readonly k: number,
    private readonly size: number,
  ) {}

  /** The inverse of the generator rows `chosen` (k ascending shard indices). */
  inverse(chosen: readonly number[]): Gf256Matrix {
    const key = chosen.join(',');
    const hit = this.#cache.get(key);
    if (hit) {
      this.#cache.delete(key);
      this.#cache.set(key, hit);
      return hit;
    }
    const sub: Gf256Matrix = chosen.map((i) => {
      if (i >= this.k) return this.parity[i - this.k]!.slice();
      const row = new Uint8Array(this.k);
      row[i] = 1;
      return row;
    });
    const inverse = invertMatrix(sub);
    if (this.size > 0) {
      if (this.#cache.size >= this.size) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(key, inverse);
    }
    return inverse;
  }

  /**
   * The decode rows of the missing data shards `missing` from the present
   * shards `chosen` ({@link rs8DecodeRows}), kept in the same LRU under the
   * erasure pattern (the missing shards and the parity shards used).
   */
  rows(chosen: readonly number[], missing: readonly number[]): Gf256Matrix {
    const key = `${missing.join(',')}|${chosen.slice(chosen.length - missing.length).join(',')}`;
    const hit = this.#rows.get(key);
    if (hit) {
      this.#rows.delete(key);
      this.#rows.set(key, hit);
      return hit;
    }
    const rows = rs8DecodeRows(this.parity, this.k, chosen, missing);
    if (this.size > 0) {
      if (this.#rows.size >= this.size) this.#rows.delete(this.#rows.keys().next().value!);
      this.#rows.set(key, rows);
    }
    return rows;
  }
}
