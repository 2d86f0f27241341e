/**
 * Systematic Reed–Solomon erasure code over GF(2^16), for blocks of up to
 * 65,536 shards (`k + m ≤ 65,536`), behind the same {@link ErasureCoder}
 * interface as the GF(2^8) codec.
 *
 * **Symbols.** A shard is a sequence of 16-bit field elements, so its length in
 * bytes must be even (and non-zero). Each word is read **little-endian**: bytes
 * `b[2i], b[2i+1]` are the element `b[2i] | b[2i+1] << 8`. Parity shards are
 * written the same way. Field and polynomial: see `gf65536.ts`
 * (x^16 + x^12 + x^3 + x + 1).
 *
 * **Generator.** Shard `i` (0 ≤ i < k + m) is tied to the field element `i`.
 * Data shards are the message (systematic); parity shard number `i ≥ k` is
 *
 *     parity_i = Σ_{j<k} d_j / (i ⊕ j)          (⊕ = XOR = field addition)
 *
 * i.e. the generator is `[ I_k ; C ]` with the m×k Cauchy matrix
 * `C[i−k][j] = 1 / (x_i + y_j)`, `x_i = i` (k ≤ i < k+m), `y_j = j` (j < k).
 * The k + m points are distinct, so every square submatrix of C is
 * non-singular and every k×k submatrix of `[ I ; C ]` is too: the code is MDS.
 * Each parity row needs nothing but its own index, so `encodeIndex` computes
 * one repair shard alone, and no k×m table is ever stored (at k + m = 65,536 it
 * would hold up to 2^30 coefficients); a coefficient's log is one table
 * lookup, `log(1/(i⊕j)) = 65535 − log(i⊕j)`.
 *
 * **Decoding.** With `e` data shards missing, the present data shards are
 * subtracted from `e` present parity shards (the syndromes), leaving an e×e
 * system whose matrix is again Cauchy. It is inverted by the closed form for
 * Cauchy matrices in O(e²) field operations (no Gaussian elimination, no k×k
 * inverse), and the data work is O(e·k) word multiply-adds per word of shard.
 * Reconstructing e = m shards of a code with huge k and m is still
 * O(m·k·length/2): at k = m = 32,768 that is 2^30 multiply-adds per word, so
 * very large blocks pay for their size.
 *
 * **Speed.** Encoding, the syndromes and the data recovery are block
 * products (`outputs = coefficients · inputs`), run by the WebAssembly SIMD
 * kernel when it is in use (gf256-kernel.ts `combineRows16`: eight nibble
 * tables per coefficient; 7–10× the throughput of the loop below at
 * 300 + 20 × 1,400 B, `npm run bench -- fec16`). The portable path, used otherwise (and for blocks of
 * more than ~18,000 inputs), is a log/exp multiply-add with a zero test, over
 * `Uint16Array` views when the platform is little-endian and the shard is
 * 2-byte aligned, else over a copied word array: not tuned like the GF(2^8)
 * codec. Use this code when a block needs more than 256 shards.
 *
 * **Authenticity.** FEC proves nothing about where bytes came from: a forged
 * or corrupted shard gives wrong data without any error. Authenticate shards
 * before decoding, and check the rebuilt object's digest.
 *
 * @packageDocumentation
 */
import { FecError } from '../errors/index.js';
import type { ErasureCoder } from './coder.js';
import { combineRows16 } from './gf256-kernel.js';
import { checkCount, checkShard } from './rs8-support.js';
import { GF65536_EXP as EXP, GF65536_LOG as LOG, GF65536_ORDER as ORDER } from './gf65536.js';

/**
 * Largest `k + m` of {@link ReedSolomon16}: 65,536, the size of GF(2^16).
 * @public
 */
export const RS16_MAX_SHARDS = 65_536;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A `Uint16Array` over the same bytes when their layout already is little-endian words. */
function wordView(b: Uint8Array): Uint16Array | undefined {
  return LITTLE_ENDIAN && b.byteOffset % 2 === 0 ? new Uint16Array(b.buffer, b.byteOffset, b.length >> 1) : undefined;
}

/** The little-endian words of `b`, as a view when possible, else a copy. */
function loadWords(b: Uint8Array): Uint16Array {
  const view = wordView(b);
  if (view) return view;
  const w = new Uint16Array(b.length >> 1);
  for (let i = 0; i < w.length; i++) w[i] = b[2 * i]! | (b[2 * i + 1]! << 8);
  return w;
}

