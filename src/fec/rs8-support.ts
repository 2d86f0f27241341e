/**
 * Argument checks and the decode-matrix cache shared by the GF(2^8) codecs
 * (`ReedSolomon`, and `ParallelReedSolomon`, which must refuse exactly what
 * it refuses, before any work is dispatched). Internal to src/fec.
 */
import { FecError } from '../errors/index.js';
import { invertMatrix, type Gf256Matrix } from './matrix.js';

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

/** Check caller-given parity outputs for `encode`: `m` of them, right length, overlapping nothing. */
export function checkParityOutputs(parity: readonly Uint8Array[], m: number, data: readonly Uint8Array[], len: number, what = 'encode'): void {
  checkCount(`${what}: parity shards`, parity.length, m);
  parity.forEach((p, i) => {
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
 * other output), else a fresh array. `into`, when given, has one entry per
 * slot of `shards`; entries of slots not in `fill` are not looked at.
 */
export function reconstructOutputs(
  what: string,
  into: readonly (Uint8Array | null | undefined)[] | undefined,
  shards: readonly (Uint8Array | null | undefined)[],
  fill: readonly number[],
  len: number,
): Uint8Array[] {
  if (into === undefined) return fill.map(() => new Uint8Array(len));
  if (!Array.isArray(into)) throw new TypeError(`${what}: into must be an array of ${shards.length} slots`);
  checkCount(`${what}: into slots`, into.length, shards.length);
  const given: number[] = [];
  return fill.map((i) => {
    const out = into[i];
    if (out === null || out === undefined) return new Uint8Array(len);
    checkShard(`${what}: into ${i}`, out, len);
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

/** One array of a batch for {@link checkBatchDisjoint}: whether it is written, and its name in messages. */
export interface BatchArray {
  readonly array: Uint8Array;
  readonly written: boolean;
  readonly name: string;
}

/**
 * Throw `GS_ERR_FEC_INVALID_PARAMS` when an array a batch writes shares
 * memory with any other array of the batch (read arrays may share memory
 * with each other). One sort and a sweep per buffer, not a check of every
 * pair: a batch of 64 blocks of 72 shards has 4,608 arrays.
 */
export function checkBatchDisjoint(what: string, arrays: readonly BatchArray[]): void {
  const byBuffer = new Map<ArrayBufferLike, BatchArray[]>();
  for (const a of arrays) {
    const list = byBuffer.get(a.array.buffer);
    if (list) list.push(a);
    else byBuffer.set(a.array.buffer, [a]);
  }
  for (const list of byBuffer.values()) {
    if (list.length < 2 || !list.some((a) => a.written)) continue;
    list.sort((a, b) => a.array.byteOffset - b.array.byteOffset);
    // Sorted by start, an array overlaps an earlier one iff it starts before that one's end.
    let reach: BatchArray | undefined; // the earlier array that ends last
    let reachWritten: BatchArray | undefined; // the earlier written array that ends last
    const end = (a: BatchArray) => a.array.byteOffset + a.array.byteLength;
    for (const a of list) {
      const other = a.written ? reach : reachWritten;
      if (other && a.array.byteOffset < end(other)) {
        const [w, r] = a.written ? [a, other] : [other, a];
        throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `${what}: ${w.name} overlaps ${r.name}`);
      }
      if (!reach || end(a) > end(reach)) reach = a;
      if (a.written && (!reachWritten || end(a) > end(reachWritten))) reachWritten = a;
    }
  }
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
 * Inverses of the generator rows chosen for decoding, kept in a small LRU
 * keyed by the erasure pattern (a Map iterates in insertion order, so its
 * first key is the least recently used).
 */
export class DecodeMatrixCache {
  readonly #cache = new Map<string, Gf256Matrix>();

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
}
