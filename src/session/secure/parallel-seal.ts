/**
 * Parallel sealing for the pure-TypeScript backend: the records of a large
 * write are sealed by noble on worker threads and on the calling thread at
 * the same time, and sent in order.
 *
 * Why: noble's ChaCha20-Poly1305 seals about 200 MB/s per core here, while a
 * plain loopback TCP pipe moves 600–1,500 MB/s, so a channel that seals every
 * byte on one thread is capped far below the link. The records of a stream
 * are independent once their nonces are fixed (Noise transport message `n`
 * is `ENCRYPT(k, n, ad, plaintext)`, spec §5.1), so they can be sealed
 * anywhere in any order and still give the bytes one thread would.
 *
 * How (secure/channel.ts drives it; parallel-seal-job.ts has the layout):
 *
 * 1. The channel cuts a large write into records exactly as it would alone,
 *    then into jobs of at most {@link JOB_RECORDS} records, never across a
 *    rekey (it rekeys between jobs, where it would between records).
 * 2. {@link SealPool.submit} copies a job's plaintexts into a
 *    `SharedArrayBuffer`, reserves its nonces on the calling thread
 *    (`CipherState.reserve`: the key and the first of `n` consecutive
 *    nonces), and posts the job to every worker of the pool.
 * 3. The calling thread then seals items of the job itself
 *    ({@link SealJob.runHere}); the workers take the others. Whoever takes
 *    an item seals it, once.
 * 4. When every item is sealed the channel copies the records out in wire
 *    layout ({@link SealJob.takeOutput}) and sends them; jobs and smaller
 *    writes leave through one ordered outbox.
 *
 * The pool is shared by every channel of the process that names the same
 * worker script, its workers are `unref()`ed while they hold no job (an
 * idle process exits) and `ref()`ed while they do (bytes are not lost to an
 * early exit). A worker that fails fails the jobs it still held; their
 * channels close with {@link SEAL_WORKER_FAILED}.
 *
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CryptoError, type GatesockError } from '../../errors/index.js';
import { checkOption } from '../../errors/check.js';
import type { NonceRun } from '../noise/cipher-state.js';
import { RECORD_PREFIX_LEN } from './record-reader.js';
import {
  JOB_TAG_LEN,
  jobBufferBytes,
  jobComplete,
  jobCounters,
  jobKey,
  jobSlotsStart,
  publishJob,
  sealJobItems,
  writeJobHeader,
  writeJobNonce,
} from './parallel-seal-job.js';

/**
 * Options of parallel sealing ({@link SecureChannelOptions.parallelSeal}).
 * @public
 */
export interface ParallelSealOptions {
  /**
   * Worker threads of the process-wide pool for this worker script (the
   * calling thread seals too). Default `os.availableParallelism() - 1`, at
   * least 1. The pool is shared: it grows to the largest number any channel
   * asks for, and never shrinks.
   */
  readonly threads?: number;
  /**
   * Where the worker script is; default `seal-worker.js` beside the built
   * module (`dist/session/`). From TypeScript sources (tests, benchmarks)
   * pass a URL that loads `src/session/secure/seal-worker.ts`.
   */
  readonly workerUrl?: URL | string;
  /**
   * Whether the calling thread seals records of each job too. Default true,
   * so that both cores of a two-core machine work; false leaves every record
   * to the workers (tests use it to see the workers do the work).
   */
  readonly callerSeals?: boolean;
}

/** Records per job at most: 8 × 64 KiB, half a megabyte of plaintext. */
export const JOB_RECORDS = 8;

/**
 * The error code a channel closes with when a seal worker fails (it could
 * not start, threw, or exited while it held records). The closing error is
 * a `CryptoError`; its message starts with `seal worker failed`.
 */
export const SEAL_WORKER_FAILED = 'GS_ERR_SEAL_WORKER_FAILED';

/** Free job buffers kept for reuse, at most. */
const FREE_BUFFERS_MAX = 8;
/** New job buffers are at least this big (a full job of full records), so that most can be reused. */
const MIN_BUFFER_BYTES = jobBufferBytes(new Array<number>(JOB_RECORDS).fill(65519));

// Every byte of the output is written before it is sent; skip the zero-fill.
const NodeBuffer = (globalThis as { Buffer?: { allocUnsafe(n: number): Uint8Array } }).Buffer;
const allocUninitialized = (n: number): Uint8Array => (NodeBuffer ? NodeBuffer.allocUnsafe(n) : new Uint8Array(n));

