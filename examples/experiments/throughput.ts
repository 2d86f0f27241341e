/**
 * Throughput (the seed's §5.3): one connection, client → gateway → server,
 * in each direction, with the end-to-end layer on and off, against a plain
 * `net` pipe relay measured alongside. Client here; gateway (with its
 * controller), server and plain relay each in their own process on loopback.
 * The seed reported what the system took away, MIN(direct hops) − through;
 * here the plain relay stands for the direct hops.
 *
 * Run: npx tsx examples/experiments/throughput.ts [--mib 128] [--rounds 4]
 */
import { median, throughput, withPaths, type Direction } from '../../bench/relay-measure.js';
import { flags, printTable } from './table.js';

const { mib, rounds } = flags('throughput.ts', { mib: 128, rounds: 4 });

await withPaths(async (paths) => {
  const rows: (string | number)[][] = [];
  for (const direction of ['client-to-server', 'server-to-client'] as Direction[]) {
    for (const endToEnd of [true, false]) {
      const r = await throughput(paths, direction, endToEnd, { totalMiB: mib, rounds, warmupMiB: Math.min(64, mib / 2) });
      const ours = median(r.ours);
      const plain = median(r.plain);
      rows.push([direction, endToEnd ? 'on' : 'off', ours, plain, ours / plain, plain - ours]);
    }
  }
  console.log(`${mib} MiB per path in ${rounds} transfers (medians), 256 KiB writes, MB/s`);
  printTable(['direction', 'e2e', 'gatesock MB/s', 'plain relay MB/s', 'ratio', 'taken away MB/s'], rows);
});
