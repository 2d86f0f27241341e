/**
 * Stream helpers shared by the relay tests: an echoing end, a round trip
 * that sends bytes and collects the echo, and a polling wait.
 */
import { createHash } from 'node:crypto';
import type { ByteStream } from '../../src/session/index.js';

/** Echo everything back, with backpressure; end when the peer ends. */
export function echo(stream: ByteStream): void {
  stream.on('data', (d) => {
    if (!stream.write(d)) {
      stream.pause();
      stream.once('drain', () => stream.resume());
    }
  });
  stream.on('end', () => stream.end());
  stream.resume();
}

/** Send `data` in pieces of `piece` bytes, end, and collect what comes back until the peer ends. */
export function roundTrip(stream: ByteStream, data: Uint8Array, piece = 65536): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const got: Uint8Array[] = [];
    stream.on('data', (d) => got.push(d));
    stream.on('end', () => resolve(Buffer.concat(got)));
    stream.on('close', (e) => e && reject(e));
    stream.resume();
    let off = 0;
    const pump = (): void => {
      while (off < data.length) {
        const part = data.subarray(off, off + piece);
        off += part.length;
        if (!stream.write(part)) return void stream.once('drain', pump);
      }
      stream.end();
    };
    pump();
  });
}

/** SHA-256 hex of some bytes. */
export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Resolves with the wait in ms once `cond()` holds; throws after `timeoutMs`. */
export async function until(cond: () => boolean, timeoutMs = 10_000): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}