/** Write `w` into `out` as little-endian words, unless `w` already is a view of `out`. */
function storeWords(w: Uint16Array, out: Uint8Array): void {
  if (w.buffer === out.buffer && w.byteOffset === out.byteOffset) return;
  for (let i = 0; i < w.length; i++) {
    const v = w[i]!;
    out[2 * i] = v & 0xff;
    out[2 * i + 1] = v >>> 8;
  }
}

/** A word array to compute `out` into: its view when possible, else scratch for {@link storeWords}. */
function outputWords(out: Uint8Array): Uint16Array {
  return wordView(out) ?? new Uint16Array(out.length >> 1);
}

/**
 * `dst ^= c · src`, c given as its log. The hot loop: no allocation, one zero
 * test per word (log 0 does not exist), and `EXP` is doubled so the sum of two
 * logs needs no modulo.
 */
function mulAddWords(logC: number, src: Uint16Array, dst: Uint16Array): void {
  const n = src.length;
  if (logC === 0) {
    for (let i = 0; i < n; i++) dst[i] = dst[i]! ^ src[i]!;
    return;
  }
  for (let i = 0; i < n; i++) {
    const s = src[i]!;
    if (s !== 0) dst[i] = dst[i]! ^ EXP[logC + LOG[s]!]!;
  }
}

/** log of 1/a for a ≠ 0, in 0…65,534. */
function logInv(a: number): number {
  const l = LOG[a]!;
  return l === 0 ? 0 : ORDER - l;
}

/** ((v mod ORDER) + ORDER) mod ORDER for any integer v. */
function modOrder(v: number): number {
  return ((v % ORDER) + ORDER) % ORDER;
}

/**
 * Logs of the inverse of the n×n Cauchy matrix `A[r][c] = 1/(x_r + y_c)`:
 * `result[c·n + r] = log B[c][r]` with `B·A = I`. Closed form (characteristic
 * 2, so every minus is a plus):
 *
 *     B[c][r] = Π_t (x_r + y_t) · Π_t (x_t + y_c)
 *               / ( (x_r + y_c) · Π_{t≠r} (x_r + x_t) · Π_{t≠c} (y_c + y_t) )
 *
 * All x and y are distinct field elements, so no factor is zero. @internal
 */
export function cauchyInverseLogs(xs: readonly number[], ys: readonly number[]): Uint32Array {
  const n = xs.length;
  const sx = new Float64Array(n);
  const sy = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const x = xs[r]!;
    let s = 0;
    for (let t = 0; t < n; t++) {
      s += LOG[x ^ ys[t]!]!;
      if (t !== r) s -= LOG[x ^ xs[t]!]!;
    }
    sx[r] = s;
  }
  for (let c = 0; c < n; c++) {
    const y = ys[c]!;
    let s = 0;
    for (let t = 0; t < n; t++) {
      s += LOG[xs[t]! ^ y]!;
      if (t !== c) s -= LOG[y ^ ys[t]!]!;
    }
    sy[c] = s;
  }
  const out = new Uint32Array(n * n);
  for (let c = 0; c < n; c++) {
    for (let r = 0; r < n; r++) out[c * n + r] = modOrder(sx[r]! + sy[c]! - LOG[xs[r]! ^ ys[c]!]!);
  }
  return out;
}

/**
 * Reed–Solomon over GF(2^16) with `k` data and `m` parity shards,
 * `k ≥ 1`, `m ≥ 1`, `k + m ≤ 65,536`; shards of one even, non-zero length.
 * See the module comment for the Cauchy generator and the word byte order.
 *
 * FEC proves nothing about authenticity: authenticate shards before decoding.
 *
 * @example
 * ```ts
 * const rs = new ReedSolomon16(300, 20);
 * const parity = rs.encode(data);            // data: 300 shards of 1,400 bytes
 * const shards = [...data, ...parity];
 * shards[7] = null;                          // lost
 * rs.reconstruct(shards);                    // shards[7] is back
 * ```
 * @public
 */
export class ReedSolomon16 implements ErasureCoder {
  /** `k`: data shards per block. */
  readonly dataShards: number;
  /** `m`: parity shards per block. */
  readonly parityShards: number;
  /** `k + m`. */
  readonly totalShards: number;

