/**
 * The one erasure-coder interface every codec in this folder implements
 * (GF(2^8) Reed–Solomon for up to 256 shards, GF(2^16) for up to 65,536).
 *
 * Buffer contract (as klauspost/reedsolomon documents its own): data shards
 * are only read; parity and reconstructed shards are written into the arrays
 * given or freshly allocated; all shards of one block have the same length;
 * a missing shard is `undefined` or `null`. Reconstruction does not verify:
 * call `verify`, and authenticate shards before decoding — FEC proves
 * nothing about where bytes came from.
 */

/**
 * A systematic, MDS erasure code with `k` data shards and `m` parity shards:
 * any `k` of the `k + m` shards give back the data exactly.
 * @public
 */
export interface ErasureCoder {
  /** `k`: data shards per block. */
  readonly dataShards: number;
  /** `m`: parity shards per block. */
  readonly parityShards: number;
  /** `k + m`. */
  readonly totalShards: number;
  /**
   * Compute the `m` parity shards of `data` (`k` shards of equal length).
   * Writes into `parity` when given (`m` arrays of that length), else
   * allocates; returns the parity shards.
   */
  encode(data: readonly Uint8Array[], parity?: Uint8Array[]): Uint8Array[];
  /**
   * Compute only parity shard `parityIndex` (0 ≤ index \< m; shard number
   * `k + parityIndex`), without the others: a fresh repair symbol.
   */
  encodeIndex(data: readonly Uint8Array[], parityIndex: number, out?: Uint8Array): Uint8Array;
  /**
   * Optional: parity shards `parityIndices` made together (one pass over the
   * data), equal to `parityIndices.map((i) => encodeIndex(data, i))`.
   */
  encodeIndices?(data: readonly Uint8Array[], parityIndices: readonly number[]): Uint8Array[];
  /**
   * Fill the missing entries of `shards` (length `k + m`, missing =
   * `undefined`/`null`) from any `k` present ones, in place; with
   * `dataOnly`, only the data shards. Returns `shards`, now dense where asked.
   */
  reconstruct(shards: (Uint8Array | null | undefined)[], options?: { dataOnly?: boolean }): Uint8Array[];
  /** True when the parity shards of a complete block match its data shards. */
  verify(shards: readonly Uint8Array[]): boolean;
}
