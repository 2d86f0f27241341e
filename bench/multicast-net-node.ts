/**
 * One end of the updater's real-network benchmark, run inside a network
 * namespace by bench/multicast-net.bench.ts (through `ip netns exec`, with
 * scripts/ts-register.mjs):
 *
 *   multicast-net-node.ts send    JSON   — prepare and send the update, print the sender's report
 *   multicast-net-node.ts receive JSON   — take one update (after a warm-up with `warmUpName`), print the receiver's report
 *
 * JSON is one argument with the options below. Both print one JSON line on
 * stdout when done (`{"ready":true}` first for a receiver, once it listens)
 * and exit; errors go to stderr with exit status 1.
 */
import { readFileSync } from 'node:fs';
import { UpdateReceiver } from '../src/delivery/update/receiver.js';
import { UpdateSender } from '../src/delivery/update/sender.js';
import { parsePublicKey, prepareUpdate } from '../src/delivery/update/wire/index.js';
import { IdentityKey } from '../src/session/index.js';
import { udpBind } from '../src/transport/index.js';

/** Options of `send`. */
export interface SendArgs {
  readonly file: string;
  /** Publisher key, PEM file. */
  readonly keyPem: string;
  readonly port: number;
  readonly controlGroup: string;
  readonly dataGroup: string;
  readonly hosts: readonly string[];
  readonly rateBps: number;
  /** Loss to plan proactive repair for (the receivers' known loss, as a previous transfer's report would give). */
  readonly expectedLoss: number;
  readonly interface: string;
  readonly family: 'ipv6' | 'ipv4';
  /** The update's name and file ID (default `update.bin`, 1). */
  readonly name?: string;
  readonly fileId?: number;
}

/** Options of `receive`. */
export interface ReceiveArgs {
  readonly host: string;
  readonly directory: string;
  /** Publisher public key (`ed25519:…`). */
  readonly publisherKey: string;
  readonly port: number;
  readonly controlGroup: string;
  readonly dataGroup: string;
  readonly interface: string;
  readonly family: 'ipv6' | 'ipv4';
  /**
   * The name of an update to take first, unmeasured, as a receiver daemon
   * has taken updates before: the report and the CPU figures are then the
   * next update's. A receiver that misses the warm-up reports the next one.
   */
  readonly warmUpName?: string;
}

/** What `send` prints. */
export interface SendOutput {
  /** Preparing the update (FEC repair, hashes, signature), ms. */
  readonly prepareMs: number;
  /** `start()` to done (every receiver finished), ms. */
  readonly transferMs: number;
  readonly bytesSent: number;
  readonly rounds: number;
  readonly completed: number;
  readonly receivers: number;
  /** CPU time the sender process used during the transfer (user + system), ms. */
  readonly cpuMs: number;
  /** The group round-trip time the sender used, ms. */
  readonly grttMs: number;
  /** Datagrams of its own it heard back (0 on a port of its own). */
  readonly echoes: number;
  /** The sender's state changes, ms after start. */
  readonly states: readonly { readonly state: string; readonly why: string; readonly atMs: number }[];
}

const SOCKET_BUFFER = 8 << 20;

