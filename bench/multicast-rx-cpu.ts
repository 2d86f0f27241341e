/**
 * Diagnosis (not a figure): the multicast receiver's own CPU, without a
 * socket. One transfer to one receiver runs on the simulated network and
 * every datagram that receiver is handed is recorded; then the recording
 * is replayed into fresh receivers in this process (a socket stand-in, the
 * recorded times as its clock), each datagram in a buffer of its own as
 * node:dgram hands them over, and the CPU of each replay is printed. Run 0
 * is the first use of the receiver's code in the process (compiling
 * included, as in a receiver process); the later runs are warm.
 *
 * What it leaves out is what the real-network figures add on top: Node's
 * datagram delivery, the wake-ups, the other processes (docs/delivery.md,
 * "Real multicast between network namespaces: where it stands").
 *
 *   node --import ./scripts/ts-register.mjs bench/multicast-rx-cpu.ts [MiB] [loss] [runs]
 *
 * Defaults: 64 MiB, loss 0, 5 runs. With `--cpu-prof` on node's command
 * line the replays can be profiled.
 */
import * as path from 'node:path';
import { EventEmitter } from 'eventemitter3';
import { UpdateReceiver } from '../src/delivery/update/index.js';
import type { DatagramAddress, DatagramSocket } from '../src/transport/index.js';
import { SIM_CONTROL, SIM_DATA, SIM_PORT, runSimUpdate, simKey, tempDirs } from './multicast-sim-run.js';

const mib = Number(process.argv[2] ?? 64);
const loss = Number(process.argv[3] ?? 0);
const runs = Number(process.argv[4] ?? 5);
if (!(mib > 0) || !(loss >= 0 && loss < 1) || !(Number.isInteger(runs) && runs >= 1)) {
  throw new Error('usage: multicast-rx-cpu.ts [MiB > 0] [loss 0…1) [runs ≥ 1]');
}

/**
 * The datagrams one receiver is handed in a simulated transfer: their times,
 * senders and bytes, in a few flat arrays (the replays' garbage collection
 * is then the receiver's own, not the recording's).
 */
interface Recording {
  readonly count: number;
  readonly at: Float64Array;
  /** Index into `senders`. */
  readonly from: Uint16Array;
  readonly senders: DatagramAddress[];
  readonly offset: Uint32Array;
  readonly length: Uint32Array;
  readonly bytes: Buffer;
}

function record(dir: string): Recording {
  const at: number[] = [];
  const from: number[] = [];
  const senders: DatagramAddress[] = [];
  const length: number[] = [];
  const chunks: Uint8Array[] = [];
  const sim = runSimUpdate({
    receivers: 1,
    loss,
    fileSize: Math.round(mib * (1 << 20)),
    seed: 5,
    dir,
    setup(ctx) {
      for (const sockets of ctx.receiverHosts[0]!.ports.values()) {
        for (const s of sockets) {
          s.on('message', (data, sender) => {
            let i = senders.findIndex((a) => a.address === sender.address && a.port === sender.port);
            if (i < 0) i = senders.push({ address: sender.address, port: sender.port }) - 1;
            at.push(ctx.net.clock.now());
            from.push(i);
            length.push(data.length);
            chunks.push(data.slice());
          });
        }
      }
    },
  });
  if (sim.correct !== 1) throw new Error(`the recorded transfer did not deliver the file (${sim.outcome})`);
  const offset = new Uint32Array(length.length);
  for (let i = 1; i < length.length; i++) offset[i] = offset[i - 1]! + length[i - 1]!;
  return { count: at.length, at: Float64Array.from(at), from: Uint16Array.from(from), senders, offset, length: Uint32Array.from(length), bytes: Buffer.concat(chunks) };
}

const dirs = tempDirs();
try {
  const rec = record(dirs.make());
  console.log(`recorded ${rec.count} datagrams (${mib} MiB, loss ${loss}); replaying ${runs}×`);

  for (let run = 0; run < runs; run++) {
    let now = 0;
    const clock = { now: () => now, setTimer: () => ({}), clearTimer: () => undefined };
    const socket = Object.assign(new EventEmitter(), {
      localAddress: { address: 'fd00::9', port: SIM_PORT },
      clock,
      send: () => undefined,
      joinGroup: () => undefined,
      leaveGroup: () => undefined,
      close: () => undefined,
    }) as unknown as DatagramSocket;
    const receiver = new UpdateReceiver({
      socket,
      policy: { allow: ['**'], publisherKeys: [simKey().publicKey] },
      controlGroup: SIM_CONTROL,
      dataGroup: SIM_DATA,
      host: 'r0',
      directory: path.join(dirs.make(), 'r0'),
      random: () => 0.5,
    });
    receiver.start();
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    for (let i = 0; i < rec.count; i++) {
      now = rec.at[i]!;
      // A buffer of its own per datagram, as node:dgram hands them over (kept by the decoder).
      const data = new Uint8Array(rec.length[i]!);
      data.set(rec.bytes.subarray(rec.offset[i]!, rec.offset[i]! + rec.length[i]!));
      socket.emit('message', data, rec.senders[rec.from[i]!]!);
    }
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - wall0;
    const report = receiver.reports.at(-1);
    receiver.close();
    console.log(
      `run ${run}: CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (user ${(cpu.user / 1000).toFixed(0)}, system ${(cpu.system / 1000).toFixed(0)}), ` +
        `wall ${wall.toFixed(0)} ms, ${((1000 * (cpu.user + cpu.system)) / 1000 / rec.count).toFixed(2)} µs per datagram; ${report ? report.status : `not finished (${receiver.state})`}`,
    );
  }
} finally {
  dirs.cleanup();
}
