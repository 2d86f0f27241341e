/**
 * Failover (the seed's §6.3.9): servers on gateway-1, more gateways beside
 * it, every gateway in its own process. Stop gateway-1 (SIGKILL, or a
 * graceful drain with --stop drain) and print, each second, how many servers
 * each gateway holds, as the servers see it, until all of gateway-1's
 * servers are back elsewhere. Servers use default options: they log in again
 * with exponential backoff and full jitter (250 ms first, 10 s at most).
 *
 * Run: npx tsx examples/experiments/failover.ts [--servers 300] [--gateways 3] [--stop kill]
 */
import { rehome, type Tick } from '../../bench/relay-measure.js';
import { flags, printTable } from './table.js';

const o = flags('failover.ts', { servers: 300, gateways: 3, stop: 'kill' });
if (o.stop !== 'kill' && o.stop !== 'drain') throw new RangeError('--stop must be kill or drain');
if (!Number.isInteger(o.gateways) || o.gateways < 2) throw new RangeError('--gateways must be an integer ≥ 2');
const names = Array.from({ length: o.gateways }, (_, i) => `gateway-${i + 1}`);
const rows: (string | number)[][] = [];
let nextSecond = 0;
let last: Tick | undefined;
const row = (t: Tick) => [(t.ms / 1000).toFixed(1), ...names.map((n) => t.byGateway[n] ?? 0), t.online];
const r = await rehome({
  servers: o.servers,
  others: o.gateways - 1,
  stop: o.stop as 'kill' | 'drain',
  coldStart: false,
  onTick: (t) => {
    last = t;
    if (t.ms >= nextSecond * 1000) {
      rows.push(row(t));
      nextSecond = Math.floor(t.ms / 1000) + 1;
    }
  },
});
if (last && rows.at(-1)?.[0] !== row(last)[0]) rows.push(row(last));
console.log(`${o.servers} servers on gateway-1; gateway-1 stopped (${o.stop}) at t = 0`);
printTable(['t (s)', ...names, 'online'], rows);
console.log(`all ${o.servers} servers back online on other gateways after ${(r.rehomeMs / 1000).toFixed(2)} s`);
