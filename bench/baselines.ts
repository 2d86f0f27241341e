/**
 * Baselines that gatesock's figures are measured against, built on plain
 * `node:net` only: a loopback TCP sink, a plain TCP relay (two sockets piped
 * both ways, what a minimal gateway would be without framing or crypto), a
 * TCP echo server, and helpers that push bytes or ping-pong messages through
 * any path and verify what arrived.
 *
 * Everything listens on and connects to 127.0.0.1, and runs on the calling
 * thread: a figure's sender, relay and sink share one event loop, so a
 * throughput figure compares the CPU cost per byte of whole paths, which is
 * what a side-by-side ratio can carry across machines.
 *
 * Checks (STYLE.md §1, "benchmarks check before they time"):
 * - {@link checkPath} pushes a few MiB with a running SHA-256 on both ends
 *   and compares count and digest; run it on every path before timing.
 * - {@link pushThrough}, the timed transfer, still checks the byte count and
 *   every byte against the known pattern (a `memcmp`, cheap enough not to
 *   skew the timing, unlike a hash in the same thread), and
 *   {@link pingPong} checks every echoed message.
 * Any mismatch throws a {@link BenchCheckError}, so the figure is not printed.
 *
 * Throughput is in MB/s with MB = 10^6 bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import net from 'node:net';
import { median } from './harness.js';
import { PATTERN_MAX_CHUNK, patternAt, patternDigest, patternMismatch } from './pattern.js';

const HOST = '127.0.0.1';

/** A path delivered the wrong bytes, too few or too many, or none in time. */
export class BenchCheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchCheckError';
  }
}

/**
 * The smallest stream surface the helpers need. `net.Socket` has it, and so
 * does a gatesock `ByteStream`, so a figure can push through either.
 */
export interface BenchStream {
  write(chunk: Uint8Array): boolean;
  end(): void;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  once(event: 'drain', listener: () => void): unknown;
  resume(): unknown;
  destroy(): unknown;
}

/** Where a transfer enters a path: a TCP port on 127.0.0.1, or a function that opens a stream. */
export type Entry = number | (() => Promise<BenchStream>);

/** Something listening on 127.0.0.1 that a figure must close when done. */
export interface LoopbackServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Run `body` with servers that are closed afterwards, whatever happens. */
export async function usingServers<T>(servers: LoopbackServer[], body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } finally {
    await Promise.all(servers.map((s) => s.close()));
  }
}

// ---------------------------------------------------------------- sink

/** What the sink saw on one connection, up to the sender's end. */
export interface Delivery {
  /** Bytes received. */
  readonly bytes: number;
  /** Offset of the first byte that differs from the pattern stream, or -1. */
  readonly mismatchAt: number;
  /** Hex SHA-256 of everything received, when the transfer asked for it. */
  readonly sha256: string | undefined;
  /** `process.hrtime.bigint()` when the end of the stream arrived. */
  readonly endedAt: bigint;
}

/** A loopback TCP server that takes one transfer per connection and reports it. */
export interface TcpSink extends LoopbackServer {
  /**
   * Expect the next connection: resolves with its {@link Delivery} once the
   * sender ends it. Call before connecting; transfers are taken in order.
   */
  next(options?: { hash?: boolean }): Promise<Delivery>;
}

interface Waiter {
  hash: boolean;
  resolve(d: Delivery): void;
  reject(e: Error): void;
}

/** Start a {@link TcpSink} on 127.0.0.1 (a free port). */
export async function startTcpSink(): Promise<TcpSink> {
  const waiters: Waiter[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const waiter = waiters.shift();
    if (waiter === undefined) {
      socket.destroy();
      return;
    }
    const hash: Hash | undefined = waiter.hash ? createHash('sha256') : undefined;
    let bytes = 0;
    let mismatchAt = -1;
    socket.on('data', (chunk: Buffer) => {
      if (mismatchAt < 0) mismatchAt = patternMismatch(chunk, bytes);
      hash?.update(chunk);
      bytes += chunk.length;
    });
    socket.on('end', () => {
      const endedAt = process.hrtime.bigint();
      waiter.resolve({ bytes, mismatchAt, sha256: hash?.digest('hex'), endedAt });
      socket.end();
    });
    socket.on('error', (e) => waiter.reject(new BenchCheckError(`sink: ${e.message}`)));
  });
  const port = await listen(server);
  return {
    port,
    next(options = {}) {
      return new Promise<Delivery>((resolve, reject) => waiters.push({ hash: options.hash ?? false, resolve, reject }));
    },
    close: () => closeServer(server, sockets),
  };
}

