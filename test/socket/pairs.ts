/**
 * Connected SockIo pairs for the socket tests, over each transport the suite
 * runs on: the in-memory pair and real loopback TCP.
 */
import { SockIo, type SockIoOptions } from '../../src/socket/index.js';
import { memoryPair, tcpListen, tcpConnect, type ByteStream, type MemoryPairOptions } from '../../src/transport/index.js';
import { SeededRandom } from '../../src/transport/random.js';

export interface SockPair {
  a: SockIo;
  b: SockIo;
  /** The raw streams under `a` and `b`. */
  streams: [ByteStream, ByteStream];
  cleanup: () => Promise<void>;
}

export interface PairOptions {
  sock?: SockIoOptions;
  memory?: MemoryPairOptions;
}

export type PairMaker = (options?: PairOptions) => Promise<SockPair>;

export async function memorySockPair(options: PairOptions = {}): Promise<SockPair> {
  const [x, y] = memoryPair(options.memory);
  const a = SockIo.fromStream(x, { connectionId: 1 }, options.sock);
  const b = SockIo.fromStream(y, { connectionId: 1 }, options.sock);
  return {
    a,
    b,
    streams: [x, y],
    cleanup: async () => {
      x.destroy();
      y.destroy();
    },
  };
}

export async function tcpSockPair(options: PairOptions = {}): Promise<SockPair> {
  let accepted!: (s: ByteStream) => void;
  const serverSide = new Promise<ByteStream>((resolve) => (accepted = resolve));
  const listener = await tcpListen({ host: '127.0.0.1', port: 0 }, (s) => accepted(s));
  const x = await tcpConnect({ host: '127.0.0.1', port: listener.port });
  const y = await serverSide;
  const a = SockIo.fromStream(x, { connectionId: 2 }, options.sock);
  const b = SockIo.fromStream(y, { connectionId: 2 }, options.sock);
  return {
    a,
    b,
    streams: [x, y],
    cleanup: async () => {
      x.destroy();
      y.destroy();
      await listener.close();
    },
  };
}

export const TRANSPORTS: readonly [string, PairMaker][] = [
  ['memory', memorySockPair],
  ['tcp', tcpSockPair],
];

// Shared with the transport conformance suite.
export { randomBytes, sha256, sleep } from '../transport/conformance.js';


/** Send all of `data` with `send`, in pieces of random size up to `maxPiece`. */
export async function sendAll(sock: SockIo, data: Uint8Array, maxPiece = 0, seed = 1): Promise<number> {
  const rng = new SeededRandom(seed);
  let calls = 0;
  for (let off = 0; off < data.length; calls++) {
    const size = maxPiece > 0 ? 1 + (rng.next() % maxPiece) : data.length - off;
    const n = await sock.send(data.subarray(off, off + size));
    if (n < 1 || n > size) throw new Error(`send accepted ${n} of ${size}`);
    off += n;
  }
  return calls;
}

/** Receive until end of stream with `recv(max)` of random size up to `maxRecv`, checking the limit. */
export async function recvAll(sock: SockIo, maxRecv = 65536, seed = 2): Promise<Uint8Array[]> {
  const rng = new SeededRandom(seed);
  const chunks: Uint8Array[] = [];
  for (;;) {
    const max = 1 + (rng.next() % maxRecv);
    const c = await sock.recv(max);
    if (c.length > max) throw new Error(`recv(${max}) returned ${c.length} bytes`);
    if (c.length === 0) return chunks;
    chunks.push(c.slice());
  }
}

export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
