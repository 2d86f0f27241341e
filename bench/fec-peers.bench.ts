/**
 * FEC figures against outside Reed–Solomon encoders, where they are
 * installed (bench/fec-peers/peers.ts finds them; absent ones are left out
 * of the list with one stderr line, never failed; `GATESOCK_BENCH_NO_PEERS=1`
 * leaves both out):
 *
 * - `fec-encode 16+4 x 64KiB vs isal`: ISA-L (Debian `libisal-dev`), SIMD C.
 *   Target ratio ≥ 0.01 only: the point is to show the gap, not to close it —
 *   SIMD C with GF(2^8) shuffles is some 50× faster than any pure-JS kernel.
 * - `fec-encode 16+4 x 64KiB vs zfec`: zfec (Debian `python3-zfec`), a plain
 *   table-driven C core. Target ratio ≥ 0.5: within 2× of C zfec.
 *
 * Ours is gatesock's `ReedSolomon` on one core (this thread), measured in
 * the same run with the same k, m, shard length and data; the peer runs in a
 * child process, alternating with ours (harness `sideBySide`), each sample
 * about the same length. Unit: MB/s of data (k × shard bytes per block,
 * MB = 10^6 bytes), the unit of bench/fec.bench.ts.
 *
 * Speed only: the three codes use different generator matrices (ours a
 * normalised Cauchy matrix, see src/fec/reed-solomon.ts; ISA-L's
 * `gf_gen_cauchy1_matrix` unnormalised; zfec a systematic Vandermonde), so
 * their parity bytes differ. Each is still checked before timing: ours
 * verifies its parity; ISA-L's parity must equal its Cauchy matrix applied
 * with our GF(2^8) kernel, on every sample; zfec decodes its own parity back
 * to the data, and must print the same parity checksum on every sample.
 */
import { ReedSolomon } from '../src/fec/reed-solomon.js';
import { findPeers, patternShards, type Peer, type PeerShape } from './fec-peers/peers.js';
import { defineFigures, sideBySide, type Figure, type Target } from './harness.js';

/** Timed rounds per side (medians reported). */
const ROUNDS = 5;
/** Length of one timed sample, and of our warm-up, in milliseconds. */
const SAMPLE_MS = 300;
const WARMUP_MS = 300;

type LabelledShape = PeerShape & { readonly label: string };
/** The three shapes, as in fec.bench.ts. */
const SHAPES: readonly LabelledShape[] = [
  { k: 10, m: 4, len: 64 * 1024, label: '64KiB' },
  { k: 16, m: 4, len: 64 * 1024, label: '64KiB' },
  { k: 64, m: 8, len: 1400, label: '1400B' },
];

/** MB/s of data of our encoder over about `ms`. */
function oursThroughput(rs: ReedSolomon, data: Uint8Array[], parity: Uint8Array[], ms: number): number {
  const bytes = data.length * data[0]!.length;
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    rs.encode(data, parity);
    n++;
    t = performance.now();
  } while (t - t0 < ms);
  return (n * bytes) / ((t - t0) * 1000);
}

function peerFigure(peer: Peer, shape: LabelledShape, target: Target): Figure {
  const { k, m, len, label } = shape;
  return {
    name: `fec-encode ${k}+${m} x ${label} vs ${peer.name}`,
    unit: 'MB/s',
    target,
    async run() {
      const rs = new ReedSolomon(k, m);
      const data = patternShards(shape);
      const parity = Array.from({ length: m }, () => new Uint8Array(len));
      rs.encode(data, parity);
      if (!rs.verify([...data, ...parity])) throw new Error('our parity does not verify');
      oursThroughput(rs, data, parity, WARMUP_MS);
      const sample = await peer.prepare(shape, SAMPLE_MS);
      const measured = await sideBySide(ROUNDS, async () => oursThroughput(rs, data, parity, SAMPLE_MS), sample);
      if (!rs.verify([...data, ...parity])) throw new Error('our parity does not verify after timing');
      return { ...measured, baselineName: peer.name };
    },
  };
}

const peers = findPeers();

export const figures = defineFigures([
  // The gap to SIMD C (~50×), shown rather than closed.
  ...(peers.isal ? SHAPES.map((shape) => peerFigure(peers.isal!, shape, { better: 'higher', ratio: 0.01 })) : []),
  // Within 2× of C zfec.
  ...(peers.zfec ? SHAPES.map((shape) => peerFigure(peers.zfec!, shape, { better: 'higher', ratio: 0.5 })) : []),
]);
