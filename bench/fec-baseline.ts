/**
 * The baseline of the FEC figures: a deliberately straightforward GF(2^8)
 * Reed–Solomon, as a first implementation or a textbook would write it —
 * per byte `exp[log[a] + log[c]]` from log/exp tables, one parity shard at a
 * time, no product table, no word packing, no decode cache. It uses the same
 * generator matrix as `src/fec/reed-solomon.ts`, so both must produce the
 * same bytes for the same input, which the figures check before timing.
 */
import { GF256_EXP, GF256_LOG } from '../src/fec/gf256.js';
import { invertMatrix, type Gf256Matrix } from '../src/fec/matrix.js';
import { rs8ParityMatrix } from '../src/fec/reed-solomon.js';

/** `out ^= c · input`, byte by byte through log/exp tables. */
function mulAddLogExp(c: number, input: Uint8Array, out: Uint8Array): void {
  if (c === 0) return;
  const lc = GF256_LOG[c]!;
  for (let i = 0; i < input.length; i++) {
    const a = input[i]!;
    if (a !== 0) out[i]! ^= GF256_EXP[GF256_LOG[a]! + lc]!;
  }
}

/** Log/exp-table Reed–Solomon with `k` data and `m` parity shards. */
export class LogExpReedSolomon {
  readonly #k: number;
  readonly #parity: Gf256Matrix;

  constructor(k: number, m: number) {
    this.#k = k;
    this.#parity = rs8ParityMatrix(k, m);
  }

  /** Parity shards of `data`, freshly allocated. */
  encode(data: readonly Uint8Array[]): Uint8Array[] {
    const len = data[0]!.length;
    return this.#parity.map((row) => {
      const out = new Uint8Array(len);
      for (let j = 0; j < this.#k; j++) mulAddLogExp(row[j]!, data[j]!, out);
      return out;
    });
  }

  /** Fill missing shards in place: invert the first k present rows, then encode the missing parity. */
  reconstruct(shards: (Uint8Array | null)[]): void {
    const k = this.#k;
    const present: number[] = [];
    for (let i = 0; i < shards.length && present.length < k; i++) if (shards[i]) present.push(i);
    const len = shards[present[0]!]!.length;
    const sub = present.map((i) => {
      if (i >= k) return this.#parity[i - k]!.slice();
      const row = new Uint8Array(k);
      row[i] = 1;
      return row;
    });
    const inverse = invertMatrix(sub);
    for (let j = 0; j < k; j++) {
      if (shards[j]) continue;
      const out = new Uint8Array(len);
      for (let t = 0; t < k; t++) mulAddLogExp(inverse[j]![t]!, shards[present[t]!]!, out);
      shards[j] = out;
    }
    const data = shards.slice(0, k) as Uint8Array[];
    this.#parity.forEach((row, i) => {
      if (shards[k + i]) return;
      const out = new Uint8Array(len);
      for (let j = 0; j < k; j++) mulAddLogExp(row[j]!, data[j]!, out);
      shards[k + i] = out;
    });
  }
}
