/**
 * GF(2^8) Reed–Solomon on worker threads: the same code as
 * {@link ReedSolomon} (same generator, same kernel, byte-identical output),
 * with each job's byte range cut into slices that worker threads and the
 * calling thread compute at the same time.
 *
 * ## How a job runs
 *
 * A job below `minShardLength` bytes per shard (default 64 KiB) runs in the
 * calling thread on a plain {@link ReedSolomon}: posting it would cost more
 * than computing it. A larger job is checked in the calling thread (the
 * same {@link FecError}s as {@link ReedSolomon}, thrown before anything is
 * dispatched, as a rejected promise), then its shard byte range is cut into
 * chunks (about four per thread, at least 8 KiB) that the workers and the
 * calling thread take one at a time from a shared atomic counter until none
 * is left. Every chunk is the whole `outputs[r] = Σ_t rows[r][t] · inputs[t]`
 * product over its bytes, so chunks are independent; the calling thread,
 * which starts first, simply takes more of them, and a worker that wakes
 * late finds nothing left. The job settles when the chunk count says every
 * chunk is done (`Atomics.waitAsync`), not when each worker has answered.
 *
 * The first large job waits for the workers to start (tens of ms), and
 * rejects if one cannot (a wrong `workerUrl`). Do not modify the shards of a
 * job until its promise settles.
 *
 * ## Memory
 *
 * Workers see memory only through `SharedArrayBuffer`s. Shards that already
 * live in one (a `Uint8Array` over a `SharedArrayBuffer`) are handed over as
 * they are: zero copy, and the zero-copy path for callers that care (pass
 * SAB-backed data and, to `encode`, SAB-backed parity). Ordinary arrays are
 * copied once into a pooled `SharedArrayBuffer` (kept for the next job);
 * the chunks the workers compute into it are copied once into the caller's
 * ordinary output arrays, while the calling thread computes its own chunks
 * straight from and into the caller's arrays. What the caller gets back is
 * the same kind of array `ReedSolomon` returns.
 *
 * ## Threads
 *
 * `threads` workers (default `os.availableParallelism() - 1`, at least 1)
 * start on the first large job. They are `unref()`ed while idle, so an idle
 * pool never keeps the process alive, and `ref()`ed while they hold a job,
 * so a pending `await` is not cut short by the process exiting.
 * {@link ParallelReedSolomon.close} ends them; a job they were working on
 * rejects (never resolves with partial bytes), and later calls still give
 * the right answer, computed in the calling thread alone.
 *
 * The worker script is `parallel-worker.js` beside the built module
 * (`dist/fec/`). From source (tests, benchmarks), pass `workerUrl` pointing
 * at the built one.
 *
 * FEC proves nothing about authenticity: authenticate shards before decoding.
 *
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FecError } from '../errors/index.js';
import { mul, mulAdd } from './gf256-kernel.js';
import { multiplyMatrices, type Gf256Matrix } from './matrix.js';
import { ReedSolomon, checkRs8Params, rs8ParityMatrix } from './reed-solomon.js';
import {
  DecodeMatrixCache,
  checkDataShards,
  checkDecodeCacheSize,
  checkParityOutputs,
  checkReconstructShards,
} from './rs8-support.js';

/**
 * Options of {@link ParallelReedSolomon}.
 * @public
 */
export interface ParallelReedSolomonOptions {
  /** Worker threads (the calling thread computes a slice too). Default `os.availableParallelism() - 1`, at least 1. */
  readonly threads?: number;
  /** Shards shorter than this many bytes are coded in the calling thread alone. Default 65,536. */
  readonly minShardLength?: number;
  /** Decode matrices to keep (as {@link ReedSolomonOptions.decodeCacheSize}). Default 32. */
  readonly decodeCacheSize?: number;
  /** Where the worker script is; default `parallel-worker.js` beside this module in `dist/`. */
  readonly workerUrl?: URL | string;
}

/** Bytes per cache slice inside one thread's range (as in reed-solomon.ts). */
const SLICE = 32 * 1024;
/** Thread ranges start on multiples of this, so words stay aligned alike in every range. */
const ALIGN = 64;
/** Smallest chunk a thread takes at a time. */
const MIN_CHUNK = 8 * 1024;
/** Pooled buffers kept for reuse. */
const POOL_MAX = 4;