async function send(a: SendArgs): Promise<SendOutput> {
  const file = new Uint8Array(readFileSync(a.file));
  const key = IdentityKey.fromPem(readFileSync(a.keyPem, 'utf8'));
  const t0 = performance.now();
  const update = prepareUpdate(file, { name: a.name ?? 'update.bin', key, fileId: a.fileId ?? 1, version: 1 });
  const prepareMs = performance.now() - t0;
  // A port of its own, as the CLI's sender has: requests come by unicast and no datagram it sends loops back to it.
  const socket = await udpBind({ family: a.family, port: 0, interface: a.interface, sendBufferBytes: SOCKET_BUFFER, receiveBufferBytes: SOCKET_BUFFER });
  const sender = new UpdateSender({
    socket,
    update,
    controlGroup: a.controlGroup,
    dataGroup: a.dataGroup,
    port: a.port,
    expectedHosts: a.hosts,
    rateBps: a.rateBps,
    expectedLoss: a.expectedLoss,
  });
  const states: { state: string; why: string; atMs: number }[] = [];
  const t1 = performance.now();
  const cpu0 = process.cpuUsage();
  sender.on('state', (state, why) => states.push({ state, why, atMs: Math.round(performance.now() - t1) }));
  // Round starts and completions too (printed with GS_BENCH_TRACE): where a transfer's time goes.
  let round = 0;
  let done = 0;
  sender.on('progress', (p) => {
    if (p.round === round && p.receiversDone === done) return;
    if (p.round !== round) states.push({ state: `round ${p.round}`, why: `${p.receiversDone}/${p.receiversTotal} receivers done`, atMs: Math.round(performance.now() - t1) });
    else states.push({ state: 'completions', why: `${p.receiversDone}/${p.receiversTotal} receivers done`, atMs: Math.round(performance.now() - t1) });
    round = p.round;
    done = p.receiversDone;
  });
  const report = await sender.start();
  const transferMs = performance.now() - t1;
  const cpu = process.cpuUsage(cpu0);
  sender.close();
  socket.close();
  return {
    prepareMs,
    transferMs,
    bytesSent: report.bytesSent,
    rounds: report.rounds,
    grttMs: report.grttMs,
    echoes: report.echoes,
    completed: report.receivers.filter((r) => r.completed).length,
    receivers: report.receivers.length,
    states,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  };
}

async function receive(a: ReceiveArgs): Promise<unknown> {
  const socket = await udpBind({ family: a.family, port: a.port, interface: a.interface, reuseAddr: true, receiveBufferBytes: SOCKET_BUFFER, sendBufferBytes: SOCKET_BUFFER });
  const rx = new UpdateReceiver({
    socket,
    policy: { allow: ['**'], publisherKeys: [parsePublicKey(a.publisherKey)] },
    controlGroup: a.controlGroup,
    dataGroup: a.dataGroup,
    host: a.host,
    directory: a.directory,
  });
  let cpu0 = process.cpuUsage();
  let ru0 = process.resourceUsage();
  const done = new Promise<object>((resolve) =>
    rx.on('done', (report) => {
      if (report.name !== a.warmUpName) return resolve(report);
      // The warm-up taken: the figures are the next update's.
      cpu0 = process.cpuUsage();
      ru0 = process.resourceUsage();
      states.length = 0;
    }),
  );
  const t0 = performance.now();
  const states: { state: string; why: string; atMs: number }[] = [];
  rx.on('state', (state: string, why: string) => states.push({ state, why, atMs: Math.round(performance.now() - t0) }));
  const dropped: Record<string, number> = {};
  rx.on('dropped', (why: string, e?: Error) => {
    const k = `${why}${e ? `: ${e.message.slice(0, 120)}` : ''}`;
    dropped[k] = (dropped[k] ?? 0) + 1;
  });
  rx.start();
  // CPU from here on is the transfer's; before it, start-up (loading and compiling the TypeScript).
  cpu0 = process.cpuUsage();
  ru0 = process.resourceUsage();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  const report = await done;
  // Let the last FIN repeats go out before closing.
  await new Promise((r) => setTimeout(r, 300));
  rx.close();
  socket.close();
  const cpu = process.cpuUsage(cpu0);
  const all = process.cpuUsage();
  const ru = process.resourceUsage();
  // Context switches: voluntary ≈ wake-ups for datagrams; involuntary = preempted for want of a CPU.
  const switches = { voluntary: ru.voluntaryContextSwitches - ru0.voluntaryContextSwitches, involuntary: ru.involuntaryContextSwitches - ru0.involuntaryContextSwitches };
  return { ...report, states, dropped, switches, cpuMs: Math.round((cpu.user + cpu.system) / 1000), cpuUserMs: Math.round(cpu.user / 1000), cpuSystemMs: Math.round(cpu.system / 1000), processCpuMs: Math.round((all.user + all.system) / 1000) };
}

const [mode, json] = process.argv.slice(2);
try {
  const out = mode === 'send' ? await send(JSON.parse(json!) as SendArgs) : mode === 'receive' ? await receive(JSON.parse(json!) as ReceiveArgs) : undefined;
  if (out === undefined) throw new Error(`usage: multicast-net-node.ts send|receive JSON (got ${mode})`);
  process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
} catch (err) {
  process.stderr.write(`multicast-net-node ${mode}: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}
