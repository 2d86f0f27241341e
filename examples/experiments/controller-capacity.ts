/**
 * Controller capacity (the seed's §6.3.6–6.3.10): server logins the
 * controller answers at saturation, for growing numbers of logins in flight.
 * The controller (native crypto) runs alone in its process, a gateway in
 * another, the load in a third; each login is a fresh link (TCP, handshake
 * with certificates) and one login request. The seed's controller handled at
 * most 2,027 logins an hour in service, about 7 a second at full CPU.
 *
 * Run: npx tsx examples/experiments/controller-capacity.ts [--logins 2000] [--concurrency 1,8,64] [--pool 4096]
 */
import { logins } from '../../bench/relay-measure.js';
import { flags, printTable } from './table.js';

const o = flags('controller-capacity.ts', { logins: 2000, concurrency: '1,8,64', pool: 4096 });
const levels = o.concurrency.split(',').map(Number);
const rows: (string | number)[][] = [];
for (const concurrency of levels) {
  const { ours } = await logins({ logins: o.logins, concurrency, pool: o.pool, runs: 1, baseline: false });
  const r = ours[0]!;
  rows.push([concurrency, r.ok, r.perSecond, r.perSecond * 60, (100 * r.cpuSeconds) / r.seconds, r.perCpuSecond * 60]);
}
console.log(`${o.logins} logins per level, ${o.pool} distinct servers`);
printTable(['in flight', 'logins', 'logins/s', 'logins/min', 'controller CPU %', 'logins/min per core'], rows);
