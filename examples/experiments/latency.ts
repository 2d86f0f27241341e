/**
 * Latency (the seed's §5.2): round-trip time of an 8-byte ping-pong through
 * the relay against the same app reached directly and through a plain `net`
 * pipe relay, each hop in its own process on loopback. The seed computed the
 * delay the system adds as (C − (A + B)) / 2, C the RTT through the gateway
 * and A, B each machine's RTT to the gateway; on one machine A + B is the
 * direct RTT, so the added delay is (C − direct) / 2 (seed: 0.212 ms on a LAN).
 *
 * Run: npx tsx examples/experiments/latency.ts [--rounds 1000] [--repeats 2]
 */
import { percentile, roundTrips, withPaths } from '../../bench/relay-measure.js';
import { flags, printTable } from './table.js';

const { rounds, repeats } = flags('latency.ts', { rounds: 1000, repeats: 2 });

await withPaths(async (paths) => {
  const e2e = await roundTrips(paths, true, { rounds, repeats });
  const plain = await roundTrips(paths, false, { rounds, repeats });
  const direct = [...e2e.direct, ...plain.direct];
  const p50 = percentile(direct, 50);
  const rows = ([
    ['direct TCP', direct],
    ['plain net relay', [...e2e.plain, ...plain.plain]],
    ['gatesock, end to end', e2e.ours],
    ['gatesock, no end-to-end layer', plain.ours],
  ] as const).map(([path, xs]) => {
    const mid = percentile(xs, 50);
    return [path, xs.length, mid, percentile(xs, 90), percentile(xs, 99), mid - p50, (mid - p50) / 2];
  });
  console.log(`8-byte ping-pong, ${rounds} × ${repeats} round trips per path, µs`);
  printTable(['path', 'samples', 'p50', 'p90', 'p99', 'added RTT (p50)', 'seed-style added delay'], rows);
});
