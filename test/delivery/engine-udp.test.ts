/**
 * The engines on real UDP multicast (IPv4, loopback interface) in one
 * process: a sender on its own port and two receivers sharing the updater
 * port, as two receiver processes on one host would. Skipped, with a line
 * saying why, where the machine has no multicast on loopback.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { simFile, tempDirs } from '../../bench/multicast-sim-run.js';
import { UpdateReceiver, UpdateSender, generatePublisherKey, prepareUpdate } from '../../src/delivery/index.js';
import { udpBind, type DatagramSocket } from '../../src/transport/index.js';

const GROUP = '239.255.77.1';
const dirs = tempDirs();
const sockets: DatagramSocket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
  dirs.cleanup();
});

async function probe(): Promise<string | undefined> {
  try {
    const s = await udpBind({ port: 0, groups: [GROUP], interface: '127.0.0.1' });
    s.close();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
const noMulticast = await probe();
if (noMulticast) console.log(`engine-udp.test.ts skipped: no IPv4 multicast on loopback here (${noMulticast})`);

it.skipIf(noMulticast !== undefined)('two receivers on one host get a 1 MB update over loopback multicast, with the async handler status in FIN', async () => {
  const dir = dirs.make();
  const key = generatePublisherKey();
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const receivers: UpdateReceiver[] = [];
  for (const host of ['host-1', 'host-2']) {
    const socket = await udpBind({ port, groups: [GROUP], interface: '127.0.0.1' });
    sockets.push(socket);
    const rx = new UpdateReceiver({
      socket,
      policy: { allow: ['app/**'], publisherKeys: [key.publicKey] },
      controlGroup: GROUP,
      host,
      directory: path.join(dir, host),
      // An asynchronous handler, as a real install would be: FIN waits for it.
      handler: async (file) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return `ok ${fs.statSync(file).size}`;
      },
    });
    rx.start();
    receivers.push(rx);
  }
  const file = simFile(1_000_000, 3);
  const update = prepareUpdate(file, { name: 'app/app.bin', key, fileId: 9, version: 1 });
  const socket = await udpBind({ port: 0, family: 'ipv4', interface: '127.0.0.1' });
  sockets.push(socket);
  const tx = new UpdateSender({ socket, update, controlGroup: GROUP, port, expectedHosts: ['host-1', 'host-2'], rateBps: 50_000_000, joinWindowMs: 5_000 });
  const report = await tx.start();
  for (const rx of receivers) rx.close();
  expect(report.receivers.map((r) => [r.host, r.completed, r.result]).sort()).toEqual([
    ['host-1', true, 'ok 1000000'],
    ['host-2', true, 'ok 1000000'],
  ]);
  for (const host of ['host-1', 'host-2']) expect(fs.readFileSync(path.join(dir, host, 'app', 'app.bin')).equals(file), host).toBe(true);
  // Its own port: the receivers on this host joined the group, yet nothing it sent came back to it.
  expect(report.echoes).toBe(0);
}, 30_000);
