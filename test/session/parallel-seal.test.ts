/**
 * Parallel sealing (src/session/secure/parallel-seal.ts): a channel whose
 * large writes are sealed on seal workers and the calling thread puts the
 * same bytes on the wire as one that seals alone, in the same order, with the
 * same rekeys; it honours backpressure, end() and destroy(), and fails with a
 * typed error when a worker does. The workers load from the TypeScript
 * sources (parallel-seal-helpers.ts), so no build is needed.
 */
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CryptoError, GatesockError, TransportError } from '../../src/errors/index.js';
import { SealPool } from '../../src/session/secure/parallel-seal.js';
import { memoryPair, tcpConnect, tcpListen, type ByteStream } from '../../src/transport/index.js';
import { SeededRandom } from '../../src/transport/random.js';
import { fakeIdentity, fakeVerifier } from '../helpers/fake-identity.js';
import { getCryptoBackend } from '../../src/session/crypto/index.js';
import { CipherState } from '../../src/session/noise/cipher-state.js';
import { SecureChannel, secureAccept, secureConnect, type SecureChannelOptions, type VerifiedPeer } from '../../src/session/secure/channel.js';
import { collect, dataWorker, fixedChannel, fixedCipher, gatedWorker, once, openGate, pattern, sealWorkerUrl, sealing, sha } from './parallel-seal-helpers.js';

const RECORD = 65519;

/** One step of a write script: a write of `n` bytes, or a pause of one macrotask (staged bytes are sealed). */
type Step = number | 'tick';

/**
 * Run `script` through a channel over a memory pair and return what it put on
 * the wire (raw) and what a plain receiver under the matching key decrypts.
 */
async function runScript(script: readonly Step[], rekeyInterval: number, parallel: ReturnType<typeof sealing> | undefined) {
  const [ta, tb] = memoryPair();
  const raw = collect(tb);
  const ch = fixedChannel(ta, 1, 2, rekeyInterval, parallel);
  const written: Uint8Array[] = [];
  let seed = 0;
  for (const step of script) {
    if (step === 'tick') {
      await new Promise((r) => setTimeout(r, 0));
      continue;
    }
    const data = pattern(step, ++seed);
    written.push(data);
    ch.write(data);
    data.fill(0xee); // the caller may reuse its buffer at once
  }
  ch.end();
  const wire = await raw;
  // Decrypt with a channel that has never heard of parallel sealing.
  const [ra, rb] = memoryPair();
  const plain = collect(fixedChannel(rb, 2, 1, rekeyInterval));
  ra.write(wire);
  ra.end();
  return { wire, plain: await plain, written: Buffer.concat(written.map((w, i) => Buffer.from(pattern(w.length, i + 1)))) };
}

/** Write scripts: mixed small and large writes, in one tick and across ticks. */
function scripts(): Record<string, Step[]> {
  const rng = new SeededRandom(11);
  const mixed: Step[] = [];
  for (let i = 0; i < 40; i++) {
    const kind = rng.next() % 4;
    mixed.push(kind === 0 ? 1 + (rng.next() % 300) : kind === 1 ? 1 + (rng.next() % (3 * RECORD)) : kind === 2 ? 2 * RECORD + (rng.next() % (10 * RECORD)) : 'tick');
  }
  return {
    'small, large, rest in one tick': [10, 700_000, 348_576],
    'one write of 20 records and a tail': [20 * RECORD + 77],
    'exactly two records, then one': [2 * RECORD, RECORD],
    'staged bytes then a large write, then small ones': [5, 3, 'tick', 100, 3 * RECORD + 1, 7, 9, 'tick', 2 * RECORD],
    'random mix of 40 steps': mixed,
  };
}

