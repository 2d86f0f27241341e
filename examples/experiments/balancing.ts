/**
 * Balancing (the seed's §3.4.2 and §6.3.8): gateways with different
 * capacities, each in its own process, and N servers logging in through the
 * controller; how many servers each gateway ends up with against its
 * expected share (capacity / total capacity), for both strategies:
 * least-sessions (the seed's rule: lowest sessions / capacity) and weighted
 * (also connections, bytes per second and CPU, from the gateways' keepalives).
 *
 * Run: npx tsx examples/experiments/balancing.ts [--servers 500] [--capacities 100,200,300,400,500]
 */
import { balancing } from '../../bench/relay-measure.js';
import { flags, printTable } from './table.js';

const o = flags('balancing.ts', { servers: 500, capacities: '100,200,300,400,500' });
const capacities = o.capacities.split(',').map(Number);
if (capacities.some((c) => !(Number.isInteger(c) && c > 0))) throw new RangeError('--capacities must be positive integers, comma separated');
const total = capacities.reduce((a, b) => a + b, 0);

const least = await balancing({ capacities, servers: o.servers, strategy: 'least-sessions' });
const weighted = await balancing({ capacities, servers: o.servers, strategy: 'weighted' });
console.log(`${o.servers} servers over ${capacities.length} gateways`);
printTable(
  ['gateway', 'capacity', 'expected', 'least-sessions', 'weighted'],
  capacities.map((c, i) => [`gateway-${i + 1}`, c, (o.servers * c) / total, least[i]!.servers, weighted[i]!.servers]),
);
const deviation = (r: { capacity: number; servers: number }[]) => Math.max(...r.map((g) => Math.abs(g.servers - (o.servers * g.capacity) / total)));
console.log(`largest deviation from the expected count: least-sessions ${deviation(least).toFixed(1)}, weighted ${deviation(weighted).toFixed(1)}`);
