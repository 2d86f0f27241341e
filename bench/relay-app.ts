/**
 * The application that the relay figures and experiments run at both ends of
 * a path, whatever the path is: straight to a TCP port, through a plain
 * `net` pipe relay, or through a gatesock gateway. The same code serves a
 * `net.Socket` and a gatesock `ByteStream`, so ours and the baseline differ
 * only in the path.
 *
 * Protocol (client first, per connection): a 9-byte request, op (1 byte) and
 * a length (u64 LE), then
 *
 * ```
 *  'S' sink      the client sends `length` bytes of the pattern stream; the
 *  'H' sink+hash server checks each byte as it arrives, then answers 48 bytes:
 *                received u64 | first bad offset + 1 (0: none) u64 | SHA-256
 *                ('H' only, else zeros) — and ends.
 *  'G' generate  the server sends `length` bytes of the pattern stream and ends.
 *  'E' echo      the server writes back every byte it receives, until end.
 * ```
 *
 * Timing is done at the client alone (one clock): a push runs from its first
 * write to the server's answer, a pull from the request to the last byte.
 * Benchmarks check before they time (STYLE.md §1): {@link checkPush} and
 * {@link checkPull} compare a SHA-256 of what arrived with the pattern's, and
 * every timed transfer still compares every byte with the pattern.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { BenchCheckError, timeEchoes, withTimeout } from './baselines.js';
import { patternAt, patternDigest, patternMismatch } from './pattern.js';

export const HOST = '127.0.0.1';
const MiB = 1 << 20;

/** What a figure pushes through: `net.Socket` and gatesock `ByteStream` both fit. */
export interface AppStream {
  write(chunk: Uint8Array): boolean;
  end(): void;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  on(event: 'close', listener: (error?: unknown) => void): unknown;
  once(event: 'drain', listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
  destroy(error?: Error): unknown;
}

/** A path's entry: opens a new connection to the app at the far end. */
export type Dial = () => Promise<AppStream>;


export { patternAt, patternDigest } from './pattern.js';

// ---------------------------------------------------------------- server side

/** Serve one connection of the app protocol (see the file comment). */
export function serveApp(stream: AppStream): void {
  let header: Buffer | undefined = Buffer.alloc(0);
  let op = 0;
  let length = 0;
  let received = 0;
  let bad = -1;
  let hash: ReturnType<typeof createHash> | undefined;
  const fail = (): void => void stream.destroy();
  stream.on('close', () => undefined);
  stream.on('data', (chunk) => {
    if (header !== undefined) {
      header = Buffer.concat([header, chunk]);
      if (header.length < 9) return;
      op = header[0]!;
      length = Number(header.readBigUInt64LE(1));
      chunk = header.subarray(9);
      header = undefined;
      if (op === 0x47 /* G */) return generate(stream, length);
      if (op === 0x48 /* H */) hash = createHash('sha256');
      else if (op !== 0x53 /* S */ && op !== 0x45 /* E */) return fail();
      if (chunk.length === 0) return;
    }
    if (op === 0x45) {
      if (!stream.write(chunk)) {
        stream.pause();
        stream.once('drain', () => stream.resume());
      }
      return;
    }
    if (bad < 0) {
      const m = patternMismatch(chunk, received);
      if (m >= 0) bad = m;
    }
    hash?.update(chunk);
    received += chunk.length;
    if (received >= length) {
      const answer = Buffer.alloc(48);
      answer.writeBigUInt64LE(BigInt(received), 0);
      answer.writeBigUInt64LE(BigInt(bad + 1), 8);
      if (hash) hash.digest().copy(answer, 16);
      stream.write(answer);
      stream.end();
    }
  });
  stream.on('end', () => {
    if (op === 0x45) stream.end();
  });
  stream.resume();
}

function generate(stream: AppStream, length: number): void {
  let sent = 0;
  const pump = (): void => {
    while (sent < length) {
      const n = Math.min(256 * 1024, length - sent);
      const ok = stream.write(patternAt(sent, n));
      sent += n;
      if (!ok) return void stream.once('drain', pump);
    }
    stream.end();
  };
  pump();
}

// ---------------------------------------------------------------- client side

function request(op: string, length: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = op.charCodeAt(0);
  b.writeBigUInt64LE(BigInt(length), 1);
  return b;
}

/** One timed transfer. */
export interface Transfer {
  readonly bytes: number;
  readonly seconds: number;
  /** MB/s, MB = 10^6 bytes. */
  readonly mbPerSecond: number;
  /** SHA-256 (hex) of what arrived, when asked for. */
  readonly sha256?: string;
}

/** Options of a transfer. */
export interface TransferOptions {
  /** Bytes per write, up to 1 MiB. Default 256 KiB. */
  chunk?: number;
  /** Fail after this long. Default 60 s. */
  timeoutMs?: number;
  /** Have the receiver hash what arrived (the check run; slower). */
  hash?: boolean;
}

/**
 * Client → server: push `bytes` of the pattern through a new connection and
 * wait for the server's answer. Timed from the first write to the answer.
 */
export async function push(dial: Dial, bytes: number, options: TransferOptions = {}): Promise<Transfer> {
  const chunk = options.chunk ?? 256 * 1024;
  const stream = await dial();
  try {
    const answer = new Promise<Buffer>((resolve, reject) => {
      let got = Buffer.alloc(0);
      stream.on('data', (c) => {
        got = Buffer.concat([got, c]);
        if (got.length >= 48) resolve(got.subarray(0, 48));
      });
      stream.on('close', () => reject(new BenchCheckError(`the path closed after ${got.length} answer bytes`)));
      stream.resume();
    });
    const start = process.hrtime.bigint();
    stream.write(request(options.hash ? 'H' : 'S', bytes));
    let sent = 0;
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        while (sent < bytes) {
          const n = Math.min(chunk, bytes - sent);
          const ok = stream.write(patternAt(sent, n));
          sent += n;
          if (!ok) return void stream.once('drain', pump);
        }
        resolve();
      };
      pump();
    });
    const a = await withTimeout(answer, options.timeoutMs ?? 60_000, `push of ${bytes} B`);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const received = Number(a.readBigUInt64LE(0));
    const bad = Number(a.readBigUInt64LE(8)) - 1;
    if (received !== bytes) throw new BenchCheckError(`the server received ${received} B, ${bytes} B were sent`);
    if (bad >= 0) throw new BenchCheckError(`the server received wrong bytes at offset ${bad}`);
    return { bytes, seconds, mbPerSecond: bytes / seconds / 1e6, sha256: options.hash ? a.subarray(16).toString('hex') : undefined };
  } finally {
    stream.destroy();
  }
}