describe('CipherState.reserve', () => {
  it('takes consecutive nonces under the current key, carrying into the high half', () => {
    const c = fixedCipher(1);
    c.setNonce(2n ** 32n - 2n);
    const key = new Uint8Array(32);
    expect(c.reserve(5, key)).toEqual({ lo: 2 ** 32 - 2, hi: 0 });
    expect(c.nonce).toBe(2n ** 32n + 3n);
    expect(key).toEqual(new Uint8Array(32).map((_, i) => (i * 31 + 1) & 0xff));
    expect(c.reserve(1, key)).toEqual({ lo: 3, hi: 1 });
  });

  it('never hands out the reserved nonce 2^64−1, and leaves the nonce alone when it refuses', () => {
    const c = fixedCipher(1);
    const key = new Uint8Array(32);
    c.setNonce(2n ** 64n - 3n);
    expect(() => c.reserve(3, key)).toThrow(expect.objectContaining({ code: 'GS_ERR_NONCE_EXHAUSTED' }));
    expect(c.nonce).toBe(2n ** 64n - 3n);
    expect(c.reserve(2, key)).toEqual({ lo: 2 ** 32 - 3, hi: 2 ** 32 - 1 });
    expect(() => c.reserve(1, key)).toThrow(expect.objectContaining({ code: 'GS_ERR_NONCE_EXHAUSTED' }));
  });

  it('is refused without a noble key (the native backend keeps its key in OpenSSL)', () => {
    const native = new CipherState(getCryptoBackend('native'));
    native.initializeKey(new Uint8Array(32).fill(1));
    expect(() => native.reserve(1, new Uint8Array(32))).toThrow(expect.objectContaining({ code: 'GS_ERR_BAD_KEY' }));
    expect(() => fixedCipher(1).reserve(0, new Uint8Array(32))).toThrow(RangeError);
  });

  it('gives workers the nonces one thread would use across the 2^32 boundary', async () => {
    const peer: VerifiedPeer = { publicKey: new Uint8Array(32), msid: 'MSID-TEST', role: 'test' };
    const wire = async (parallel?: ReturnType<typeof sealing>) => {
      const [ta, tb] = memoryPair();
      const raw = collect(tb);
      const send = fixedCipher(1);
      send.setNonce(2n ** 32n - 3n);
      const ch = new SecureChannel(ta, [], false, send, fixedCipher(2), peer, new Uint8Array(32), 2 ** 20, parallel);
      ch.write(pattern(8 * RECORD, 1));
      ch.end();
      return raw;
    };
    const alone = await wire();
    expect((await wire(sealing(false))).equals(alone)).toBe(true);
    expect((await wire(sealing(true))).equals(alone)).toBe(true);
  });
});

describe('parallel sealing: the bytes on the wire', () => {
  for (const [name, script] of Object.entries(scripts())) {
    for (const rekeyInterval of [1, 3, 2 ** 20]) {
      it(`are the same as sealing alone: ${name}, rekey every ${rekeyInterval}`, async () => {
        const alone = await runScript(script, rekeyInterval, undefined);
        const withCaller = await runScript(script, rekeyInterval, sealing(true));
        const workersOnly = await runScript(script, rekeyInterval, sealing(false));
        expect(sha(alone.plain)).toBe(sha(alone.written));
        expect(withCaller.wire.equals(alone.wire)).toBe(true);
        expect(workersOnly.wire.equals(alone.wire)).toBe(true);
        expect(sha(workersOnly.plain)).toBe(sha(alone.written));
      });
    }
  }

  it('rekeys inside a large write exactly where sealing alone does (and the keys really change)', async () => {
    // 20 records with a rekey every 3: jobs are cut at records 3, 6, 9, …
    const script = [20 * RECORD];
    const alone = await runScript(script, 3, undefined);
    const parallel = await runScript(script, 3, sealing(false));
    expect(parallel.wire.equals(alone.wire)).toBe(true);
    // A receiver that rekeys at another interval fails on the first record after the boundary.
    const [ra, rb] = memoryPair();
    const wrong = collect(fixedChannel(rb, 2, 1, 4)).then(
      () => undefined,
      (e: GatesockError) => e.code,
    );
    ra.write(parallel.wire);
    ra.end();
    expect(await wrong).toBe('GS_ERR_DECRYPT_FAILED');
  });
});