  /**
   * @param dataShards - `k` ≥ 1
   * @param parityShards - `m` ≥ 1, with `k + m ≤ 65,536`
   * @throws FecError `GS_ERR_FEC_INVALID_PARAMS` for any other k or m.
   */
  constructor(dataShards: number, parityShards: number) {
    if (!Number.isInteger(dataShards) || dataShards < 1) {
      throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `data shard count k must be an integer ≥ 1, got ${dataShards}`);
    }
    if (!Number.isInteger(parityShards) || parityShards < 1) {
      throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `parity shard count m must be an integer ≥ 1, got ${parityShards}`);
    }
    if (dataShards + parityShards > RS16_MAX_SHARDS) {
      throw new FecError(
        'GS_ERR_FEC_INVALID_PARAMS',
        `k + m must be ≤ ${RS16_MAX_SHARDS} for GF(2^16), got ${dataShards} + ${parityShards}`,
      );
    }
    this.dataShards = dataShards;
    this.parityShards = parityShards;
    this.totalShards = dataShards + parityShards;
  }

  /**
   * Compute the `m` parity shards of `data` (`k` shards of one even length).
   * Reads `data` only; writes into `parity` when given, else allocates.
   * @throws FecError `GS_ERR_FEC_TOO_FEW_SHARDS` / `GS_ERR_FEC_BAD_INDEX` when
   * `data` has fewer / more than k entries, `GS_ERR_FEC_SHARD_SIZE` for an odd,
   * empty or mismatched length; `GS_ERR_FEC_TOO_FEW_SHARDS` / `GS_ERR_FEC_BAD_INDEX`
   * for a `parity` array with fewer / more than m shards.
   */
  encode(data: readonly Uint8Array[], parity?: Uint8Array[]): Uint8Array[] {
    const len = this.checkData(data);
    if (parity !== undefined) {
      // As the GF(2^8) codec words it: too few outputs, or one past the code.
      checkCount('encode: parity shards', parity.length, this.parityShards);
      parity.forEach((p, i) => this.checkOutput(p, len, `parity shard ${i}`));
    }
    const out = parity ?? Array.from({ length: this.parityShards }, () => new Uint8Array(len));
    this.encodeRows(data, Array.from({ length: this.parityShards }, (_, p) => p), out);
    return out;
  }

  /**
   * Compute only parity shard `parityIndex` (shard number `k + parityIndex`).
   * @throws FecError `GS_ERR_FEC_BAD_INDEX` unless 0 ≤ parityIndex \< m, and the
   * errors of {@link ReedSolomon16.encode} for `data` and `out`.
   */
  encodeIndex(data: readonly Uint8Array[], parityIndex: number, out?: Uint8Array): Uint8Array {
    const len = this.checkData(data);
    if (!Number.isInteger(parityIndex) || parityIndex < 0 || parityIndex >= this.parityShards) {
      throw new FecError('GS_ERR_FEC_BAD_INDEX', `parity index must be an integer in 0…${this.parityShards - 1}, got ${parityIndex}`);
    }
    if (out !== undefined) this.checkOutput(out, len, 'output shard');
    const dst = out ?? new Uint8Array(len);
    this.encodeRows(data, [parityIndex], [dst]);
    return dst;
  }

  /**
   * Compute parity shards `parityIndices` together, in one block product:
   * equal to `parityIndices.map((i) => encodeIndex(data, i))`. Returns new arrays.
   * @throws FecError as {@link ReedSolomon16.encodeIndex}.
   */
  encodeIndices(data: readonly Uint8Array[], parityIndices: readonly number[]): Uint8Array[] {
    const len = this.checkData(data);
    for (const i of parityIndices) {
      if (!Number.isInteger(i) || i < 0 || i >= this.parityShards) {
        throw new FecError('GS_ERR_FEC_BAD_INDEX', `parity index must be an integer in 0…${this.parityShards - 1}, got ${i}`);
      }
    }
    const outs = parityIndices.map(() => new Uint8Array(len));
    if (outs.length > 0) this.encodeRows(data, [...parityIndices], outs);
    return outs;
  }

  /**
   * Fill the missing (`null`/`undefined`) entries of `shards` (exactly k + m
   * entries) from any k present ones, in place. Present shards are only read.
   * With `dataOnly`, missing parity shards stay missing. Does not verify: a
   * wrong present shard gives wrong output.
   * @throws FecError `GS_ERR_FEC_BAD_INDEX` when `shards` does not have k + m
   * entries, `GS_ERR_FEC_SHARD_SIZE` for odd, empty or unequal lengths,
   * `GS_ERR_FEC_TOO_FEW_SHARDS` when fewer than k are present.
   */
  reconstruct(shards: (Uint8Array | null | undefined)[], options?: { dataOnly?: boolean }): Uint8Array[] {
    const k = this.dataShards;
    const len = this.checkShardArray(shards, false);
    let present = 0;
    for (const s of shards) if (s != null) present++;
    if (present < k) {
      throw new FecError('GS_ERR_FEC_TOO_FEW_SHARDS', `reconstruct needs ${k} of ${this.totalShards} shards, got ${present}`);
    }
    const missingData: number[] = [];
    for (let j = 0; j < k; j++) if (shards[j] == null) missingData.push(j);
    if (missingData.length > 0) this.decodeData(shards, missingData, len);
    if (!options?.dataOnly) {
      const data = shards.slice(0, k) as Uint8Array[];
      const missingParity: number[] = [];
      for (let p = 0; p < this.parityShards; p++) if (shards[k + p] == null) missingParity.push(p);
      if (missingParity.length > 0) {
        const outs = missingParity.map(() => new Uint8Array(len));
        this.encodeRows(data, missingParity, outs);
        missingParity.forEach((p, i) => (shards[k + p] = outs[i]!));
      }
    }
    return shards as Uint8Array[];
  }

  /**
   * True when every parity shard of a complete block (k + m shards) matches
   * its data shards. Reads only.
   * @throws FecError `GS_ERR_FEC_BAD_INDEX` when `shards` does not have k + m
   * entries, `GS_ERR_FEC_TOO_FEW_SHARDS` when one is missing,
   * `GS_ERR_FEC_SHARD_SIZE` for odd, empty or unequal lengths.
   */
  verify(shards: readonly Uint8Array[]): boolean {
    const len = this.checkShardArray(shards, true);
    const k = this.dataShards;
    const data = shards.slice(0, k);
    const scratch = new Uint8Array(len);
    for (let p = 0; p < this.parityShards; p++) {
      this.encodeRows(data, [p], [scratch]);
      const given = shards[k + p]!;
      for (let i = 0; i < len; i++) if (scratch[i] !== given[i]) return false;
    }
    return true;
  }

  /**
   * Parity rows `ps` of `data` into `outs` (one per row): one block product
   * on the SIMD kernel when it is in use, else {@link ReedSolomon16.encodeRow}
   * per row.
   */
  private encodeRows(data: readonly Uint8Array[], ps: readonly number[], outs: readonly Uint8Array[]): void {
    const k = this.dataShards;
    if (combineRows16((r, j) => EXP[logInv((k + ps[r]!) ^ j)]!, data, outs)) return;
    const words = data.map(loadWords);
    ps.forEach((p, i) => this.encodeRow(words, p, outs[i]!));
  }

  /** Parity row `p` of `data` (as words) into `out`. */
  private encodeRow(data: readonly Uint16Array[], p: number, out: Uint8Array): void {
    const dst = outputWords(out);
    dst.fill(0);
    const x = this.dataShards + p;
    for (let j = 0; j < data.length; j++) mulAddWords(logInv(x ^ j), data[j]!, dst);
    storeWords(dst, out);
  }

  /** Rebuild the data shards `missing` (sorted) from the present ones; `shards` holds ≥ k. */
  private decodeData(shards: (Uint8Array | null | undefined)[], missing: readonly number[], len: number): void {
    const k = this.dataShards;
    const e = missing.length;
    const rows: number[] = [];
    for (let i = k; i < this.totalShards && rows.length < e; i++) if (shards[i] != null) rows.push(i);
    const lost = new Set(missing);
    if (this.decodeDataSimd(shards, rows, missing, lost, len)) return;
    // Syndromes: parity_x minus the present data's share, = Σ_{c} d_{y_c} / (x + y_c).
    const syndromes = rows.map((x) => {
      const s = loadWords(shards[x]!).slice();
      for (let j = 0; j < k; j++) if (!lost.has(j)) mulAddWords(logInv(x ^ j), loadWords(shards[j]!), s);
      return s;
    });
    const inv = cauchyInverseLogs(rows, missing);
    for (let c = 0; c < e; c++) {
      const out = new Uint8Array(len);
      const dst = outputWords(out);
      for (let r = 0; r < e; r++) mulAddWords(inv[c * e + r]!, syndromes[r]!, dst);
      storeWords(dst, out);
      shards[missing[c]!] = out;
    }
  }

  /**
   * {@link ReedSolomon16.decodeData} as two block products on the SIMD
   * kernel: the syndromes (inputs: the e parity shards `rows`, coefficient 1
   * for its own row and 0 for the others, then the present data shards),
   * then the data (the syndromes times the Cauchy inverse). False, with
   * nothing written, when the SIMD kernel is not in use or the block is too
   * wide for it.
   */
  private decodeDataSimd(
    shards: (Uint8Array | null | undefined)[],
    rows: readonly number[],
    missing: readonly number[],
    lost: ReadonlySet<number>,
    len: number,
  ): boolean {
    const e = missing.length;
    const present: number[] = [];
    for (let j = 0; j < this.dataShards; j++) if (!lost.has(j)) present.push(j);
    const inputs = [...rows.map((x) => shards[x]!), ...present.map((j) => shards[j]!)];
    const syndromes = rows.map(() => new Uint8Array(len));
    const coefficient = (r: number, t: number) => (t < e ? (t === r ? 1 : 0) : EXP[logInv(rows[r]! ^ present[t - e]!)]!);
    if (!combineRows16(coefficient, inputs, syndromes)) return false;
    const inv = cauchyInverseLogs(rows, missing);
    const outs = missing.map(() => new Uint8Array(len));
    if (!combineRows16((c, r) => EXP[inv[c * e + r]!]!, syndromes, outs)) return false;
    missing.forEach((j, c) => (shards[j] = outs[c]!));
    return true;
  }

  /** Check `data` is k shards of one even, non-zero length; return it. */
  private checkData(data: readonly Uint8Array[]): number {
    const k = this.dataShards;
    if (!Array.isArray(data)) throw new FecError('GS_ERR_FEC_TOO_FEW_SHARDS', 'data must be an array of k shards');
    if (data.length < k) throw new FecError('GS_ERR_FEC_TOO_FEW_SHARDS', `encode needs k = ${k} data shards, got ${data.length}`);
    if (data.length > k) throw new FecError('GS_ERR_FEC_BAD_INDEX', `encode takes k = ${k} data shards, got ${data.length}`);
    let len = -1;
    data.forEach((d, i) => {
      if (d == null) throw new FecError('GS_ERR_FEC_TOO_FEW_SHARDS', `data shard ${i} is missing`);
      len = checkShard16(d, len, `data shard ${i}`);
    });
    return len;
  }

  /** Check a k + m shard array (missing entries allowed unless `complete`); return the common length. */
  private checkShardArray(shards: readonly (Uint8Array | null | undefined)[], complete: boolean): number {
    if (!Array.isArray(shards) || shards.length !== this.totalShards) {
      const got = Array.isArray(shards) ? `${shards.length} entries` : typeof shards;
      throw new FecError('GS_ERR_FEC_BAD_INDEX', `shards must be an array of k + m = ${this.totalShards} entries, got ${got}`);
    }
    let len = -1;
    shards.forEach((s, i) => {
      if (s == null) {
        if (complete) throw new FecError('GS_ERR_FEC_TOO_FEW_SHARDS', `verify needs all ${this.totalShards} shards; shard ${i} is missing`);
        return;
      }
      len = checkShard16(s, len, `shard ${i}`);
    });
    return len;
  }

  private checkOutput(out: Uint8Array, len: number, what: string): void {
    if (!(out instanceof Uint8Array) || out.length !== len) {
      const got = out instanceof Uint8Array ? `${out.length} bytes` : typeof out;
      throw new FecError('GS_ERR_FEC_SHARD_SIZE', `${what} must be a Uint8Array of ${len} bytes, got ${got}`);
    }
  }
}

/**
 * Check one shard: a non-empty Uint8Array of even length equal to `len` (any
 * length when `len` is -1), through the GF(2^8) codec's check so both codecs
 * word their refusals alike. Returns its length.
 */
function checkShard16(s: Uint8Array, len: number, what: string): number {
  if (s instanceof Uint8Array && s.length % 2 !== 0) {
    throw new FecError('GS_ERR_FEC_SHARD_SIZE', `${what} has odd length ${s.length}: GF(2^16) shards are 16-bit words, so lengths must be even`);
  }
  return checkShard(what, s, len);
}

/**
 * A {@link ReedSolomon16} code with `k` data and `m` parity shards: the
 * factory form of `new ReedSolomon16(k, m)`, for the object layer's `coder` option.
 * @public
 */
export function createReedSolomon16(dataShards: number, parityShards: number): ReedSolomon16 {
  return new ReedSolomon16(dataShards, parityShards);
}
