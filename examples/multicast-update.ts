/**
 * multicast-update: the reliable multicast updater embedded in a program.
 * A publisher signs one update file and multicasts it; receivers that are
 * permitted to take it (name pattern, pinned publisher key) join, repair
 * their losses in rounds, check the file's SHA-256, run their update
 * handler and report back. One receiver is not permitted: it never joins.
 *
 * By default everything runs on gatesock's seeded simulated network (12
 * receivers, 5 % loss each, on a virtual clock: runs anywhere, in a second).
 * With `--udp` it uses real UDP multicast on the loopback interface instead
 * (IPv4 group 239.255.71.1 on `lo`; 4 receivers in this process).
 *
 * Run: npx tsx examples/multicast-update.ts [--udp]
 * The same from the command line: `gatesock update keygen|send|receive`.
 */
// Users write `from 'gatesock/delivery'` and `from 'gatesock/transport'`. The example imports the source so it runs without a build.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  UpdateReceiver,
  UpdateSender,
  formatPublicKey,
  generatePublisherKey,
  prepareUpdate,
  publisherKeyId,
  withReplySocket,
  type ReceiverReport,
} from '../src/delivery/index.js';
import { SimNetwork, independentLoss, udpBind, withLoss, type DatagramSocket } from '../src/transport/index.js';

const udp = process.argv.includes('--udp');
const RECEIVERS = udp ? 4 : 12;
const GROUP = udp ? '239.255.71.1' : 'ff15::71';
const PORT = 47_100;

// 1. The publisher: a signing key (receivers pin its public key) and the update file.
const key = generatePublisherKey();
console.log(`publisher   ${formatPublicKey(key.publicKey)} (key id ${publisherKeyId(key.publicKey)})`);
const file = new Uint8Array(udp ? 600_000 : 2_000_000);
for (let i = 0; i < file.length; i++) file[i] = (i * 2654435761) >>> 24;
const digest = createHash('sha256').update(file).digest('hex');
const update = prepareUpdate(file, { name: 'app/firmware.bin', key, fileId: 7, version: 42 });
console.log(`update      ${update.announcement.name}: ${file.length} bytes, ${update.layout.blockCount} blocks, sha256 ${digest.slice(0, 16)}…`);

// 2. The network: simulated (every receiver loses 5 % of what arrives) or real loopback multicast.
const net = udp ? undefined : new SimNetwork({ seed: 7 });
const sockets: DatagramSocket[] = [];
async function socketFor(name: string, role: 'sender' | 'receiver'): Promise<DatagramSocket> {
  const socket = await openSocket(name, role);
  sockets.push(socket);
  return socket;
}
async function openSocket(name: string, role: 'sender' | 'receiver'): Promise<DatagramSocket> {
  if (net) {
    const host = net.addHost(role === 'sender' ? { name, uplink: { rateBps: 200e6 } } : { name, downlink: { delayMs: 2, jitterMs: 1, loss: independentLoss(0.05) } });
    return host.bind(role === 'sender' ? 0 : PORT);
  }
  // The sender has a port of its own: receivers' requests reach it by unicast, and it never hears its own data.
  if (role === 'sender') return udpBind({ family: 'ipv4', port: 0, interface: 'lo' });
  // Receivers on one host share the group's port, so each answers from a socket of its own.
  const listen = withLoss(await udpBind({ family: 'ipv4', port: PORT, groups: [GROUP], interface: 'lo', reuseAddr: true }), { loss: independentLoss(0.05), seed: name.length });
  return withReplySocket(listen, await udpBind({ family: 'ipv4', port: 0, interface: 'lo' }));
}

// 3. The receivers: each pins the publisher key and allows `app/*`; the last one allows only `tools/*`.
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gatesock-multicast-'));
const reports = new Map<string, ReceiverReport>();
const receivers: UpdateReceiver[] = [];
for (let i = 1; i <= RECEIVERS + 1; i++) {
  const host = i <= RECEIVERS ? `host-${i}` : 'outsider';
  const rx = new UpdateReceiver({
    socket: await socketFor(host, 'receiver'),
    policy: { allow: host === 'outsider' ? ['tools/*'] : ['app/*'], publisherKeys: [key.publicKey] },
    controlGroup: GROUP,
    host,
    directory: path.join(root, host),
    // The update handler: here it only checks the size; a real one installs the file.
    handler: (placed) => `ok installed ${fs.statSync(placed).size} bytes`,
  });
  rx.on('done', (r) => reports.set(host, r));
  rx.start();
  receivers.push(rx);
}

// 4. The sender: announce, collect RECVs (all expected hosts answer), send with FEC, repair in rounds, collect FINs.
const sender = new UpdateSender({
  socket: await socketFor('sender', 'sender'),
  update,
  controlGroup: GROUP,
  port: PORT,
  rateBps: 200e6,
  expectedHosts: Array.from({ length: RECEIVERS }, (_, i) => `host-${i + 1}`),
  joinWindowMs: 3_000,
});
const done = sender.start();
let finished = false;
void done.then(() => (finished = true));
if (net) await net.runAsync({ until: () => finished, maxTimeMs: 120_000 });
const report = await done;

// 5. What happened: the sender's report, and each receiver's file checked independently.
console.log(`sender      ${report.bytesSent} bytes sent (${report.overhead.toFixed(3)} × the file), ${report.rounds} round(s)`);
for (const r of report.receivers) {
  const placed = path.join(root, r.host, 'app/firmware.bin');
  const same = fs.existsSync(placed) && createHash('sha256').update(fs.readFileSync(placed)).digest('hex') === digest;
  console.log(`receiver    ${r.host.padEnd(8)} joined ${r.joined} completed ${r.completed} round ${r.rounds ?? '-'}: ${r.result ?? r.dropped ?? '-'}; sha256 matches: ${same}`);
}
const outsider = reports.get('outsider');
console.log(`outsider    joined: ${report.receivers.some((r) => r.host === 'outsider')}, wrote: ${fs.existsSync(path.join(root, 'outsider', 'app/firmware.bin'))}${outsider ? `, ${outsider.status}` : ''}`);
for (const rx of receivers) rx.close();
sender.close();
for (const s of sockets) s.close(); // the engines never close the sockets they were given
fs.rmSync(root, { recursive: true, force: true });
