/**
 * One multicast update on the seeded simulated network (src/transport
 * sim-network): a sender and N receivers, each receiver behind its own
 * lossy downlink (and uplink), every receiver writing to its own directory.
 * Used by the engine's tests (test/delivery/sim*.test.ts) and by the
 * benchmark (bench/multicast-sim.bench.ts), so both measure the same thing.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UpdateReceiver, type ReceiverReport, type UpdateHandler } from '../src/delivery/update/receiver.js';
import { UpdateSender, type SenderReport, type UpdateSenderOptions } from '../src/delivery/update/sender.js';
import { generatePublisherKey, prepareUpdate, type PreparedUpdate, type PrepareUpdateOptions } from '../src/delivery/update/wire/index.js';
import { SimNetwork, gilbertElliottLoss, independentLoss, type LossModel, type SimHost } from '../src/transport/index.js';
import type { IdentityKey } from '../src/session/index.js';

/** The updater's port and groups on the simulated network. */
export const SIM_PORT = 7000;
export const SIM_CONTROL = 'ff15::1';
export const SIM_DATA = 'ff15::2';

let sharedKey: IdentityKey | undefined;
/** One publisher key per process (key generation is not what is measured). */
export function simKey(): IdentityKey {
  return (sharedKey ??= generatePublisherKey());
}

/** xorshift32 from `seed`: 32-bit values, the same for a given seed (not for keys: simulation only). */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** A file of `size` bytes, the same for a given seed. */
export function simFile(size: number, seed: number): Uint8Array {
  const next = xorshift32(seed * 2654435761);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = next() & 0xff;
  return out;
}

/**
 * A fresh temporary directory for receivers' files: in /dev/shm when the
 * machine has it (a thousand receivers create and delete thousands of small
 * files; tmpfs keeps that cheap), else the OS temporary directory.
 */
export function simTempDir(prefix = 'gatesock-mc-'): string {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  return fs.mkdtempSync(path.join(base, prefix));
}

/**
 * Temporary directories for a test file: `make()` gives a fresh one,
 * `cleanup()` (in `afterEach`) deletes every one made.
 */
export function tempDirs(): { make(): string; cleanup(): void } {
  const dirs: string[] = [];
  return {
    make() {
      const d = simTempDir();
      dirs.push(d);
      return d;
    },
    cleanup() {
      for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    },
  };
}

/** Loss of a link: independent, or bursty (Gilbert–Elliott, mean burst 4). */
export function simLoss(loss: number, bursty: boolean): LossModel | undefined {
  if (loss <= 0) return undefined;
  return bursty ? gilbertElliottLoss({ averageLoss: loss, meanBurstLength: 4 }) : independentLoss(loss);
}

/** Options of {@link runSimUpdate}. */
export interface SimUpdateOptions {
  readonly receivers: number;
  /** Average loss per receiver link direction. */
  readonly loss: number;
  readonly bursty?: boolean;
  readonly fileSize: number;
  readonly seed: number;
  /** Working directory; receiver i writes to `<dir>/r<i>`. */
  readonly dir: string;
  /** One-way delay of every receiver link, ms (default 5; jitter 1). */
  readonly delayMs?: number;
  /** Code and block shape of the update (default: prepareUpdate's, rs8 k = 192, m = 64). */
  readonly code?: Pick<PrepareUpdateOptions, 'code' | 'sourceSymbols' | 'repairSymbols'>;
  /**
   * Port the sender binds (default the receivers' port, SIM_PORT; 0 for one of
   * its own, as the CLI's sender has).
   */
  readonly senderPort?: number;
  /** Sender options besides socket/update/groups. */
  readonly sender?: Partial<Omit<UpdateSenderOptions, 'socket' | 'update' | 'controlGroup' | 'dataGroup'>>;
  readonly handler?: UpdateHandler;
  /** Called once the network and objects exist, before anything runs (inject faults here). */
  readonly setup?: (ctx: SimContext) => void;
  /** Virtual-time limit, ms (default 600,000). */
  readonly maxTimeMs?: number;
}

/** The pieces of a running simulated update. */
export interface SimContext {
  readonly net: SimNetwork;
  readonly file: Uint8Array;
  readonly update: PreparedUpdate;
  readonly sender: UpdateSender;
  readonly senderHost: SimHost;
  readonly receivers: UpdateReceiver[];
  readonly receiverHosts: SimHost[];
  /** Make receiver `i` again on its directory (the old one closed first): a restart. */
  restart(i: number): UpdateReceiver;
}