/**
 * `outputs[r] = Σ_t rows[r][t] · inputs[t]` over bytes `[start, end)`,
 * output-major within 32 KiB slices: the loop of {@link ReedSolomon},
 * restricted to a range. What every thread runs on its slice.
 * @internal
 */
export function combineRange(
  rows: readonly Uint8Array[],
  inputs: readonly Uint8Array[],
  outputs: readonly Uint8Array[],
  start: number,
  end: number,
): void {
  const n = inputs.length;
  for (let s = start; s < end; s += SLICE) {
    const e = Math.min(end, s + SLICE);
    for (let r = 0; r < outputs.length; r++) {
      const row = rows[r]!;
      const out = outputs[r]!;
      mul(row[0]!, inputs[0]!, out, s, e);
      for (let t = 1; t < n; t++) mulAdd(row[t]!, inputs[t]!, out, s, e);
    }
  }
}

/**
 * One job as posted to a worker: every array over a `SharedArrayBuffer`
 * except `rows` (small, copied). The byte range `[0, len)` is cut into
 * `chunks` chunks of `chunk` bytes; every thread of the job (the caller
 * and each worker) takes the next chunk from `counter[0]` until none is
 * left, and counts the chunks it finished in `counter[1]` (notified when
 * the last one is done). A thread that starts late finds no chunk left and
 * touches nothing.
 * @internal
 */
export interface SliceJob {
  readonly id: number;
  readonly rows: readonly Uint8Array[];
  readonly inputs: readonly Uint8Array[];
  readonly outputs: readonly Uint8Array[];
  readonly len: number;
  readonly chunk: number;
  readonly chunks: number;
  readonly counter: Int32Array;
}

/**
 * Take and compute chunks of `job` until none is left (what every thread of
 * a job runs); pushes the chunk numbers it took to `taken` when given.
 * @internal
 */
export function runChunks(job: Omit<SliceJob, 'id'>, taken?: number[]): void {
  const { rows, inputs, outputs, len, chunk, chunks, counter } = job;
  for (let c = Atomics.add(counter, 0, 1); c < chunks; c = Atomics.add(counter, 0, 1)) {
    combineRange(rows, inputs, outputs, c * chunk, Math.min(len, (c + 1) * chunk));
    taken?.push(c);
    if (Atomics.add(counter, 1, 1) + 1 === chunks) Atomics.notify(counter, 1);
  }
}

/** A worker's answer: the job id, and an error message if it failed. */
interface SliceDone {
  readonly id: number;
  readonly error?: string;
}

/** `Atomics.waitAsync` (Node ≥ 16; typed in lib ES2024, not our ES2022). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, i: number, v: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;



function isShared(a: Uint8Array): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer;
}

/** The default worker script: beside this module, or under `fec/` when this code sits in a chunk at `dist/`'s root. */
function defaultWorkerUrl(): URL {
  const here = import.meta.url;
  const candidates = [new URL('./parallel-worker.js', here), new URL('./fec/parallel-worker.js', here)];
  for (const c of candidates) {
    if (c.protocol === 'file:' && existsSync(fileURLToPath(c))) return c;
  }
  return candidates[0]!;
}

/** How long a worker may take to load its script. */
const START_TIMEOUT_MS = 30_000;

/**
 * One worker and the jobs it was given. It keeps the process alive
 * (`ref()`) only while it starts or a job that uses it is unsettled.
 */
class PoolWorker {
  readonly worker: Worker;
  readonly #pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  #dead: Error | null = null;
  #holds = 1; // starting
  /** Settles when the worker script has loaded and listens (its `ready` message), or failed to. */
  readonly ready: Promise<void>;

