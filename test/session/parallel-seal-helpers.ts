// Shared by the parallel-sealing tests: the seal worker loaded from the
// TypeScript sources (no build needed), channels built over fixed keys so
// two of them can be compared byte for byte, and small stream helpers.
import { createHash } from 'node:crypto';
import { nobleBackend } from '../../src/session/crypto/index.js';
import { CipherState } from '../../src/session/noise/cipher-state.js';
import { SecureChannel, type VerifiedPeer } from '../../src/session/secure/channel.js';
import { SealPool, type ParallelSealing } from '../../src/session/secure/parallel-seal.js';
import type { ByteStream } from '../../src/transport/index.js';

const register = new URL('../../scripts/ts-register.mjs', import.meta.url).href;
const source = new URL('../../src/session/secure/seal-worker.ts', import.meta.url).href;

/** A worker script as a `data:` module: `code` runs after the TypeScript hooks are registered. */
export function dataWorker(code: string): URL {
  return new URL(`data:text/javascript,${encodeURIComponent(`import ${JSON.stringify(register)};\n${code}`)}`);
}

/** The real seal worker, from src/ through the type-stripping hooks (as the benchmarks load it). */
export const sealWorkerUrl = dataWorker(`await import(${JSON.stringify(source)});`);

/**
 * A seal worker that holds every job until the test opens its gate
 * (`openGate(name)`), then seals them with the real sealing code, in order:
 * so a test can be sure jobs are still pending when it looks. Each gate name
 * is its own worker script, hence its own pool.
 */
export function gatedWorker(name: string): URL {
  const job = new URL('../../src/session/secure/parallel-seal-job.ts', import.meta.url).href;
  return dataWorker(`
    const { parentPort, BroadcastChannel } = await import('node:worker_threads');
    const { sealJobItems } = await import(${JSON.stringify(job)});
    const gate = new BroadcastChannel(${JSON.stringify(`gatesock-test-gate-${name}`)});
    gate.unref();
    let open = false;
    const held = [];
    const run = (job) => { sealJobItems(job.buffer); parentPort.postMessage({ id: job.id }); };
    gate.onmessage = () => {
      gate.postMessage('opened');
      if (open) return;
      open = true;
      for (const j of held.splice(0)) run(j);
    };
    parentPort.on('message', (job) => (open ? run(job) : held.push(job)));
    parentPort.postMessage({ ready: true });`);
}

/**
 * Open the gate of {@link gatedWorker} `name`: ask every 10 ms until the
 * worker says it is open (it may still be loading), at most 10 s.
 */
export async function openGate(name: string): Promise<void> {
  const bc = new BroadcastChannel(`gatesock-test-gate-${name}`);
  try {
    const opened = new Promise<void>((resolve) => (bc.onmessage = () => resolve()));
    for (let i = 0; i < 1000; i++) {
      bc.postMessage('open');
      if (await Promise.race([opened.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10))])) return;
    }
    throw new Error(`gate ${name} did not open`);
  } finally {
    bc.close();
  }
}

/** Parallel sealing over the source worker; `callerSeals: false` leaves every record to the workers. */
export function sealing(callerSeals: boolean, workerUrl: URL = sealWorkerUrl, threads = 1): ParallelSealing {
  return { pool: SealPool.for(workerUrl, threads), callerSeals };
}

const PEER: VerifiedPeer = { publicKey: new Uint8Array(32), msid: 'MSID-TEST', role: 'test' };

/** A noble CipherState under a fixed key made from `seed`. */
export function fixedCipher(seed: number): CipherState {
  const c = new CipherState(nobleBackend);
  c.initializeKey(new Uint8Array(32).map((_, i) => (i * 31 + seed) & 0xff));
  return c;
}

/**
 * A channel over `inner` that sends under key `sendSeed` and receives under
 * `receiveSeed`, with no handshake: the deterministic hook for comparing what
 * two channels put on the wire.
 */
export function fixedChannel(inner: ByteStream, sendSeed: number, receiveSeed: number, rekeyInterval: number, parallel?: ParallelSealing): SecureChannel {
  return new SecureChannel(inner, [], false, fixedCipher(sendSeed), fixedCipher(receiveSeed), PEER, new Uint8Array(32), rekeyInterval, parallel);
}

/** Everything `s` emits until `end` (rejects on a close with an error). */
export function collect(s: ByteStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (c) => parts.push(Buffer.from(c)));
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.on('close', (e) => (e ? reject(e) : resolve(Buffer.concat(parts))));
    s.resume();
  });
}

/** Wait for the next `event` of `s`, at most `ms`. */
export function once(s: ByteStream, event: 'drain' | 'close' | 'end', ms = 10_000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    s.once(event, (...args: unknown[]) => {
      clearTimeout(t);
      resolve(args);
    });
  });
}

/** `n` bytes of a fixed pattern that differs for each `seed`. */
export function pattern(n: number, seed: number): Uint8Array {
  return new Uint8Array(n).map((_, i) => (i * 7 + seed * 13 + (i >> 9)) & 0xff);
}

export const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
