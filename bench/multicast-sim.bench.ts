/**
 * Multicast updater figures on the seeded simulated network
 * (src/transport/sim-network.ts), in virtual time: for 10, 100 and 1,000
 * receivers and 0, 1, 5 and 10 % independent loss per receiver link (each
 * direction; 5 ms one-way delay, 1 ms jitter), one 256 KiB update:
 *
 * - `… bytes/file`: every byte the sender sent — announcements, manifest
 *   pages, data, repair, round markers, acks — divided by the file size;
 * - `… rounds`: passes in which the sender answered requests (round 1 = the
 *   first transmission).
 *
 * The sender has a port of its own, as `gatesock update send` has by default
 * (receivers' requests reach it by unicast); on the receivers' port the
 * figures are the same.
 *
 * Baseline: plain-retransmission ARQ (bench/multicast-sim-arq.ts) on the
 * same network model and seed — no FEC, every packet any receiver lists as
 * missing is sent again, round after round. `ratio` is ours / ARQ.
 *
 * Checks before figures: every receiver of ours must end with the exact file
 * (SHA-256 of the file in place) and every ARQ receiver with every packet,
 * or the figure throws.
 *
 * Targets: the at 1,000 receivers and 5 % loss (≤ 4 rounds on the
 * grid, absolute; ≤ 1.15 × the file sent on the large-block figures below,
 * which this one-block 256 KiB file cannot reach, see the grid); elsewhere
 * ours: no more bytes than ARQ
 * (ratio ≤ 1; ≤ 1.1 without loss, where our manifest, announcements and
 * acks — which the baseline does not send — are all the difference) and no
 * more rounds (ratio ≤ 1).
 *
 * Two more figures run the target shape with large blocks: 1,000 receivers,
 * 5 %, a 700 KB file sent as one GF(2^16) block of 500 symbols (100 repair) —
 * the block size ≤ 1.15 × needs (about a minute: each receiver decodes a
 * 500-symbol block).
 *
 * The grid's file is 256 KiB so that the 1,000-receiver runs take seconds: every
 * receiver decodes, authenticates each symbol and writes its partial state
 * to disk (tmpfs when the machine has /dev/shm). Fixed per-transfer costs —
 * about 10 bytes of acks per receiver, the announcements — weigh more on a
 * small file: at 1,000 receivers they are ~5 % of 256 KiB, ~1.2 % of 1 MiB
 * (docs/delivery.md, "Measured").
 */
import * as fs from 'node:fs';
import { defineFigures, type Figure } from './harness.js';
import { runSimArq, type ArqResult } from './multicast-sim-arq.js';
import { runSimUpdate, simTempDir } from './multicast-sim-run.js';

const FILE_SIZE = 256 * 1024;
const SEED = 1;

interface Pair {
  readonly ours: { rounds: number; bytesPerFile: number };
  readonly arq: { rounds: number; bytesPerFile: number };
}

const cache = new Map<string, Pair>();

/** The large-block shape for the 1,000-receiver target: GF(2^16), one block of 500 symbols. */
const RS16 = { code: 'rs16', sourceSymbols: 500, repairSymbols: 100 } as const;
const RS16_FILE = 700_000;

/** Run ours and the baseline once per (receivers, loss, shape); both figures of that pair use it. */
function measure(receivers: number, loss: number, large = false): Pair {
  const key = `${receivers}/${loss}/${large}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const dir = simTempDir('gatesock-mc-bench-');
  try {
    const fileSize = large ? RS16_FILE : FILE_SIZE;
    const r = runSimUpdate({ receivers, loss, fileSize, seed: SEED, dir, senderPort: 0, ...(large ? { code: RS16 } : {}) });
    if (r.correct !== receivers) throw new Error(`ours: ${receivers - r.correct} of ${receivers} receivers do not have the exact file`);
    const a: ArqResult = runSimArq({ receivers, loss, fileSize, seed: SEED });
    if (a.complete !== receivers) throw new Error(`ARQ: ${receivers - a.complete} of ${receivers} receivers are missing packets`);
    const pair: Pair = {
      ours: { rounds: r.report.rounds, bytesPerFile: r.report.bytesSent / fileSize },
      arq: { rounds: a.rounds, bytesPerFile: a.bytesSent / fileSize },
    };
    cache.set(key, pair);
    return pair;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const list: Figure[] = [];
for (const receivers of [10, 100, 1000]) {
  for (const loss of [0, 0.01, 0.05, 0.1]) {
    const headline = receivers === 1000 && loss === 0.05;
    const shape = `${receivers} receivers ${Math.round(loss * 100)}% loss 256KiB`;
    list.push({
      name: `multicast-sim bytes/file ${shape}`,
      unit: '× file',
      // The issue's ≤ 1.15 × is carried by the large-block figure below: this file is one rs8 block
      // of 188 symbols, and the worst of 1,000 receivers at 5 % loses about 21 of the ~209 sent
      // (mean 10.4 + 3.2 σ), so repair alone is ≥ 11 % of the file, and data headers (0.9 %), acks
      // (~10 bytes per receiver, 2.3 %), manifest and announcements (2.4 %) put any sender at ≥ 1.16 ×.
      target: { better: 'lower', ratio: loss === 0 ? 1.1 : 1 },
      async run() {
        const p = measure(receivers, loss);
        return { ours: p.ours.bytesPerFile, baseline: p.arq.bytesPerFile, baselineName: 'plain-arq' };
      },
    });
    list.push({
      name: `multicast-sim rounds ${shape}`,
      unit: 'rounds',
      target: headline ? { better: 'lower', ours: 4 } : { better: 'lower', ratio: 1 },
      async run() {
        const p = measure(receivers, loss);
        return { ours: p.ours.rounds, baseline: p.arq.rounds, baselineName: 'plain-arq' };
      },
    });
  }
}

// The target shape with blocks large enough for it (docs/delivery.md, "Block size"): ~1 min.
for (const [what, unit, target] of [
  ['bytes/file', '× file', 1.15],
  ['rounds', 'rounds', 4],
] as const) {
  list.push({
    name: `multicast-sim ${what} 1000 receivers 5% loss 700KB rs16 k=500`,
    unit,
    target: { better: 'lower', ours: target },
    async run() {
      const p = measure(1000, 0.05, true);
      return what === 'rounds'
        ? { ours: p.ours.rounds, baseline: p.arq.rounds, baselineName: 'plain-arq' }
        : { ours: p.ours.bytesPerFile, baseline: p.arq.bytesPerFile, baselineName: 'plain-arq' };
    },
  });
}

/** The figures of this module (see bench/harness.ts). */
export const figures = defineFigures(list);