/**
 * Server → client: ask for `bytes` of the pattern over a new connection and
 * receive them all. Timed from the request to the last byte; every byte is
 * compared with the pattern.
 */
export async function pull(dial: Dial, bytes: number, options: TransferOptions = {}): Promise<Transfer> {
  const stream = await dial();
  try {
    const hash = options.hash ? createHash('sha256') : undefined;
    let received = 0;
    let bad = -1;
    const start = process.hrtime.bigint();
    const done = new Promise<bigint>((resolve, reject) => {
      stream.on('data', (c) => {
        if (bad < 0) {
          const m = patternMismatch(c, received);
          if (m >= 0) bad = m;
        }
        hash?.update(c);
        received += c.length;
        if (received >= bytes) resolve(process.hrtime.bigint());
      });
      stream.on('close', () => reject(new BenchCheckError(`the path closed after ${received} of ${bytes} B`)));
      stream.resume();
    });
    stream.write(request('G', bytes));
    const end = await withTimeout(done, options.timeoutMs ?? 60_000, `pull of ${bytes} B`);
    if (received !== bytes) throw new BenchCheckError(`received ${received} B, the server sent ${bytes} B`);
    if (bad >= 0) throw new BenchCheckError(`received wrong bytes at offset ${bad}`);
    const seconds = Number(end - start) / 1e9;
    return { bytes, seconds, mbPerSecond: bytes / seconds / 1e6, sha256: hash?.digest('hex') };
  } finally {
    stream.destroy();
  }
}

/** Check a path in one direction before timing it: a hashed transfer whose digest must be the pattern's. */
export async function checkPath(dial: Dial, direction: 'push' | 'pull', bytes = 8 * MiB): Promise<string> {
  const t = await (direction === 'push' ? push : pull)(dial, bytes, { hash: true });
  const want = patternDigest(bytes);
  if (t.sha256 !== want) throw new BenchCheckError(`${direction}: SHA-256 of what arrived ${t.sha256} is not the sent ${want}`);
  return want;
}

/**
 * Ping-pong 8-byte messages over a new connection to the echo op: `warmup`
 * untimed, then `rounds` timed; every echo must be the message sent.
 * Returns the round-trip times in µs, in order.
 */
export async function pingPong(dial: Dial, rounds: number, options: { warmup?: number; timeoutMs?: number } = {}): Promise<number[]> {
  const warmup = options.warmup ?? 200;
  const stream = await dial();
  stream.write(request('E', 0));
  return timeEchoes(stream, rounds, warmup, options.timeoutMs ?? 30_000);
}

// ---------------------------------------------------------------- plain TCP

/** Something listening on 127.0.0.1. */
export interface Listening {
  readonly port: number;
  close(): Promise<void>;
}

/** Dial a TCP port on 127.0.0.1 (no Nagle). */
export function dialTcp(port: number): Dial {
  return () =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: HOST, port }, () => {
        s.off('error', reject);
        s.on('error', () => s.destroy());
        resolve(s);
      });
      s.setNoDelay(true);
      s.once('error', reject);
    });
}

/** The app over plain TCP: the far end of every baseline path. */
export function listenApp(): Promise<Listening> {
  return listenTcp((s) => {
    s.setNoDelay(true);
    s.on('error', () => s.destroy());
    serveApp(s);
  });
}

/**
 * The plain relay: every accepted connection gets its own connection to
 * `target`, piped both ways (what a gateway would be without framing or
 * crypto). The same as bench/baselines.ts's, in the process it is started in.
 */
export function listenPlainRelay(target: number): Promise<Listening> {
  return listenTcp((client) => {
    const upstream = net.connect({ host: HOST, port: target });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
}

/** Listen on 127.0.0.1 (a free port); close() destroys every accepted socket. */
export async function listenTcp(onSocket: (s: net.Socket) => void, backlog = 4096): Promise<Listening> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    onSocket(s);
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, backlog, () => resolve((server.address() as net.AddressInfo).port));
  });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