function workerFailure(message: string, cause?: unknown): CryptoError {
  return new CryptoError(SEAL_WORKER_FAILED, `seal worker failed: ${message}`, cause === undefined ? undefined : { cause });
}

/** The default worker script: beside this module, or under `session/` when this code sits in a chunk at `dist/`'s root. */
function defaultWorkerUrl(): URL {
  const here = import.meta.url;
  const candidates = [new URL('./seal-worker.js', here), new URL('./session/seal-worker.js', here)];
  for (const c of candidates) {
    if (c.protocol === 'file:' && existsSync(fileURLToPath(c))) return c;
  }
  return candidates[0]!;
}

/** Default worker threads: one per core beyond the calling thread's, at least one. */
export function defaultSealThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

/**
 * The records of one job, from submission until its buffer goes back to
 * the pool. States: `running` (items being sealed) → `complete` (every item
 * sealed) → `taken` (records copied out); or `failed` / `cancelled`. The
 * buffer is released once the job has left `running`/`complete` and every
 * worker it was posted to has answered (a worker may still be reading the
 * counters until it answers).
 */
export class SealJob {
  /** Records in this job. */
  readonly count: number;
  /** Bytes of the sealed records in wire layout (2-byte prefix, ciphertext, tag each). */
  readonly wireBytes: number;
  #state: 'running' | 'complete' | 'taken' | 'failed' | 'cancelled' = 'running';
  #buffer: SharedArrayBuffer | undefined;
  readonly #counters: Int32Array;
  readonly #slots: readonly number[];
  readonly #lengths: readonly number[];
  /** Workers the job was posted to that have not answered yet. */
  #awaiting = 0;
  readonly #onSettled: (error?: GatesockError) => void;

  /** @internal */
  constructor(
    readonly id: number,
    private readonly pool: SealPool,
    buffer: SharedArrayBuffer,
    slots: readonly number[],
    lengths: readonly number[],
    onSettled: (error?: GatesockError) => void,
  ) {
    this.#buffer = buffer;
    this.#counters = jobCounters(buffer);
    this.#slots = slots;
    this.#lengths = lengths;
    this.count = lengths.length;
    this.wireBytes = lengths.reduce((sum, len) => sum + RECORD_PREFIX_LEN + len + JOB_TAG_LEN, 0);
    this.#onSettled = onSettled;
  }

