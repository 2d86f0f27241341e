/**
 * The GF(2^8) kernels, WebAssembly SIMD against the portable JS loops, in
 * the same run on the same bytes (gf256-kernel.ts `selectGf256Kernel`
 * switches this thread between them before each sample): ours = SIMD,
 * baseline = JS.
 *
 * - `gf256-mulAdd 64KiB` / `1KiB`: the public `mulAdd` on one array pair,
 *   coefficients varying over 2…255 (c = 0 and 1 take shortcuts), MB/s of
 *   input. The SIMD side includes its copies into and out of WebAssembly
 *   memory, as every caller pays them.
 * - `fec-reconstruct 192+64 x 1400B (E lost…)`: `ReedSolomon.reconstruct`
 *   with `dataOnly` (what the multicast receiver runs) of a block with E
 *   data shards lost (the most work: every lost shard rebuilt from 192),
 *   MB/s of the block's data (192 × 1,400 B per call). `cached`: the same
 *   pattern every call, so the decode matrix comes from the cache and the
 *   figure is the block product alone; `fresh`: the decode cache off, so
 *   every call also builds the decode rows (an e × e inverse, Gauss–Jordan
 *   in the kernel, then e × k products; a 192 × 192 inverse before
 *   d5776df) — a receiver sees a new loss pattern in nearly every block.
 *
 * - `fec16-encode 300+20 x 1400B` / `fec16-reconstruct … (20 lost)`: the
 *   GF(2^16) codec (ReedSolomon16), SIMD block products (eight nibble
 *   tables per coefficient) against its log/exp word loop; MB/s of data.
 *
 * - `fec-object-decode 8MiB 192+64 x 1400B (5% loss)`: an ObjectDecoder
 *   taking the symbols a receiver would get when every 20th symbol on the
 *   wire is lost (source then repair per block; ~10 source symbols lost per
 *   block, each block a new erasure pattern), from the first symbol to the
 *   decoded object (`add(…, { copy: false })`, as the receiver calls it);
 *   MB/s of object. What the multicast receiver's FEC costs, without the
 *   network. Target: ratio ≥ 1.5 (the decoder's own work is the same with
 *   either kernel); the other figures' target is 2.
 *
 * Before timing, each figure checks that both kernels give the same bytes
 * (and the reconstruction gives the data back); otherwise it throws.
 * Samples alternate which kernel goes first (sideBySide); each sample's
 * MB/s, wall and CPU seconds and MB per CPU second go to stderr, the
 * medians of MB/s to the figure line.
 * Targets are ours, not the issue's: SIMD at least 2× the JS loop (1.5×
 * for the whole-object decode).
 */
import { combineRows, gf256Kernel, mulAdd, selectGf256Kernel, type Gf256KernelName } from '../src/fec/gf256-kernel.js';
import { ObjectDecoder, ObjectEncoder } from '../src/fec/object.js';
import { ReedSolomon, createReedSolomon } from '../src/fec/reed-solomon.js';
import { ReedSolomon16 } from '../src/fec/reed-solomon16.js';
import { defineFigures, sideBySide, timedLoop, type Figure } from './harness.js';
import { PATTERN_MAX_CHUNK, patternAt } from './pattern.js';

/** Timed rounds per side (medians reported). */
const ROUNDS = 5;
/** Length of one timed sample, and of each side's warm-up, in milliseconds. */
const SAMPLE_MS = 300;
const WARMUP_MS = 300;

/** Deterministic pseudo-random bytes (a copy of the benchmarks' shared pattern from an offset per seed). */
function bytes(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let at = 0; at < len; at += PATTERN_MAX_CHUNK) {
    out.set(patternAt(seed * 7919 + at, Math.min(PATTERN_MAX_CHUNK, len - at)), at);
  }
  return out;
}

const same = (a: Uint8Array, b: Uint8Array | null | undefined) => b instanceof Uint8Array && Buffer.from(a).equals(Buffer.from(b));

/** One sample: run `op` (processing `bytes` per call) for about `ms` with kernel `name`. */
function sample(name: Gf256KernelName, op: () => void, perCall: number, ms: number, log: string[]): number {
  if (selectGf256Kernel(name) !== name) throw new Error(`the ${name} kernel is not available here`);
  const cpu0 = process.cpuUsage();
  const { calls: n, wallMs } = timedLoop(op, ms);
  const cpu = process.cpuUsage(cpu0);
  const rate = (n * perCall) / (wallMs * 1000);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  // MB per CPU second too: on a loaded machine it moves less than MB/s of wall time.
  log.push(`${name} ${rate.toFixed(0)} MB/s (wall ${(wallMs / 1000).toFixed(2)} s, cpu ${cpuS.toFixed(2)} s, ${((n * perCall) / 1e6 / cpuS).toFixed(0)} MB/cpu-s)`);
  return rate;
}

/** A figure timing `op` (per call `perCall` bytes) with each kernel; `check` runs first under each. */
function kernelFigure(name: string, perCall: number, op: () => void, check: () => void, ratio = 2): Figure {
  return {
    name,
    unit: 'MB/s',
    target: { better: 'higher', ratio },
    async run() {
      const before = gf256Kernel();
      const log: string[] = [];
      try {
        for (const k of ['simd', 'portable'] as const) {
          selectGf256Kernel(k);
          check();
          sample(k, op, perCall, WARMUP_MS, []);
        }
        const m = await sideBySide(
          ROUNDS,
          async () => sample('simd', op, perCall, SAMPLE_MS, log),
          async () => sample('portable', op, perCall, SAMPLE_MS, log),
        );
        console.error(`bench: ${name}: ${log.join('; ')}`);
        return { ...m, baselineName: 'js-kernel' };
      } finally {
        selectGf256Kernel(before);
      }
    },
  };
}