describe('parallel sealing: order, backpressure, end and destroy', () => {
  it('keeps small writes behind a pending large one, and ends only after everything is sent', async () => {
    const [ta, tb] = memoryPair();
    const raw = collect(tb);
    const events: string[] = [];
    tb.on('data', () => events.push('data'));
    tb.on('end', () => events.push('end'));
    // A gated worker and no sealing here: every large write is still pending when the next write comes.
    const ch = fixedChannel(ta, 1, 2, 2 ** 20, sealing(false, gatedWorker('order')));
    const parts = [pattern(50, 1), pattern(4 * RECORD, 2), pattern(3, 3), pattern(5 * RECORD + 9, 4), pattern(1000, 5), pattern(RECORD + 1, 6), pattern(7, 7)];
    for (const p of parts) ch.write(p);
    ch.end();
    await new Promise((r) => setTimeout(r, 50));
    // Nothing has gone out: the first 50 bytes were staged, so they went into the first job as a record of their own.
    expect(events).toEqual([]);
    await openGate('order');
    const wire = await raw;
    expect(events.at(-1)).toBe('end');
    const [ra, rb] = memoryPair();
    const plain = collect(fixedChannel(rb, 2, 1, 2 ** 20));
    ra.write(wire);
    ra.end();
    expect(sha(await plain)).toBe(sha(Buffer.concat(parts)));
  });

  it('counts bytes waiting for workers toward write() returning false, and emits drain once they are sent', async () => {
    const [ta, tb] = memoryPair();
    const raw = collect(tb);
    // Count what the channel hands to the underlying stream.
    let handed = 0;
    for (const m of ['write', 'writeOwned'] as const) {
      const f = ta[m]?.bind(ta);
      if (f) ta[m] = (c: Uint8Array) => ((handed += c.length), f(c));
    }
    const ch = fixedChannel(ta, 1, 2, 2 ** 20, sealing(false, gatedWorker('drain')));
    let drains = 0;
    ch.on('drain', () => drains++);
    expect(ch.write(pattern(8 * RECORD, 1))).toBe(true); // 512 KiB queued: under the 1 MiB limit
    expect(ch.write(pattern(9 * RECORD, 2))).toBe(false); // 1.06 MiB queued
    await new Promise((r) => setTimeout(r, 50));
    expect(handed).toBe(0);
    expect(drains).toBe(0);
    const drained = once(ch, 'drain');
    await openGate('drain');
    await drained;
    // By `drain`, the queue is under its limit: at least the first job has been handed on.
    expect(handed).toBeGreaterThanOrEqual(8 * (RECORD + 18));
    expect(ch.write(pattern(10, 3))).toBe(true);
    ch.end();
    const wire = await raw;
    expect(handed).toBe(17 * RECORD + 10 + 18 * 18);
    expect(wire.length).toBe(handed);
  });

  it('drops pending jobs on destroy(): nothing more is sent, close comes once, and the pool works on', async () => {
    const [ta, tb] = memoryPair();
    const raw = collect(tb).catch(() => Buffer.alloc(0));
    const pool = sealing(false, gatedWorker('destroy'));
    const ch = fixedChannel(ta, 1, 2, 2 ** 20, pool);
    const closes: unknown[] = [];
    ch.on('close', (e) => closes.push(e));
    ch.write(pattern(8 * RECORD, 1));
    ch.write(pattern(3, 2));
    ch.end(); // waits for the job …
    ch.destroy(); // … which is dropped
    expect(closes).toEqual([undefined]);
    expect((await raw).length).toBe(0);
    await openGate('destroy'); // the worker now seals the dropped job: nothing may come of it
    await new Promise((r) => setTimeout(r, 100));
    expect(closes).toEqual([undefined]);
    // Buffers of dropped jobs go back wiped and are reused: a new channel is still right.
    const again = await runScript([8 * RECORD, 5], 2 ** 20, pool);
    expect(sha(again.plain)).toBe(sha(again.written));
  });

  it('an idle process exits by itself: the workers are unref()ed', async () => {
    const helpers = new URL('./parallel-seal-helpers.ts', import.meta.url).href;
    const transport = new URL('../../src/transport/index.ts', import.meta.url).href;
    const code = `
      const { memoryPair } = await import(${JSON.stringify(transport)});
      const h = await import(${JSON.stringify(helpers)});
      const [ta, tb] = memoryPair();
      const raw = h.collect(tb);
      const ch = h.fixedChannel(ta, 1, 2, 1 << 20, h.sealing(false));
      ch.write(h.pattern(1 << 20, 1));
      ch.end();
      console.log('sent', (await raw).length);`;
    const register = new URL('../../scripts/ts-register.mjs', import.meta.url).pathname;
    const started = Date.now();
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', register, '--input-type=module', '-e', code], { timeout: 30_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    expect(out.trim()).toBe(`sent ${(1 << 20) + 17 * 18}`); // 16 full records and a tail
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

describe('parallel sealing: worker failures', () => {
  /** A channel over a memory pair with workers from `url`; resolves with its close error. */
  function failing(url: URL, callerSeals: boolean): { ch: SecureChannel; closed: Promise<unknown> } {
    const [ta, tb] = memoryPair();
    collect(tb).catch(() => undefined);
    const ch = fixedChannel(ta, 1, 2, 2 ** 20, sealing(callerSeals, url));
    return { ch, closed: once(ch, 'close').then(([e]) => e) };
  }

  const expectSealFailure = (e: unknown, detail: RegExp) => {
    expect(e).toBeInstanceOf(CryptoError);
    expect((e as CryptoError).code).toBe('GS_ERR_SEAL_WORKER_FAILED');
    expect((e as CryptoError).message).toMatch(/^seal worker failed/);
    expect((e as CryptoError).message).toMatch(detail);
  };

  it('a worker that throws while it holds records closes the channel with a typed error', async () => {
    // Takes the first record of a job, then throws: that record is never sealed.
    const url = dataWorker(`
      const { parentPort } = await import('node:worker_threads');
      parentPort.on('message', ({ buffer }) => { Atomics.add(new Int32Array(buffer, 0, 2), 0, 1); throw new Error('test crash in a seal worker'); });
      parentPort.postMessage({ ready: true });`);
    const { ch, closed } = failing(url, false);
    ch.write(pattern(4 * RECORD, 1));
    expectSealFailure(await closed, /test crash in a seal worker/);
    expect(() => ch.write(pattern(10, 2))).toThrow(TransportError);
  });

  it('a worker that exits while it holds records closes the channel with a typed error', async () => {
    const url = dataWorker(`
      const { parentPort } = await import('node:worker_threads');
      parentPort.on('message', ({ buffer }) => { Atomics.add(new Int32Array(buffer, 0, 2), 0, 1); process.exit(3); });
      parentPort.postMessage({ ready: true });`);
    const { ch, closed } = failing(url, false);
    ch.write(pattern(4 * RECORD, 1));
    expectSealFailure(await closed, /exited \(code 3\)/);
  });

  it('a worker script that cannot load closes the channel, and later channels at their first large write', async () => {
    const url = new URL('file:///nonexistent/gatesock/seal-worker.js');
    const first = failing(url, true);
    // The calling thread seals this job alone and sends it; the channel still hears of the failure.
    first.ch.write(pattern(3 * RECORD, 1));
    expectSealFailure(await first.closed, /./);
    const second = failing(url, true);
    expect(second.ch.write(pattern(3 * RECORD, 1))).toBe(false);
    expectSealFailure(await second.closed, /./);
  });

  it('a pool whose workers are terminated fails the jobs they held', async () => {
    // Takes the first record of a job and hangs on it, as a stuck thread would.
    const url = dataWorker(`
      const { parentPort } = await import('node:worker_threads');
      parentPort.on('message', ({ buffer }) => { Atomics.add(new Int32Array(buffer, 0, 2), 0, 1); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); });
      parentPort.postMessage({ ready: true });`);
    const { ch, closed } = failing(url, false);
    ch.write(pattern(4 * RECORD, 1));
    await new Promise((r) => setTimeout(r, 50));
    expect(ch.closed).toBe(false);
    await SealPool.for(url, 1).terminate();
    expectSealFailure(await closed, /exited/);
  });

  it('a terminated pool starts new workers for the next job', async () => {
    const url = dataWorker(`await import(${JSON.stringify(new URL('../../src/session/secure/seal-worker.ts', import.meta.url).href)});\n// a private pool`);
    const pool = SealPool.for(url, 1);
    const before = await runScript([3 * RECORD], 2 ** 20, { pool, callerSeals: false });
    expect(sha(before.plain)).toBe(sha(before.written));
    expect(pool.runningWorkers).toBe(1);
    await pool.terminate();
    expect(pool.runningWorkers).toBe(0);
    const after = await runScript([3 * RECORD], 2 ** 20, { pool, callerSeals: false });
    expect(sha(after.plain)).toBe(sha(after.written));
    expect(pool.runningWorkers).toBe(1);
  });
});

describe('parallel sealing through the handshake', () => {
  const opts = (name: string, extra: Partial<SecureChannelOptions> = {}): SecureChannelOptions => ({ identity: fakeIdentity(name), verifyPeer: fakeVerifier(), ...extra });
  const parallelSeal = { workerUrl: sealWorkerUrl, threads: 1 };

  async function tcpPair(): Promise<[ByteStream, ByteStream, () => Promise<void>]> {
    let accept!: (s: ByteStream) => void;
    const accepted = new Promise<ByteStream>((resolve) => (accept = resolve));
    const listener = await tcpListen({ host: '127.0.0.1', port: 0 }, accept);
    const ta = await tcpConnect({ host: '127.0.0.1', port: listener.port });
    return [ta, await accepted, () => listener.close()];
  }

  async function pushAll(s: ByteStream, data: Uint8Array, sizes: SeededRandom) {
    for (let off = 0; off < data.length; ) {
      const n = 1 + (sizes.next() % (6 * RECORD));
      const ok = s.write(data.subarray(off, off + n));
      off += n;
      if (!ok) await once(s, 'drain');
    }
    s.end();
  }

  it.each([
    ['noble+parallel', 'native'],
    ['native', 'noble+parallel'],
    ['noble+parallel', 'noble'],
    ['noble', 'noble+parallel'],
    ['noble+parallel', 'noble+parallel'],
  ] as const)('interoperates over TCP, 3 MiB each way (%s ↔ %s, rekey every 5)', async (a, b) => {
    const side = (s: string): Partial<SecureChannelOptions> =>
      s === 'native' ? { backend: 'native' } : s === 'noble' ? { backend: 'noble' } : { backend: 'noble', parallelSeal };
    const [ta, tb, close] = await tcpPair();
    const [client, server] = await Promise.all([
      secureConnect(ta, opts('client', { ...side(a), rekeyInterval: 5 })),
      secureAccept(tb, opts('server', { ...side(b), rekeyInterval: 5 })),
    ]);
    const up = pattern(3 << 20, 1);
    const down = pattern(3 << 20, 2);
    const [gotUp, gotDown] = await Promise.all([collect(server), collect(client), pushAll(client, up, new SeededRandom(1)), pushAll(server, down, new SeededRandom(2))]);
    expect(sha(gotUp)).toBe(sha(up));
    expect(sha(gotDown)).toBe(sha(down));
    client.destroy();
    server.destroy();
    await close();
  });

  it('is ignored with the native backend (no worker starts, even from a script that does not exist)', async () => {
    const workerUrl = new URL('file:///nonexistent/gatesock/native-ignores/seal-worker.js');
    const [ta, tb] = memoryPair();
    const [client, server] = await Promise.all([
      secureConnect(ta, opts('client', { backend: 'native', parallelSeal: { workerUrl } })),
      secureAccept(tb, opts('server', { backend: 'native', parallelSeal: true })),
    ]);
    const data = pattern(1 << 20, 3);
    const got = collect(server);
    client.write(data);
    client.end();
    expect(sha(await got)).toBe(sha(data));
    expect(SealPool.for(workerUrl, 1).runningWorkers).toBe(0);
  });

  it('refuses a malformed parallelSeal option by name', async () => {
    for (const parallelSeal of [{ threads: 0 }, { threads: 1.5 }, { workerUrl: 7 }, { callerSeals: 'yes' }, 'on'] as unknown[]) {
      const [ta] = memoryPair();
      await expect(secureConnect(ta, opts('client', { backend: 'noble', parallelSeal } as Partial<SecureChannelOptions>))).rejects.toMatchObject({
        code: 'GS_ERR_INVALID_OPTION',
        message: expect.stringMatching(/^parallelSeal/),
      });
    }
  });
});