  constructor(url: URL | string, onDeath: (w: PoolWorker) => void) {
    this.worker = new Worker(url);
    let started: () => void = () => {};
    let failed: (e: Error) => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => ((started = resolve), (failed = reject)));
    this.ready.catch(() => {});
    const die = (e: Error) => {
      if (this.#dead) return;
      this.#dead = e;
      clearTimeout(timer);
      onDeath(this);
      failed(e);
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
    };
    const timer = setTimeout(() => {
      die(new Error(`fec worker ${String(url)} did not start within ${START_TIMEOUT_MS} ms`));
      void this.worker.terminate();
    }, START_TIMEOUT_MS);
    timer.unref();
    this.worker.on('message', (m: SliceDone | { ready: true }) => {
      if ('ready' in m) {
        clearTimeout(timer);
        this.release();
        started();
        return;
      }
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(`fec worker: ${m.error}`));
      else p.resolve();
    });
    this.worker.on('error', (e) => die(e instanceof Error ? e : new Error(String(e))));
    this.worker.on('exit', (code) => die(new Error(`fec worker exited (code ${code})`)));
  }

  /** Keep the process alive until the matching {@link PoolWorker.release}. */
  hold(): void {
    if (this.#holds++ === 0) this.worker.ref();
  }

  release(): void {
    if (--this.#holds === 0) this.worker.unref();
  }

  /** Post `job`; settles when the worker has answered (or rejects when it dies). */
  run(job: SliceJob): Promise<void> {
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise((resolve, reject) => {
      this.#pending.set(job.id, { resolve, reject });
      this.worker.postMessage(job);
    });
  }
}

/**
 * Systematic, MDS Reed–Solomon over GF(2^8) with `k` data and `m` parity
 * shards, coding large blocks on worker threads; byte-identical to
 * {@link ReedSolomon}, with the same checks and errors, and async. See the
 * module notes for how jobs are split, what is copied and when the calling
 * thread works alone.
 *
 * @example
 * ```ts
 * const rs = new ParallelReedSolomon(10, 4);
 * const parity = await rs.encode(data);       // 10 shards of 1 MiB
 * await rs.reconstruct([...data, ...parity].map((s, i) => (i < 4 ? null : s)));
 * await rs.close();
 * ```
 * @public
 */
export class ParallelReedSolomon {
  /** `k`: data shards per block. */
  readonly dataShards: number;
  /** `m`: parity shards per block. */
  readonly parityShards: number;
  /** `k + m`. */
  readonly totalShards: number;
  /** Worker threads used for large jobs. */
  readonly threads: number;
  /** Shorter shards are coded in the calling thread alone. */
  readonly minShardLength: number;
  readonly #single: ReedSolomon;
  readonly #parity: Gf256Matrix;
  readonly #decoder: DecodeMatrixCache;
  readonly #workerUrl: URL | string | undefined;
  #workers: PoolWorker[] = [];
  #closed = false;
  #nextId = 0;
  readonly #pool: SharedArrayBuffer[] = [];

  /**
   * Throws {@link FecError} `GS_ERR_FEC_INVALID_PARAMS` for bad `k`, `m`
   * (as {@link ReedSolomon}) or a bad option.
   */
  constructor(dataShards: number, parityShards: number, options: ParallelReedSolomonOptions = {}) {
    checkRs8Params(dataShards, parityShards);
    const bad = (name: string, v: unknown, want: string) =>
      new FecError('GS_ERR_FEC_INVALID_PARAMS', `ParallelReedSolomon: ${name} must be ${want}, got ${String(v)}`);
    const threads = options.threads ?? Math.max(1, availableParallelism() - 1);
    if (!Number.isSafeInteger(threads) || threads < 1 || threads > 256) throw bad('threads', threads, 'an integer in 1…256');
    const minLen = options.minShardLength ?? 64 * 1024;
    if (!Number.isSafeInteger(minLen) || minLen < 0) throw bad('minShardLength', minLen, 'an integer ≥ 0');
    const cacheSize = checkDecodeCacheSize(options.decodeCacheSize);
    this.dataShards = dataShards;
    this.parityShards = parityShards;
    this.totalShards = dataShards + parityShards;
    this.threads = threads;
    this.minShardLength = minLen;
    this.#single = new ReedSolomon(dataShards, parityShards, { decodeCacheSize: cacheSize });
    this.#parity = rs8ParityMatrix(dataShards, parityShards);
    this.#decoder = new DecodeMatrixCache(this.#parity, dataShards, cacheSize);
    this.#workerUrl = options.workerUrl;
  }

  /** How many worker threads are running now (0 before the first large job and after {@link ParallelReedSolomon.close}). */
  get runningWorkers(): number {
    return this.#workers.length;
  }

  /**
   * Compute the `m` parity shards of `data` (`k` shards of one length ≥ 1),
   * as {@link ReedSolomon.encode}: into `parity` when given (`m` arrays of
   * that length, not overlapping the data or each other), else into fresh
   * arrays. Rejects with the same errors, before any work starts.
   */
  async encode(data: readonly Uint8Array[], parity?: Uint8Array[]): Promise<Uint8Array[]> {
    const len = checkDataShards('encode', data, this.dataShards);
    if (parity) checkParityOutputs(parity, this.parityShards, data, len);
    if (!this.#parallel(len)) return this.#single.encode(data, parity);
    const out = parity ?? Array.from({ length: this.parityShards }, () => new Uint8Array(len));
    await this.#combine(this.#parity, data, out, len);
    return out;
  }

  /**
   * Fill the missing entries of `shards` (length `k + m`, missing =
   * `undefined`/`null`) in place with fresh arrays, as
   * {@link ReedSolomon.reconstruct} (same choice of shards, same errors,
   * identical bytes); with `dataOnly`, only the data shards. Resolves to
   * `shards`.
   */
  async reconstruct(shards: (Uint8Array | null | undefined)[], options: { dataOnly?: boolean } = {}): Promise<Uint8Array[]> {
    const k = this.dataShards;
    const { len, chosen } = checkReconstructShards(shards, k, this.totalShards);
    if (!this.#parallel(len)) return this.#single.reconstruct(shards, options);
    // Every missing shard as one combination of the k chosen shards: a data
    // shard by its row of the inverse, a parity shard by P_i · inverse (or P_i
    // itself when the chosen shards are the data shards). Exact arithmetic,
    // so the bytes are those of ReedSolomon's two passes.
    const missingData: number[] = [];
    for (let j = 0; j < k; j++) if (shards[j] == null) missingData.push(j);
    const missingParity: number[] = [];
    if (!options.dataOnly) for (let i = 0; i < this.parityShards; i++) if (shards[k + i] == null) missingParity.push(i);
    if (missingData.length + missingParity.length === 0) return shards as Uint8Array[];
    const rows: Uint8Array[] = [];
    if (missingData.length === 0) {
      for (const i of missingParity) rows.push(this.#parity[i]!);
    } else {
      const inverse = this.#decoder.inverse(chosen);
      for (const j of missingData) rows.push(inverse[j]!);
      if (missingParity.length > 0) rows.push(...multiplyMatrices(missingParity.map((i) => this.#parity[i]!), inverse));
    }
    const outs = rows.map(() => new Uint8Array(len));
    await this.#combine(rows, chosen.map((i) => shards[i]!), outs, len);
    let r = 0;
    for (const j of missingData) shards[j] = outs[r++]!;
    for (const i of missingParity) shards[k + i] = outs[r++]!;
    return shards as Uint8Array[];
  }

  /** As {@link ReedSolomon.verify}, in the calling thread. */
  verify(shards: readonly Uint8Array[]): boolean {
    return this.#single.verify(shards);
  }

  /** As {@link ReedSolomon.encodeIndex}, in the calling thread (one output: little to share). */
  encodeIndex(data: readonly Uint8Array[], parityIndex: number, out?: Uint8Array): Uint8Array {
    return this.#single.encodeIndex(data, parityIndex, out);
  }

  /**
   * End the worker threads; jobs still running on them reject. Later calls
   * still work, in the calling thread alone. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const workers = this.#workers;
    this.#workers = [];
    this.#pool.length = 0;
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  /** Alias of {@link ParallelReedSolomon.close}. */
  destroy(): Promise<void> {
    return this.close();
  }

  #parallel(len: number): boolean {
    return !this.#closed && len >= this.minShardLength && len >= 2 * ALIGN;
  }

  /** The workers, started if need be and running (rejects when one fails to start). */
  async #ensureWorkers(): Promise<PoolWorker[]> {
    if (this.#workers.length < this.threads) {
      const url = this.#workerUrl ?? defaultWorkerUrl();
      while (this.#workers.length < this.threads) {
        this.#workers.push(
          new PoolWorker(url, (dead) => {
            this.#workers = this.#workers.filter((w) => w !== dead);
          }),
        );
      }
    }
    const workers = this.#workers.slice();
    await Promise.all(workers.map((w) => w.ready));
    return workers;
  }

  /** outputs = rows · inputs over `len` bytes, in chunks shared by the workers and this thread. */
  async #combine(rows: readonly Uint8Array[], inputs: readonly Uint8Array[], outputs: readonly Uint8Array[], len: number): Promise<void> {
    const workers = await this.#ensureWorkers();
    // Shared views of everything: as given when already shared, else in one pooled buffer.
    const stride = (len + 7) & ~7;
    const copiedIn = inputs.filter((a) => !isShared(a)).length;
    const copiedOut = outputs.filter((a) => !isShared(a)).length;
    const need = (copiedIn + copiedOut) * stride;
    let sab = need > 0 ? this.#acquire(need) : null;
    let at = 0;
    const view = () => new Uint8Array(sab!, (at += stride) - stride, len);
    const sIn = inputs.map((a) => {
      if (isShared(a)) return a;
      const v = view();
      v.set(a);
      return v;
    });
    const sOut = outputs.map((a) => (isShared(a) ? a : view()));
    const parts = workers.length + 1;
    // About four chunks per thread, so that a thread that starts late or runs
    // slow leaves its share to the others; at least 8 KiB (per-chunk calls).
    const chunk = Math.max(MIN_CHUNK, Math.ceil(len / (parts * 4) / ALIGN) * ALIGN);
    const chunks = Math.ceil(len / chunk);
    const counter = new Int32Array(new SharedArrayBuffer(8));
    const job = { rows, inputs: sIn, outputs: sOut, len, chunk, chunks, counter };
    const used = workers.slice(0, chunks - 1);
    // Held until this job settles: a pending Atomics.waitAsync alone does not keep the process alive.
    used.forEach((w) => w.hold());
    const jobs = used.map((w) => w.run({ id: this.#nextId++, ...job }));
    // A worker's failure rejects the job; until then its own answer is not awaited (the chunk count is).
    const failure = new Promise<never>((_, reject) => jobs.forEach((j) => j.catch(reject)));
    failure.catch(() => {});
    // This thread works on the caller's own arrays (the same bytes as the
    // shared copies), so only the chunks the workers took are copied out.
    const mine: number[] = [];
    try {
      runChunks({ ...job, inputs, outputs }, mine);
      for (let done = Atomics.load(counter, 1); done < chunks; done = Atomics.load(counter, 1)) {
        const w = waitAsync(counter, 1, done);
        if (w.async) await Promise.race([w.value, failure]);
      }
      const copyOut = outputs.map((o, r) => (o === sOut[r] ? -1 : r)).filter((r) => r >= 0);
      if (copyOut.length > 0) {
        const ours = new Uint8Array(chunks);
        for (const c of mine) ours[c] = 1;
        for (let c = 0; c < chunks; c++) {
          if (ours[c]) continue;
          const start = c * chunk;
          const end = Math.min(len, start + chunk);
          for (const r of copyOut) outputs[r]!.set(sOut[r]!.subarray(start, end), start);
        }
      }
    } catch (e) {
      // A worker may still be writing into the pooled buffer: never reuse it.
      sab = null;
      throw e;
    } finally {
      used.forEach((w) => w.release());
      if (sab) this.#release(sab);
    }
  }

  #acquire(bytes: number): SharedArrayBuffer {
    const i = this.#pool.findIndex((b) => b.byteLength >= bytes);
    if (i >= 0) return this.#pool.splice(i, 1)[0]!;
    return new SharedArrayBuffer(bytes);
  }

  #release(sab: SharedArrayBuffer): void {
    if (this.#closed) return;
    this.#pool.push(sab);
    if (this.#pool.length > POOL_MAX) {
      // Drop the smallest: the big ones serve any job.
      this.#pool.sort((a, b) => b.byteLength - a.byteLength).length = POOL_MAX;
    }
  }



}

/**
 * A {@link ParallelReedSolomon} with `k` data and `m` parity shards: the
 * factory form of `new ParallelReedSolomon(k, m, options)`.
 * @public
 */
export function createParallelReedSolomon(dataShards: number, parityShards: number, options?: ParallelReedSolomonOptions): ParallelReedSolomon {
  return new ParallelReedSolomon(dataShards, parityShards, options);
}