function mulAddFigure(len: number, label: string): Figure {
  const input = bytes(len, 1);
  const output = bytes(len, 2);
  let c = 2;
  // Check: both kernels give the same bytes for the same calls.
  const results: Uint8Array[] = [];
  return kernelFigure(
    `gf256-mulAdd ${label} simd vs js`,
    len,
    () => {
      mulAdd(c, input, output);
      c = c === 255 ? 2 : c + 1;
    },
    () => {
      const out = bytes(len, 3);
      for (let cc = 0; cc < 256; cc++) mulAdd(cc, input, out);
      results.push(out);
      if (results.length === 2 && !same(results[0]!, results[1])) throw new Error('mulAdd: the kernels differ');
    },
  );
}

function reconstructFigure(lost: number, fresh: boolean): Figure {
  const k = 192;
  const m = 64;
  const len = 1400;
  const rs = new ReedSolomon(k, m, fresh ? { decodeCacheSize: 0 } : {});
  const data = Array.from({ length: k }, (_, j) => bytes(len, j + 10));
  const all = [...data, ...rs.encode(data)];
  // Lost: every (k / lost)-th data shard, spread over the block.
  const gone = new Set(Array.from({ length: lost }, (_, i) => Math.floor((i * k) / lost)));
  const holed = () => all.map((s, i) => (gone.has(i) ? null : s));
  return kernelFigure(
    `fec-reconstruct 192+64 x 1400B (${lost} lost, ${fresh ? 'fresh pattern' : 'cached pattern'}) simd vs js`,
    k * len,
    // Fresh output arrays, as the object layer's decoder asks for (no `into`).
    () => rs.reconstruct(holed(), { dataOnly: true }),
    () => {
      const back = rs.reconstruct(holed(), { dataOnly: true });
      data.forEach((d, j) => {
        if (!same(d, back[j])) throw new Error(`${gf256Kernel()}: shard ${j} not reconstructed`);
      });
    },
  );
}

function combineFigure(nIn: number, nOut: number, len: number): Figure {
  const rows = Array.from({ length: nOut }, (_, r) => bytes(nIn, r + 100));
  const inputs = Array.from({ length: nIn }, (_, t) => bytes(len, t + 200));
  const outputs = Array.from({ length: nOut }, () => new Uint8Array(len));
  const results: Uint8Array[][] = [];
  return kernelFigure(
    `gf256-combine ${nIn}x${nOut} x ${len}B simd vs js`,
    nIn * len,
    () => combineRows(rows, inputs, outputs, 0, len),
    () => {
      const outs = outputs.map(() => new Uint8Array(len));
      combineRows(rows, inputs, outs, 0, len);
      results.push(outs);
      if (results.length === 2 && !results[0]!.every((o, r) => same(o, results[1]![r]))) throw new Error('combine: the kernels differ');
    },
  );
}

function rs16Figure(op: 'encode' | 'reconstruct'): Figure {
  const k = 300;
  const m = 20;
  const len = 1400;
  const rs = new ReedSolomon16(k, m);
  const data = Array.from({ length: k }, (_, j) => bytes(len, j + 30));
  const parity = rs.encode(data);
  const all = [...data, ...parity];
  const holed = () => all.map((s, i) => (i < k && i % 15 === 0 ? null : s)); // 20 data shards lost
  const out = Array.from({ length: m }, () => new Uint8Array(len));
  return kernelFigure(
    op === 'encode' ? `fec16-encode 300+20 x 1400B simd vs js` : `fec16-reconstruct 300+20 x 1400B (20 lost) simd vs js`,
    k * len,
    op === 'encode' ? () => rs.encode(data, out) : () => rs.reconstruct(holed(), { dataOnly: true }),
    () => {
      if (!rs.encode(data).every((p, i) => same(p, parity[i]))) throw new Error(`${gf256Kernel()}: GF(2^16) parity differs`);
      const back = rs.reconstruct(holed(), { dataOnly: true });
      if (!data.every((d, j) => same(d, back[j]))) throw new Error(`${gf256Kernel()}: GF(2^16) data not reconstructed`);
    },
  );
}

function objectDecodeFigure(): Figure {
  const size = 8 * 1024 * 1024;
  const options = { symbolSize: 1400, sourceSymbols: 192, repairSymbols: 64, coder: createReedSolomon };
  const object = bytes(size, 99);
  const received: { fecInfo: number; symbol: Uint8Array }[] = [];
  let n = 0;
  for (const { fecInfo, symbol } of new ObjectEncoder(object, options).symbols()) {
    if (n++ % 20 !== 7) received.push({ fecInfo, symbol: symbol.slice() });
  }
  const decode = (): Uint8Array => {
    const dec = new ObjectDecoder(size, options);
    // copy: false, as the multicast receiver hands over its datagrams.
    for (const { fecInfo, symbol } of received) if (dec.add(fecInfo, symbol, { copy: false }).complete) break;
    return dec.object();
  };
  // Target 1.5, not 2: here the kernel is only part of the work (the
  // decoder's bookkeeping and copies are the same with either kernel).
  return kernelFigure(
    'fec-object-decode 8MiB 192+64 x 1400B (5% loss) simd vs js',
    size,
    decode,
    () => {
      if (!same(object, decode())) throw new Error(`${gf256Kernel()}: object not decoded`);
    },
    1.5,
  );
}

export const figures = defineFigures([
  mulAddFigure(64 * 1024, '64KiB'),
  mulAddFigure(1024, '1KiB'),
  combineFigure(192, 10, 1400),
  reconstructFigure(10, false),
  reconstructFigure(32, false),
  reconstructFigure(10, true),
  reconstructFigure(32, true),
  objectDecodeFigure(),
  rs16Figure('encode'),
  rs16Figure('reconstruct'),
]);
