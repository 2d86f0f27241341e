/**
 * Progressive use of an erasure code: encode data shards as they arrive,
 * decode as soon as enough shards are in.
 *
 * Encoding is linear — parity shard i = Σ_j P[i][j] · data shard j — so
 * {@link StreamingEncoder} adds each data shard's contribution to every
 * parity shard when it arrives and forgets the shard: it holds the `m`
 * parity shards and nothing else, whatever the order of arrival.
 * {@link ProgressiveDecoder} keeps shards by index and decodes the moment
 * any `k` are in. Neither checks where shards came from: FEC proves nothing
 * about authenticity, so authenticate shards before feeding them.
 *
 * @packageDocumentation
 */
import { FecError } from '../errors/index.js';
import type { ErasureCoder } from './coder.js';
import { mul, mulAdd } from './gf256-kernel.js';
import type { ReedSolomon } from './reed-solomon.js';
import { checkShard } from './rs8-support.js';

/** Throw unless `index` is an integer in `[0, limit)` not yet in `seen`. */
function checkIndex(what: string, index: number, limit: number, seen: Uint8Array): void {
  if (!Number.isInteger(index) || index < 0 || index >= limit) {
    throw new FecError('GS_ERR_FEC_BAD_INDEX', `${what}: index ${index} is outside 0…${limit - 1}`);
  }
  if (seen[index]) throw new FecError('GS_ERR_FEC_BAD_INDEX', `${what}: shard ${index} was already given`);
}

/**
 * Computes the parity of one block from its data shards fed one at a time,
 * in any order; the parity is ready when the last data shard is in. Holds
 * only the `m` parity shards (and reads the shard being added), so a block's
 * data never needs to be in memory whole.
 *
 * The result equals `coder.encode(data)` byte for byte. One block per
 * encoder; make a new one (cheap) for the next block.
 *
 * @example
 * ```ts
 * const enc = new StreamingEncoder(new ReedSolomon(10, 4));
 * for (const [index, shard] of arrivals) {
 *   const parity = enc.add(index, shard);
 *   if (parity) send(parity);              // after the 10th distinct shard
 * }
 * ```
 * @public
 */
export class StreamingEncoder {
  readonly #coder: ReedSolomon;
  readonly #seen: Uint8Array;
  #parity: Uint8Array[] | undefined;
  #received = 0;

  /**
   * An encoder for one block of `coder`. With `shardLength`, every shard
   * must have that length; without, the first shard sets it.
   */
  constructor(coder: ReedSolomon, shardLength?: number) {
    if (shardLength !== undefined && !(Number.isSafeInteger(shardLength) && shardLength >= 1)) {
      throw new FecError('GS_ERR_FEC_SHARD_SIZE', `shardLength must be an integer ≥ 1, got ${shardLength}`);
    }
    this.#coder = coder;
    this.#seen = new Uint8Array(coder.dataShards);
    if (shardLength !== undefined) this.#allocate(shardLength);
  }

  /** Data shards added so far. */
  get received(): number {
    return this.#received;
  }

  /** True once all `k` data shards are in and the parity is final. */
  get complete(): boolean {
    return this.#received === this.#coder.dataShards;
  }