/** What {@link runSimUpdate} found. */
export interface SimUpdateResult {
  readonly report: SenderReport;
  readonly receiverReports: (ReceiverReport | undefined)[];
  /** Receivers whose file in place has exactly the original bytes. */
  readonly correct: number;
  /** Virtual ms; and how the run ended. */
  readonly virtualMs: number;
  readonly outcome: string;
  readonly ctx: SimContext;
}

/** Make a receiver on host `h` writing to `dir`. */
function makeReceiver(h: SimHost, i: number, dir: string, seed: number, handler: UpdateHandler | undefined): UpdateReceiver {
  const socket = h.bind(SIM_PORT, { reuseAddr: true });
  const next = xorshift32(seed * 7919 + i * 104729 + 1);
  const random = (): number => next() / 4294967296;
  const rx = new UpdateReceiver({
    socket,
    policy: { allow: ['**'], publisherKeys: [simKey().publicKey] },
    controlGroup: SIM_CONTROL,
    dataGroup: SIM_DATA,
    host: h.name,
    directory: path.join(dir, `r${i}`),
    random,
    ...(handler ? { handler } : {}),
  });
  rx.start();
  return rx;
}

/** Run one update to the end (sender done) and check every receiver's file. */
export function runSimUpdate(o: SimUpdateOptions): SimUpdateResult {
  // Receivers never modify what they get (they copy what they keep), so one shared payload per multicast datagram is safe and cheaper.
  const net = new SimNetwork({ seed: o.seed, sharePayloads: true });
  const delay = o.delayMs ?? 5;
  const loss = simLoss(o.loss, o.bursty ?? false);
  const senderHost = net.addHost({ name: 'sender' });
  const receiverHosts: SimHost[] = [];
  for (let i = 0; i < o.receivers; i++) {
    const link = { delayMs: delay, jitterMs: 1, ...(loss ? { loss } : {}) };
    receiverHosts.push(net.addHost({ name: `r${i}`, downlink: link, uplink: link }));
  }
  const file = simFile(o.fileSize, o.seed);
  const update = prepareUpdate(file, { name: 'update.bin', key: simKey(), fileId: 1 + (o.seed % 60000), version: 1, ...o.code });
  const socket = senderHost.bind(o.senderPort ?? SIM_PORT);
  const sender = new UpdateSender({
    socket,
    update,
    controlGroup: SIM_CONTROL,
    dataGroup: SIM_DATA,
    port: SIM_PORT,
    joinWindowMs: 200,
    announceIntervalMs: 50,
    expectedLoss: o.loss,
    ...o.sender,
  });
  const receivers = receiverHosts.map((h, i) => makeReceiver(h, i, o.dir, o.seed, o.handler));
  const ctx: SimContext = {
    net,
    file,
    update,
    sender,
    senderHost,
    receivers,
    receiverHosts,
    restart(i) {
      // Stop the receiver and close its socket, as a killed process would leave them.
      receivers[i]!.close();
      closeSocketOf(receiverHosts[i]!);
      receivers[i] = makeReceiver(receiverHosts[i]!, i, o.dir, o.seed + 1, o.handler);
      return receivers[i]!;
    },
  };
  o.setup?.(ctx);
  void sender.start();
  const res = net.run({ until: () => sender.state === 'done', maxTimeMs: o.maxTimeMs ?? 600_000 });
  // Let the last FIN repeats and acks drain (bounded).
  net.run({ maxTimeMs: 1_000 });
  const digest = createHash('sha256').update(file).digest('hex');
  let correct = 0;
  const receiverReports = receivers.map((r) => r.reports.at(-1));
  for (let i = 0; i < o.receivers; i++) {
    const f = path.join(o.dir, `r${i}`, 'update.bin');
    try {
      if (createHash('sha256').update(fs.readFileSync(f)).digest('hex') === digest) correct++;
    } catch {
      // missing: not correct
    }
  }
  for (const r of receivers) r.close();
  return { report: sender.report ?? sender.snapshot(), receiverReports, correct, virtualMs: res.now, outcome: res.outcome, ctx };
}

function closeSocketOf(h: SimHost): void {
  for (const sockets of h.ports.values()) for (const s of [...sockets]) s.close();
}
