/**
 * Helpers shared by the mux tests: session pairs over memory pairs, byte
 * patterns, and waiting for events with a deadline.
 */
import { EventEmitter } from 'eventemitter3';
import type { GatesockError } from '../../src/errors/index.js';
import { memoryPair, type ByteStream, type ByteStreamEvents, type MemoryPairOptions, type TransportInfo } from '../../src/transport/index.js';
import { MuxSession, type MuxClock, type MuxConnection, type MuxSessionOptions } from '../../src/session/mux/index.js';

export interface SessionPair {
  a: MuxSession;
  b: MuxSession;
  ta: ByteStream;
  tb: ByteStream;
}

/** An initiator `a` and a responder `b` over one memory pair. */
export function sessionPair(options: Partial<MuxSessionOptions> = {}, pairOptions: MemoryPairOptions = {}): SessionPair {
  const [ta, tb] = memoryPair(pairOptions);
  const a = new MuxSession(ta, { ...options, role: 'initiator' });
  const b = new MuxSession(tb, { ...options, role: 'responder' });
  return { a, b, ta, tb };
}

/** Deterministic pseudo-random bytes (xorshift32), so integrity checks need no copy of the input. */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Write `data` in `chunk`-byte pieces honouring backpressure, then end(). */
export async function writeAll(conn: ByteStream, data: Uint8Array, chunk = 64 * 1024, end = true): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) {
    if (!conn.write(data.subarray(off, off + chunk))) {
      await new Promise<void>((resolve) => conn.once('drain', resolve));
    }
  }
  if (end) conn.end();
}

/** Read everything until `end`; resolves with the bytes. Rejects on close with an error. */
export function readAll(conn: ByteStream): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const parts: Uint8Array[] = [];
    let total = 0;
    conn.on('data', (d) => {
      parts.push(d.slice());
      total += d.length;
    });
    conn.once('end', () => {
      const out = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      resolve(out);
    });
    conn.once('close', (error) => {
      if (error) reject(error);
    });
    conn.resume();
  });
}

/** Resolve with the next incoming connection of `session`. */
export function nextConnection(session: MuxSession): Promise<MuxConnection> {
  return new Promise((resolve) => session.once('connection', (conn) => resolve(conn)));
}

/** Wait until `predicate()` holds, polling; reject after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = performance.now();
  while (!predicate()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Equal without printing megabytes on failure. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** A clock the test moves by hand: timers fire inside `advance()`, in time order. */
export class ManualClock implements MuxClock {
  private t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }

  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Pending timers. */
  get pending(): number {
    return this.timers.size;
  }

  /** Move time forward by `ms`, firing every timer due on the way. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}

/**
 * A ByteStream the test drives by hand: `feed()` emits `data` synchronously,
 * writes are recorded. For fuzzing a session without any timers or queues.
 */
export class FakeTransport extends EventEmitter<ByteStreamEvents> implements ByteStream {
  readonly info: TransportInfo = { kind: 'fake' };
  written: Uint8Array[] = [];
  ended = false;
  private isClosed = false;

  get closed(): boolean {
    return this.isClosed;
  }

  write(chunk: Uint8Array): boolean {
    if (this.isClosed || this.ended) throw new Error('write after end');
    this.written.push(chunk.slice());
    return true;
  }

  end(): void {
    this.ended = true;
  }

  destroy(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.emit('close');
  }

  pause(): void {}

  resume(): void {}

  /** Deliver bytes from the "peer" synchronously. */
  feed(chunk: Uint8Array): void {
    this.emit('data', chunk);
  }
}

/**
 * Wraps a ByteStream; after `cut()` it swallows every byte both ways (a
 * silent peer: no error, no close, nothing).
 */
export class CuttableStream extends EventEmitter<ByteStreamEvents> implements ByteStream {
  private isCut = false;
  private isClosed = false;

  constructor(private readonly inner: ByteStream) {
    super();
    inner.on('data', (d) => {
      if (!this.isCut) this.emit('data', d);
    });
    inner.on('end', () => {
      if (!this.isCut) this.emit('end');
    });
    inner.on('drain', () => this.emit('drain'));
    inner.on('close', (e) => {
      if (!this.isCut) this.finish(e);
    });
  }

  get info(): TransportInfo {
    return this.inner.info;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** From now on nothing goes through either way, not even a close. */
  cut(): void {
    this.isCut = true;
  }

  write(chunk: Uint8Array): boolean {
    return this.isCut ? true : this.inner.write(chunk);
  }

  end(): void {
    if (!this.isCut) this.inner.end();
  }

  destroy(error?: Error): void {
    this.inner.destroy(error);
    this.finish(undefined);
  }

  pause(): void {
    this.inner.pause();
  }

  resume(): void {
    this.inner.resume();
  }

  private finish(error: GatesockError | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.emit('close', error);
  }
}