  /**
   * Add data shard `dataIndex` (0 ≤ index \< k). Its bytes are read now and
   * not kept. Returns the `m` parity shards when this was the last data
   * shard of the block, else `undefined`. Throws `GS_ERR_FEC_BAD_INDEX` for
   * an index outside the block or given before, `GS_ERR_FEC_SHARD_SIZE`
   * for a shard of another length; the encoder is unchanged then.
   */
  add(dataIndex: number, shard: Uint8Array): Uint8Array[] | undefined {
    const k = this.#coder.dataShards;
    checkIndex('StreamingEncoder.add', dataIndex, k, this.#seen);
    checkShard(`StreamingEncoder.add: data shard ${dataIndex}`, shard, this.#parity ? this.#parity[0]!.length : -1);
    const parity = this.#parity ?? this.#allocate(shard.length);
    const first = this.#received === 0;
    for (let i = 0; i < parity.length; i++) {
      const c = this.#coder.coefficient(i, dataIndex);
      // The first shard writes, the rest add: no zero-fill pass needed.
      if (first) mul(c, shard, parity[i]!);
      else mulAdd(c, shard, parity[i]!);
    }
    this.#seen[dataIndex] = 1;
    this.#received++;
    return this.complete ? parity : undefined;
  }

  /**
   * The parity shards, once {@link StreamingEncoder.complete}. Throws
   * `GS_ERR_FEC_TOO_FEW_SHARDS` before.
   */
  parity(): Uint8Array[] {
    if (!this.complete || !this.#parity) {
      throw new FecError(
        'GS_ERR_FEC_TOO_FEW_SHARDS',
        `StreamingEncoder: ${this.#received} of ${this.#coder.dataShards} data shards in, parity not final`,
      );
    }
    return this.#parity;
  }

  #allocate(len: number): Uint8Array[] {
    return (this.#parity = Array.from({ length: this.#coder.parityShards }, () => new Uint8Array(len)));
  }
}

/**
 * Collects the shards of one block by index, as they arrive, and decodes as
 * soon as any `k` distinct shards are in: {@link ProgressiveDecoder.add}
 * returns the `k` data shards then. Works with any {@link ErasureCoder}.
 *
 * Holds references to the shards it was given until it has decoded (do not
 * change them meanwhile), then drops the parity ones. It does not verify:
 * what comes out is only as good as what went in.
 *
 * @example
 * ```ts
 * const dec = new ProgressiveDecoder(new ReedSolomon(10, 4));
 * for (const packet of packets) {
 *   const data = dec.add(packet.index, packet.shard);
 *   if (data) return data;                  // any 10 distinct shards
 * }
 * ```
 * @public
 */
export class ProgressiveDecoder {
  readonly #coder: ErasureCoder;
  readonly #seen: Uint8Array;
  #shards: (Uint8Array | null)[];
  #data: Uint8Array[] | undefined;
  #len = -1;
  #received = 0;

  /** A decoder for one block of `coder`. */
  constructor(coder: ErasureCoder) {
    this.#coder = coder;
    this.#seen = new Uint8Array(coder.totalShards);
    this.#shards = new Array<Uint8Array | null>(coder.totalShards).fill(null);
  }

  /** Distinct shards received so far (also those after decoding). */
  get received(): number {
    return this.#received;
  }

  /** True once the data shards are decoded. */
  get done(): boolean {
    return this.#data !== undefined;
  }

  /**
   * Add shard `index` (0 ≤ index \< k + m; data shards first, then parity).
   * Returns the `k` data shards once `k` distinct shards are in — from this
   * call on; shards after that are checked and ignored. Throws
   * `GS_ERR_FEC_BAD_INDEX` for an index outside the block or given before,
   * `GS_ERR_FEC_SHARD_SIZE` for a shard of another length; the decoder is
   * unchanged then.
   */
  add(index: number, shard: Uint8Array): Uint8Array[] | undefined {
    checkIndex('ProgressiveDecoder.add', index, this.#coder.totalShards, this.#seen);
    checkShard(`ProgressiveDecoder.add: shard ${index}`, shard, this.#len);
    this.#len = shard.length;
    this.#seen[index] = 1;
    this.#received++;
    if (this.#data) return this.#data;
    this.#shards[index] = shard;
    if (this.#received < this.#coder.dataShards) return undefined;
    const shards = this.#coder.reconstruct(this.#shards, { dataOnly: true });
    this.#data = shards.slice(0, this.#coder.dataShards);
    this.#shards = [];
    return this.#data;
  }

  /**
   * The data shards, once {@link ProgressiveDecoder.done}. Throws
   * `GS_ERR_FEC_TOO_FEW_SHARDS` before.
   */
  data(): Uint8Array[] {
    if (!this.#data) {
      throw new FecError(
        'GS_ERR_FEC_TOO_FEW_SHARDS',
        `ProgressiveDecoder: ${this.#received} of ${this.#coder.totalShards} shards in, need ${this.#coder.dataShards}`,
      );
    }
    return this.#data;
  }
}
