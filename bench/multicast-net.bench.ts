/**
 * The multicast updater over a real network: a 64 MiB file from one sender
 * namespace to N receiver namespaces on a Linux bridge, real UDP (IPv6
 * multicast), with L% of UDP packets dropped at each receiver's ingress
 * (bench/multicast-net.ts), against Debian's uftp/uftpd over the same
 * topology in the same run.
 *
 * Two figures per shape, from one transfer each (the second reads the first's
 * measurement when both run):
 * - `multicast 64MiB xN loss L%` — seconds until every receiver has the
 *   file; target: faster than uftp (ratio ≤ 1). Ours is the sender's
 *   `start()` to done (every completion and FIN); preparing the update (FEC
 *   repair, hashes, signature: a few seconds for 64 MiB, done once per
 *   update) is not in it. uftp's is its process's run, which includes its
 *   announce phase and its end-of-session exchange.
 * - `multicast 64MiB xN loss L% bytes` — UDP payload the sender put on the
 *   wire (counted on its bridge port, the same way for both) over the file
 *   size; target ≤ 1.25.
 * - `multicast 64MiB x16 loss L%, warm receivers` — the same time, with
 *   receiver processes that took an 8 MiB update just before (unmeasured),
 *   as a receiver daemon has: in the figures above every receiver is a
 *   fresh process, whose first update pays for compiling its code (on 2
 *   cores with 16 receivers, ~10 % of their CPU in round 1). uftpd takes the
 *   same warm-up file first, from the same sender.
 *
 * Both send at the same fixed rate, 100 Mbit/s of UDP payload (uftp
 * `-R 100000 -C none`; ours `rateBps`), so neither wins by flooding the
 * bridge. Every copy is checked by SHA-256 before a figure is printed.
 * Needs root, iproute2, nftables and uftp; without them the figures are
 * skipped with one line on stderr.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineFigures, type Figure } from './harness.js';
import { createMulticastNet, netnsUnavailable, runGatesockUpdate, runUftp, type TransferResult } from './multicast-net.js';

const FILE_BYTES = 64 << 20;
const RATE_BPS = 100e6;
/** Per transfer; 64 MiB at 100 Mbit/s is 5.4 s on the wire. */
const TIMEOUT_MS = 120_000;

const WARM_UP_BYTES = 8 << 20;

const files = new Map<string, string>();
/** A file of random bytes, made once per run and deleted at exit. */
function testFile(name: string, bytes: number): string {
  let file = files.get(name);
  if (file === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'gsmc-bench-'));
    file = join(dir, name);
    writeFileSync(file, randomBytes(bytes));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    files.set(name, file);
  }
  return file;
}

interface Pair {
  readonly ours: TransferResult;
  readonly uftp: TransferResult;
}
const measured = new Map<string, Promise<Pair>>();

/** One transfer of each, on a fresh topology; cached per shape for the figure pair. */
function measure(receivers: number, lossPercent: number, warm = false): Promise<Pair> {
  const key = `${receivers}/${lossPercent}${warm ? '/warm' : ''}`;
  let p = measured.get(key);
  if (p === undefined) {
    p = (async () => {
      const net = createMulticastNet({ receivers, lossPercent });
      try {
        const f = testFile('update.bin', FILE_BYTES);
        const warmUp = warm ? { warmUpFile: testFile('warm-up.bin', WARM_UP_BYTES) } : {};
        const ours = await runGatesockUpdate(net, { file: f, rateBps: RATE_BPS, expectedLoss: lossPercent / 100, timeoutMs: TIMEOUT_MS, ...warmUp });
        const uftp = await runUftp(net, { file: f, rateKbps: RATE_BPS / 1000, timeoutMs: TIMEOUT_MS, ...warmUp });
        // CPU seconds beside the times: on a small machine N receiver processes may be CPU-bound.
        const cpu = (r: TransferResult): string => {
          const rx = r.cpu.receivers;
          const mean = rx.reduce((a, b) => a + b, 0) / rx.length;
          return `sender ${r.cpu.sender.toFixed(2)} s, receivers mean ${mean.toFixed(2)} max ${Math.max(...rx).toFixed(2)} s`;
        };
        console.error(`multicast 64MiB x${receivers} loss ${lossPercent}%${warm ? ', warm receivers' : ''} CPU: ours ${cpu(ours)} (rounds ${ours.rounds}) | uftp ${cpu(uftp)}`);
        return { ours, uftp };
      } finally {
        net.destroy();
      }
    })();
    measured.set(key, p);
  }
  return p;
}

function shape(receivers: number, lossPercent: number): Figure[] {
  const name = `multicast 64MiB x${receivers} loss ${lossPercent}%`;
  return [
    {
      name,
      unit: 's',
      target: { better: 'lower', ratio: 1 },
      async run() {
        const { ours, uftp } = await measure(receivers, lossPercent);
        return { ours: ours.seconds, baseline: uftp.seconds, baselineName: 'uftp-4.10' };
      },
    },
    {
      name: `${name} bytes`,
      unit: '× file',
      target: { better: 'lower', ours: 1.25 },
      async run() {
        const { ours, uftp } = await measure(receivers, lossPercent);
        return { ours: ours.payloadBytes / FILE_BYTES, baseline: uftp.payloadBytes / FILE_BYTES, baselineName: 'uftp-4.10' };
      },
    },
  ];
}

/** The time figure with warm receivers (bytes as in {@link shape}). */
function warmShape(receivers: number, lossPercent: number): Figure {
  return {
    name: `multicast 64MiB x${receivers} loss ${lossPercent}%, warm receivers`,
    unit: 's',
    target: { better: 'lower', ratio: 1 },
    async run() {
      const { ours, uftp } = await measure(receivers, lossPercent, true);
      return { ours: ours.seconds, baseline: uftp.seconds, baselineName: 'uftp-4.10' };
    },
  };
}

function unavailable(): string | undefined {
  const ns = netnsUnavailable();
  if (ns !== undefined) return ns;
  for (const tool of ['uftp', 'uftpd']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (Debian package uftp)`;
  }
  return undefined;
}

const why = unavailable();
if (why !== undefined) console.error(`multicast-net.bench.ts: skipping the real-network multicast figures: ${why}`);

export const figures = defineFigures(
  why === undefined ? [...[4, 16].flatMap((n) => [0, 5].flatMap((loss) => shape(n, loss))), ...[0, 5].map((loss) => warmShape(16, loss))] : [],
);