  /** True once every record is sealed (read live from the job's counters), unless the job failed or was cancelled. */
  get complete(): boolean {
    if (this.#state === 'running' && jobComplete(this.#counters, this.count)) this.#state = 'complete';
    return this.#state === 'complete';
  }

  /** True when the job failed; its channel is told through `onSettled`. */
  get failed(): boolean {
    return this.#state === 'failed';
  }

  /** Seal items of this job on the calling thread until none is left to take. */
  runHere(): void {
    if (this.#state === 'running') sealJobItems(this.#buffer!);
  }

  /** The sealed records in wire layout, in a fresh buffer; only once, only when {@link SealJob.complete}. */
  takeOutput(): Uint8Array {
    if (!this.complete) throw new Error('SealJob.takeOutput before the job is complete');
    const src = new Uint8Array(this.#buffer!);
    const out = allocUninitialized(this.wireBytes);
    let pos = 0;
    for (let i = 0; i < this.count; i++) {
      const len = this.#lengths[i]! + JOB_TAG_LEN;
      out[pos] = len >> 8;
      out[pos + 1] = len & 0xff;
      out.set(src.subarray(this.#slots[i]!, this.#slots[i]! + len), pos + RECORD_PREFIX_LEN);
      pos += RECORD_PREFIX_LEN + len;
    }
    this.#state = 'taken';
    this.#maybeRelease();
    return out;
  }

  /** Drop the job: nothing will be sent, and its buffer goes back once the workers are done with it. */
  cancel(): void {
    if (this.#state === 'taken' || this.#state === 'failed') return;
    this.#state = 'cancelled';
    this.#maybeRelease();
  }

  /** @internal Posted to one more worker. */
  posted(): void {
    this.#awaiting++;
  }

  /** @internal A worker answered (it found nothing more to take), with an error if sealing threw. */
  answered(error?: string): void {
    this.#awaiting--;
    if (error !== undefined) this.#fail(workerFailure(error));
    else if (this.#state === 'running' && this.complete) this.#onSettled();
    this.#maybeRelease();
  }

  /**
   * @internal A worker it was posted to died before answering. Records it
   * took may never be sealed, so an unfinished job fails; so does a
   * finished one when the worker never started (a wrong `workerUrl`): the
   * channel must hear of it rather than run on with half its threads.
   */
  workerLost(error: GatesockError, started: boolean): void {
    this.#awaiting--;
    if (!started || (this.#state === 'running' && !this.complete)) this.#fail(error);
    this.#maybeRelease();
  }

  #fail(error: GatesockError): void {
    if (this.#state === 'failed' || this.#state === 'cancelled') return;
    this.#state = 'failed';
    this.#onSettled(error);
  }

  #maybeRelease(): void {
    if (this.#awaiting > 0 || !this.#buffer || this.#state === 'running' || this.#state === 'complete') return;
    const buffer = this.#buffer;
    this.#buffer = undefined;
    // The key always; the slots too unless they were all sealed (a cancelled
    // or failed job may hold plaintext).
    jobKey(buffer).fill(0);
    if (this.#state !== 'taken') new Uint8Array(buffer, jobSlotsStart(this.count)).fill(0);
    this.pool.releaseBuffer(buffer);
  }
}

/** One worker of a pool and the jobs posted to it that it has not answered. */
class SealWorker {
  readonly worker: Worker;
  readonly unanswered = new Map<number, SealJob>();
  started = false;
  dead = false;

  constructor(
    url: URL | string,
    onMessage: (w: SealWorker, m: { ready?: true; id?: number; error?: string }) => void,
    onDeath: (w: SealWorker, e: GatesockError, threw: boolean) => void,
  ) {
    this.worker = new Worker(url);
    // Idle workers never keep the process alive; post() refs while jobs are held.
    this.worker.unref();
    this.worker.on('message', (m: { ready?: true; id?: number; error?: string }) => onMessage(this, m));
    this.worker.on('error', (e) => onDeath(this, workerFailure(e instanceof Error ? e.message : String(e), e), true));
    this.worker.on('exit', (code) => onDeath(this, workerFailure(`worker exited (code ${code})`), false));
  }

  post(job: SealJob, buffer: SharedArrayBuffer): void {
    if (this.unanswered.size === 0) this.worker.ref();
    this.unanswered.set(job.id, job);
    job.posted();
    this.worker.postMessage({ id: job.id, buffer });
  }

  answered(id: number): SealJob | undefined {
    const job = this.unanswered.get(id);
    this.unanswered.delete(id);
    if (this.unanswered.size === 0) this.worker.unref();
    return job;
  }
}

const pools = new Map<string, SealPool>();

/**
 * The seal workers of one worker script, shared by every channel of the
 * process that uses it, and the job buffers they work in.
 */
export class SealPool {
  #threads: number;
  #workers: SealWorker[] = [];
  /** Set when a worker could not start: the script is wrong, later jobs fail at once. */
  #broken: GatesockError | undefined;
  #nextId = 0;
  readonly #free: SharedArrayBuffer[] = [];

  private constructor(
    readonly url: URL | string,
    threads: number,
  ) {
    this.#threads = threads;
  }

  /**
   * The pool of `workerUrl` (default: the built worker beside this module),
   * grown to at least `threads` workers.
   */
  static for(workerUrl: URL | string | undefined, threads: number = defaultSealThreads()): SealPool {
    const url = workerUrl ?? defaultWorkerUrl();
    const key = String(url);
    let pool = pools.get(key);
    if (!pool) pools.set(key, (pool = new SealPool(url, threads)));
    pool.#threads = Math.max(pool.#threads, threads);
    return pool;
  }

  /** Worker threads this pool runs (once started). */
  get threads(): number {
    return this.#threads;
  }

  /** Workers running now. */
  get runningWorkers(): number {
    return this.#workers.length;
  }

  /**
   * Start a job sealing `pieces` (each one record's plaintext, copied before
   * this returns) under the nonces `reserve` hands out: `reserve(n, keyOut)`
   * is `CipherState.reserve`. `onSettled` is called, from a later event,
   * when the job becomes complete or fails (`error` set). Throws the pool's
   * error when its workers cannot start, and whatever `reserve` throws
   * (nothing is posted then).
   */
  submit(pieces: readonly Uint8Array[], reserve: (count: number, keyOut: Uint8Array) => NonceRun, onSettled: (error?: GatesockError) => void): SealJob {
    if (this.#broken) throw this.#broken;
    this.#spawn();
    const lengths = pieces.map((p) => p.length);
    const buffer = this.#acquireBuffer(jobBufferBytes(lengths));
    const slots = writeJobHeader(buffer, lengths);
    const bytes = new Uint8Array(buffer);
    for (let i = 0; i < pieces.length; i++) bytes.set(pieces[i]!, slots[i]!);
    let run: NonceRun;
    try {
      run = reserve(pieces.length, jobKey(buffer));
    } catch (err) {
      new Uint8Array(buffer, slots[0]!).fill(0);
      this.releaseBuffer(buffer);
      throw err;
    }
    writeJobNonce(buffer, run.lo, run.hi);
    publishJob(buffer);
    const job = new SealJob(this.#nextId++, this, buffer, slots, lengths, onSettled);
    for (const w of this.#workers) w.post(job, buffer);
    return job;
  }

  /**
   * End every worker (tests; a process never needs to: idle workers do not
   * keep it alive). Jobs they held fail. Later jobs start new workers.
   */
  async terminate(): Promise<void> {
    const workers = this.#workers;
    this.#workers = [];
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  /** @internal A job is done with its buffer. */
  releaseBuffer(buffer: SharedArrayBuffer): void {
    if (this.#free.length < FREE_BUFFERS_MAX && buffer.byteLength <= MIN_BUFFER_BYTES * 4) this.#free.push(buffer);
  }

  #acquireBuffer(bytes: number): SharedArrayBuffer {
    const i = this.#free.findIndex((b) => b.byteLength >= bytes);
    if (i >= 0) return this.#free.splice(i, 1)[0]!;
    return new SharedArrayBuffer(Math.max(bytes, MIN_BUFFER_BYTES));
  }

  #spawn(): void {
    while (this.#workers.length < this.#threads) {
      this.#workers.push(new SealWorker(this.url, this.#onMessage, this.#onDeath));
    }
  }

  readonly #onMessage = (w: SealWorker, m: { ready?: true; id?: number; error?: string }): void => {
    if (m.ready) {
      w.started = true;
      return;
    }
    w.answered(m.id!)?.answered(m.error);
  };

  readonly #onDeath = (w: SealWorker, error: GatesockError, threw: boolean): void => {
    if (w.dead) return;
    w.dead = true;
    this.#workers = this.#workers.filter((x) => x !== w);
    // A script that threw before it was listening (a wrong workerUrl, a
    // missing dependency) will not start next time either.
    if (threw && !w.started) this.#broken ??= error;
    const jobs = [...w.unanswered.values()];
    w.unanswered.clear();
    w.worker.unref();
    for (const job of jobs) job.workerLost(error, w.started);
  };
}

/** What a channel that seals in parallel holds: its pool, and whether it seals too. */
export interface ParallelSealing {
  readonly pool: SealPool;
  readonly callerSeals: boolean;
}

/**
 * Check the `parallelSeal` option and resolve it to a pool: undefined when
 * off, or when the backend is not noble (the option is then checked, and
 * ignored). The pool's workers start with the channel's first large write.
 */
export function resolveParallelSeal(option: boolean | ParallelSealOptions | undefined, backend: 'noble' | 'native'): ParallelSealing | undefined {
  if (option === undefined || option === false) return undefined;
  checkOption(option === true || (typeof option === 'object' && option !== null), 'parallelSeal', 'must be a boolean or an object');
  const o: ParallelSealOptions = option === true ? {} : option;
  checkOption(o.threads === undefined || (Number.isInteger(o.threads) && o.threads >= 1 && o.threads <= 256), 'parallelSeal.threads', 'must be an integer in [1, 256]');
  checkOption(o.workerUrl === undefined || typeof o.workerUrl === 'string' || o.workerUrl instanceof URL, 'parallelSeal.workerUrl', 'must be a URL or a string');
  checkOption(o.callerSeals === undefined || typeof o.callerSeals === 'boolean', 'parallelSeal.callerSeals', 'must be a boolean');
  if (backend !== 'noble') return undefined;
  return { pool: SealPool.for(o.workerUrl, o.threads ?? defaultSealThreads()), callerSeals: o.callerSeals ?? true };
}