// ---------------------------------------------------------------- relay, echo

/**
 * Start a plain TCP relay on 127.0.0.1: every accepted connection gets its
 * own connection to `targetPort`, and the two are piped both ways. No
 * framing, no crypto: the floor a gateway relay is compared against.
 */
export async function startPlainRelay(targetPort: number): Promise<LoopbackServer> {
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: HOST, port: targetPort });
    track(client);
    track(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
    // An error on either side tears down both; no error is fatal to the process.
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  const port = await listen(server);
  return { port, close: () => closeServer(server, sockets) };
}

/** Start a TCP echo server on 127.0.0.1: every byte received is written back. */
export async function startTcpEcho(): Promise<LoopbackServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.setNoDelay(true);
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  const port = await listen(server);
  return { port, close: () => closeServer(server, sockets) };
}

// ---------------------------------------------------------------- transfers

/** One timed transfer. */
export interface Transfer {
  readonly bytes: number;
  readonly seconds: number;
  /** `bytes / seconds / 10^6`. */
  readonly mbPerSecond: number;
}

/** Options of {@link pushThrough} and {@link checkPath}. */
export interface PushOptions {
  /** Bytes per write, 1 B to 1 MiB. Default 64 KiB. */
  chunk?: number;
  /** Fail when the transfer takes longer. Default 60 000 ms. */
  timeoutMs?: number;
}

/**
 * Push `bytes` of the pattern stream into `entry`, with backpressure, and
 * wait until `sink` has them all. Times from the first write to the sink
 * seeing the end; checks count and content; returns MB/s.
 */
export async function pushThrough(entry: Entry, sink: TcpSink, bytes: number, options: PushOptions = {}): Promise<Transfer> {
  const { transfer } = await transferOnce(entry, sink, bytes, options, false);
  return transfer;
}

/**
 * Check a path before timing it: push `bytes` (default 8 MiB) with a running
 * SHA-256 on the sink, and compare count, content and digest with what was
 * sent. Throws {@link BenchCheckError} on any difference; returns the digest.
 */
export async function checkPath(entry: Entry, sink: TcpSink, bytes = 8 << 20, options: PushOptions = {}): Promise<string> {
  const { delivery } = await transferOnce(entry, sink, bytes, options, true);
  const want = patternDigest(bytes);
  if (delivery.sha256 !== want) {
    throw new BenchCheckError(`sha256 of delivered bytes ${delivery.sha256} differs from the sent ${want}`);
  }
  return want;
}

async function transferOnce(
  entry: Entry,
  sink: TcpSink,
  bytes: number,
  options: PushOptions,
  hash: boolean,
): Promise<{ transfer: Transfer; delivery: Delivery }> {
  const chunk = options.chunk ?? 64 << 10;
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!(Number.isInteger(bytes) && bytes > 0)) throw new RangeError('bytes must be a positive integer');
  if (!(Number.isInteger(chunk) && chunk > 0 && chunk <= PATTERN_MAX_CHUNK)) throw new RangeError('chunk must be 1 B to 1 MiB');
  const delivered = sink.next({ hash });
  const stream = await open(entry);
  try {
    const start = process.hrtime.bigint();
    let sent = 0;
    const pumped = new Promise<void>((resolve) => {
      const pump = () => {
        while (sent < bytes) {
          const n = Math.min(chunk, bytes - sent);
          const ok = stream.write(patternAt(sent, n));
          sent += n;
          if (!ok) {
            stream.once('drain', pump);
            return;
          }
        }
        stream.end();
        resolve();
      };
      pump();
    });
    // One deadline for both: a path that dies mid-transfer never drains.
    const [, delivery] = await withTimeout(Promise.all([pumped, delivered]), timeoutMs, `transfer of ${bytes} B`);
    if (delivery.bytes !== bytes) throw new BenchCheckError(`sink received ${delivery.bytes} B, sent ${bytes} B`);
    if (delivery.mismatchAt >= 0) throw new BenchCheckError(`delivered bytes differ from the sent ones at offset ${delivery.mismatchAt}`);
    const seconds = Number(delivery.endedAt - start) / 1e9;
    return { transfer: { bytes, seconds, mbPerSecond: bytes / seconds / 1e6 }, delivery };
  } finally {
    stream.destroy();
  }
}

/** Result of {@link pingPong}. */
export interface RoundTrips {
  /** Median round-trip time in microseconds. */
  readonly medianMicros: number;
  /** Every timed round trip, in microseconds, in order. */
  readonly samples: readonly number[];
}

/**
 * Ping-pong 8-byte messages through `entry` to an echo server: send one,
 * wait for the same 8 bytes back, repeat. The first `warmup` round trips are
 * not timed. Each message carries its round number and must come back intact.
 */
export async function pingPong(entry: Entry, rounds = 2000, options: { warmup?: number; timeoutMs?: number } = {}): Promise<RoundTrips> {
  const warmup = options.warmup ?? 200;
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!(Number.isInteger(rounds) && rounds > 0)) throw new RangeError('rounds must be a positive integer');
  const samples = await timeEchoes(await open(entry), rounds, warmup, timeoutMs);
  return { medianMicros: median(samples), samples };
}

/** What {@link timeEchoes} needs of a stream: `net.Socket` and gatesock `ByteStream` both fit. */
export interface EchoStream {
  write(chunk: Uint8Array): unknown;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  resume(): unknown;
  destroy(): unknown;
}

/**
 * Ping-pong 8-byte messages over `stream`, which must echo them: send one,
 * wait for the same 8 bytes back, repeat. The first `warmup` are not timed;
 * each message carries its round number and must come back intact, with
 * nothing extra. Destroys the stream; returns the round trips in µs.
 */
export async function timeEchoes(stream: EchoStream, rounds: number, warmup: number, timeoutMs: number): Promise<number[]> {
  let pending = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  stream.on('data', (c) => {
    pending = pending.length === 0 ? Buffer.from(c) : Buffer.concat([pending, c]);
    wake?.();
  });
  stream.resume();
  const samples: number[] = [];
  const msg = Buffer.alloc(8);
  try {
    await withTimeout(
      (async () => {
        for (let i = 0; i < warmup + rounds; i++) {
          msg.writeBigUInt64LE((BigInt(i) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn);
          const t0 = process.hrtime.bigint();
          stream.write(msg);
          while (pending.length < 8) await new Promise<void>((r) => (wake = r));
          const t1 = process.hrtime.bigint();
          const reply = pending.subarray(0, 8);
          pending = pending.subarray(8);
          if (!reply.equals(msg)) throw new BenchCheckError(`round ${i}: echoed ${reply.toString('hex')}, sent ${msg.toString('hex')}`);
          if (pending.length > 0) throw new BenchCheckError(`round ${i}: ${pending.length} unexpected extra bytes`);
          if (i >= warmup) samples.push(Number(t1 - t0) / 1e3);
        }
      })(),
      timeoutMs,
      `${rounds} round trips`,
    );
  } finally {
    stream.destroy();
  }
  return samples;
}

// ---------------------------------------------------------------- plumbing

async function open(entry: Entry): Promise<BenchStream> {
  if (typeof entry === 'function') return entry();
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port: entry }, () => {
      s.off('error', reject);
      s.on('error', () => s.destroy()); // surfaces as a short delivery or a timeout
      resolve(s);
    });
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve((server.address() as net.AddressInfo).port));
  });
}

function closeServer(server: net.Server, sockets: Set<net.Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** `p`, or a {@link BenchCheckError} naming `what` after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BenchCheckError(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
