/**
 * GF(2^8) Reed–Solomon on worker threads: the same code as
 * {@link ReedSolomon} (same generator, same kernel, byte-identical output),
 * with the work of a call cut into pieces that worker threads and the
 * calling thread compute at the same time.
 *
 * ## Two ways to use the threads
 *
 * - **One large block** (`encode`, `reconstruct`): its shard byte range is
 *   cut into chunks (about four per thread, at least 8 KiB). Below
 *   `minShardLength` bytes per shard (default 64 KiB) the block runs in the
 *   calling thread on a plain {@link ReedSolomon}: posting it would cost
 *   more than computing it.
 * - **Many independent blocks** (`encodeBlocks`, `reconstructBlocks`): the
 *   blocks are spread across the threads whole (a block is cut only when its
 *   shards are large enough to be cut, as above). This is the way to use
 *   the threads for small shards, RS(64,8) with 1,400-byte packets, where
 *   one block is far too little work to share. A batch whose shard lengths
 *   add up to less than `minShardLength` runs in the calling thread.
 *
 * Either way, the arguments are checked in the calling thread first (the
 * same {@link FecError}s as {@link ReedSolomon}, thrown before anything is
 * dispatched, as a rejected promise). Then every thread (the calling thread
 * and each worker) takes the next piece from a shared atomic counter until
 * none is left. Every piece is the whole
 * `outputs[r] = Σ_t rows[r][t] · inputs[t]` product over its bytes, so pieces
 * are independent; the calling thread, which starts first, simply takes more
 * of them, and a worker that wakes late finds nothing left. The call settles
 * when the piece count says every piece is done (`Atomics.waitAsync`), not
 * when each worker has answered.
 *
 * The first parallel call waits for the workers to start (tens of ms), and
 * rejects if one cannot (a wrong `workerUrl`). Do not modify the shards of a
 * call until its promise settles.
 *
 * ## Memory
 *
 * Workers see memory only through `SharedArrayBuffer`s. Shards that already
 * live in one (a `Uint8Array` over a `SharedArrayBuffer`) are handed over as
 * they are: zero copy. That is the path for callers that care: pass
 * SAB-backed data and SAB-backed outputs (`encode`'s `parity`,
 * `reconstruct`'s `into`), and for a batch of small shards put them in one
 * buffer (or a few): posting a buffer to a thread costs about 1 µs, the time
 * to copy some 10 KB, so a buffer holding less than 16 KiB of a call's
 * shards is treated as ordinary memory. Ordinary arrays are copied once
 * into a pooled `SharedArrayBuffer` (kept for the next call); the pieces the
 * workers compute into it are copied once into the caller's ordinary output
 * arrays, while the calling thread computes its own pieces straight from and
 * into the caller's arrays. What the caller gets back is the same kind of array
 * `ReedSolomon` returns (fresh outputs are ordinary arrays).
 *
 * A job is posted to a worker as a table of (buffer, offset) numbers, not as
 * array views: cloning views costs about 0.1 µs each, 0.6 ms for a batch of
 * 64 blocks × 72 shards, the time of one block's work.
 *
 * ## Threads
 *
 * `threads` workers (default `os.availableParallelism() - 1`, at least 1)
 * start on the first parallel call. They are `unref()`ed while idle, so an
 * idle pool never keeps the process alive, and `ref()`ed while they hold a
 * job, so a pending `await` is not cut short by the process exiting.
 * {@link ParallelReedSolomon.close} ends them; a call they were working on
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
import { combineRows } from './gf256-kernel.js';
import { multiplyMatrices, type Gf256Matrix } from './matrix.js';
import { ReedSolomon, checkRs8Params, rs8ParityMatrix, type ReconstructOptions } from './reed-solomon.js';
import {
  DecodeMatrixCache,
  checkCount,
  checkDataShards,
  checkDecodeCacheSize,
  checkParityOutputs,
  checkReconstructShards,
  findBatchOverlap,
  reconstructOutputs,
} from './rs8-support.js';

/**
 * Options of {@link ParallelReedSolomon}.
 * @public
 */
export interface ParallelReedSolomonOptions {
  /** Worker threads (the calling thread computes a share too). Default `os.availableParallelism() - 1`, at least 1. */
  readonly threads?: number;
  /**
   * A block whose shards are shorter than this many bytes, or a batch whose
   * blocks' shard lengths add up to less, is coded in the calling thread
   * alone. Default 65,536.
   */
  readonly minShardLength?: number;
  /** Decode matrices to keep (as {@link ReedSolomonOptions.decodeCacheSize}). Default 32. */
  readonly decodeCacheSize?: number;
  /** Where the worker script is; default `parallel-worker.js` beside this module in `dist/`. */
  readonly workerUrl?: URL | string;
}

/** Chunks of a block start on multiples of this, so words stay aligned alike in every chunk. */
const ALIGN = 64;
/** Smallest chunk of one block a thread takes at a time. */
const MIN_CHUNK = 8 * 1024;
/** Pooled buffers kept for reuse. */
const POOL_MAX = 4;
/**
 * A caller's SharedArrayBuffer is posted to the workers as it is only when
 * it holds at least this many bytes of the call's shards; the shards of
 * smaller ones are copied like ordinary arrays. Posting a buffer costs about
 * 1 µs on each side (measured: 4,608 buffers, 4.4 ms a round trip; one
 * buffer, 18 µs), the time to copy some 10 KB.
 */
const DIRECT_MIN = 16 * 1024;

/**
 * One job as posted to a worker: blocks of `outputs = rows · inputs`, cut
 * into items (a block, or a byte range of one), every shard given as a
 * (buffer, byte offset) pair into `buffers` rather than as a view (cloning
 * thousands of views costs more than a block's work).
 *
 * - `table`: one record per block, at the offset its items name:
 *   `nIn, nOut, rowsAt, len`, then `buffer, offset` for each input, then for
 *   each output. Row `r` of the block is `rows[rowsAt + r·nIn …]` (nIn bytes).
 * - `items`: three numbers per item: record offset, start byte, end byte.
 * - `counter`: every thread of the job (the caller and each worker) takes
 *   the next item from `counter[0]` until none is left, and counts the items
 *   it finished in `counter[1]` (notified when the last one is done). A
 *   thread that starts late finds no item left and touches nothing.
 * @internal
 */
export interface BlockJob {
  readonly id: number;
  readonly buffers: readonly SharedArrayBuffer[];
  readonly table: Float64Array;
  readonly rows: Uint8Array;
  readonly items: Float64Array;
  readonly counter: Int32Array;
}

/**
 * Take items from `counter` until none of `count` is left, computing each
 * with `compute`: what every thread of a job runs.
 * @internal
 */
export function runItems(counter: Int32Array, count: number, compute: (item: number) => void): void {
  for (let i = Atomics.add(counter, 0, 1); i < count; i = Atomics.add(counter, 0, 1)) {
    compute(i);
    if (Atomics.add(counter, 1, 1) + 1 === count) Atomics.notify(counter, 1);
  }
}

/**
 * Take and compute items of a posted `job` until none is left (what a
 * worker runs), building each block's views from the table (once per block
 * in a row of items).
 * @internal
 */
export function runBlockJob(job: Omit<BlockJob, 'id'>): void {
  const { buffers, table, rows, items, counter } = job;
  let at = -1;
  let views: { rows: Uint8Array[]; inputs: Uint8Array[]; outputs: Uint8Array[] } | undefined;
  runItems(counter, items.length / 3, (i) => {
    const record = items[3 * i]!;
    if (record !== at) {
      at = record;
      const nIn = table[at]!;
      const nOut = table[at + 1]!;
      const rowsAt = table[at + 2]!;
      const len = table[at + 3]!;
      const view = (k: number) => new Uint8Array(buffers[table[at + 4 + 2 * k]!]!, table[at + 5 + 2 * k]!, len);
      views = {
        rows: Array.from({ length: nOut }, (_, r) => rows.subarray(rowsAt + r * nIn, rowsAt + (r + 1) * nIn)),
        inputs: Array.from({ length: nIn }, (_, t) => view(t)),
        outputs: Array.from({ length: nOut }, (_, r) => view(nIn + r)),
      };
    }
    combineRows(views!.rows, views!.inputs, views!.outputs, items[3 * i + 1]!, items[3 * i + 2]!);
  });
}

/** A worker's answer: the job id, and an error message if it failed. */
interface JobDone {
  readonly id: number;
  readonly error?: string;
}

/** One block of a call: `outputs = rows · inputs` over `len` bytes. */
interface BlockTask {
  readonly rows: readonly Uint8Array[];
  readonly inputs: readonly Uint8Array[];
  readonly outputs: readonly Uint8Array[];
  readonly len: number;
}

/**
 * The shards of a batch, for one overlap check across all its blocks
 * ({@link findBatchOverlap}), with each one's block and slot (`k + i` for
 * parity shard `i`) to name it in a message.
 */
class BatchArrays {
  readonly arrays: Uint8Array[] = [];
  readonly #written: number[] = [];
  readonly #block: number[] = [];
  readonly #slot: number[] = [];

  add(array: Uint8Array, written: boolean, block: number, slot: number): void {
    this.arrays.push(array);
    this.#written.push(written ? 1 : 0);
    this.#block.push(block);
    this.#slot.push(slot);
  }

  /** The first overlap involving a written array, as two `[written, block, slot]` triples. */
  overlap(): [[boolean, number, number], [boolean, number, number]] | undefined {
    const hit = findBatchOverlap(this.arrays, Uint8Array.from(this.#written));
    if (!hit) return undefined;
    const at = (i: number): [boolean, number, number] => [this.#written[i] === 1, this.#block[i]!, this.#slot[i]!];
    return [at(hit[0]), at(hit[1])];
  }
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
    this.worker.on('message', (m: JobDone | { ready: true }) => {
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
  run(job: BlockJob): Promise<void> {
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise((resolve, reject) => {
      this.#pending.set(job.id, { resolve, reject });
      this.worker.postMessage(job);
    });
  }
}

/**
 * Options of {@link ParallelReedSolomon.reconstructBlocks}.
 * @public
 */
export interface ReconstructBlocksOptions {
  /** Fill only the missing data shards of each block, not its missing parity shards. Default false. */
  readonly dataOnly?: boolean;
  /**
   * Where to write the shards each block gets back: one entry per block,
   * each as {@link ReconstructOptions.into} for that block (`null` or
   * `undefined`: fresh arrays for it). Outputs must share no memory with any
   * shard of the batch. Default: fresh arrays.
   */
  readonly into?: readonly (readonly (Uint8Array | null | undefined)[] | null | undefined)[];
}

/**
 * Systematic, MDS Reed–Solomon over GF(2^8) with `k` data and `m` parity
 * shards, coding on worker threads: one large block at a time
 * (`encode`, `reconstruct`), or many independent blocks at once
 * (`encodeBlocks`, `reconstructBlocks`: the way to use threads for small
 * shards). Byte-identical to {@link ReedSolomon}, with the same checks and
 * errors, and async. See the module notes for how work is split, what is
 * copied and when the calling thread works alone.
 *
 * @example
 * ```ts
 * const rs = new ParallelReedSolomon(10, 4);
 * const parity = await rs.encode(data);       // 10 shards of 1 MiB
 * await rs.reconstruct([...data, ...parity].map((s, i) => (i < 4 ? null : s)));
 * await rs.close();
 * ```
 * @example Many small blocks (one packet per shard):
 * ```ts
 * const rs = new ParallelReedSolomon(64, 8);
 * const parities = await rs.encodeBlocks(blocks);   // blocks: 64 data shards of 1,400 bytes each
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
  /** Worker threads used for parallel calls. */
  readonly threads: number;
  /** Shorter shards (a batch: shorter total of its blocks' shard lengths) are coded in the calling thread alone. */
  readonly minShardLength: number;
  readonly #single: ReedSolomon;
  readonly #parity: Gf256Matrix;
  readonly #decoder: DecodeMatrixCache;
  readonly #workerUrl: URL | string | undefined;
  #workers: PoolWorker[] = [];
  #closed = false;
  #nextId = 0;
  #piecesOnWorkers = 0;
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

  /** How many worker threads are running now (0 before the first parallel call and after {@link ParallelReedSolomon.close}). */
  get runningWorkers(): number {
    return this.#workers.length;
  }

  /**
   * Pieces of work (a block, or a chunk of one) the worker threads have
   * computed over this codec's life; the rest were computed by the calling
   * thread. 0 while every call ran in the calling thread alone. For tests
   * and monitoring: it shows whether the threads are used at all.
   */
  get piecesOnWorkers(): number {
    return this.#piecesOnWorkers;
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
    await this.#run([{ rows: this.#parity, inputs: data, outputs: out, len }]);
    return out;
  }

  /**
   * Encode many independent blocks at once, spread whole across the worker
   * threads and the calling thread: for each block (`k` data shards of one
   * length; blocks may differ in length) its `m` parity shards, as
   * {@link ParallelReedSolomon.encode} would give them. Into `parity[b]`
   * when given (one array of `m` outputs per block, sharing no memory with
   * any shard of the batch), else into fresh arrays. Resolves to the parity
   * of every block, in order.
   *
   * Every block is checked before any work starts; a bad one rejects with
   * the error {@link ReedSolomon.encode} throws for it, its message prefixed
   * `encodeBlocks: block <b>` (overlaps are checked after every length, so
   * a block with several faults may be refused for another one of them).
   * `GS_ERR_FEC_INVALID_PARAMS` also when a given output overlaps a shard of
   * another block; `GS_ERR_FEC_TOO_FEW_SHARDS` /
   * `GS_ERR_FEC_BAD_INDEX` when `parity` has fewer / more blocks than `blocks`.
   */
  async encodeBlocks(blocks: readonly (readonly Uint8Array[])[], parity?: readonly Uint8Array[][]): Promise<Uint8Array[][]> {
    if (!Array.isArray(blocks)) throw new TypeError('encodeBlocks: blocks must be an array of blocks (arrays of k data shards)');
    if (parity !== undefined) {
      if (!Array.isArray(parity)) throw new TypeError('encodeBlocks: parity must be an array with one array of m outputs per block');
      checkCount('encodeBlocks: parity blocks', parity.length, blocks.length);
    }
    const tasks = blocks.map((data, b): BlockTask => {
      const what = `encodeBlocks: block ${b}`;
      if (!Array.isArray(data)) throw new TypeError(`${what} is not an array of data shards`);
      const len = checkDataShards(what, data, this.dataShards);
      const out = parity?.[b];
      if (parity) {
        if (!Array.isArray(out)) throw new TypeError(`${what}: parity is not an array of parity shards`);
        checkParityOutputs(out, this.parityShards, data, len, what, false); // overlaps: below, for the whole batch at once
      }
      return { rows: this.#parity, inputs: data, outputs: out ?? Array.from({ length: this.parityShards }, () => new Uint8Array(len)), len };
    });
    if (parity) {
      const all = new BatchArrays();
      tasks.forEach((t, b) => {
        t.inputs.forEach((a, j) => all.add(a, false, b, j));
        t.outputs.forEach((a, i) => all.add(a, true, b, this.dataShards + i));
      });
      const hit = all.overlap();
      if (hit) {
        // An overlap within one block fails with ReedSolomon's message for it; across blocks, both are named.
        tasks.forEach((t, b) => checkParityOutputs(t.outputs as Uint8Array[], this.parityShards, t.inputs, t.len, `encodeBlocks: block ${b}`));
        const name = ([, b, slot]: [boolean, number, number]) =>
          slot < this.dataShards ? `block ${b} data shard ${slot}` : `block ${b} parity shard ${slot - this.dataShards}`;
        throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `encodeBlocks: ${name(hit[0])} overlaps ${name(hit[1])}`);
      }
    }
    await this.#runBatch(tasks);
    return tasks.map((t) => t.outputs as Uint8Array[]);
  }

  /**
   * Fill the missing entries of `shards` (length `k + m`, missing =
   * `undefined`/`null`) in place, as {@link ReedSolomon.reconstruct} (same
   * choice of shards, same errors, identical bytes): with fresh arrays, or
   * those of `options.into` (`SharedArrayBuffer`-backed ones are written by
   * the workers directly: no copy back); with `dataOnly`, only the data
   * shards. Resolves to `shards`.
   */
  async reconstruct(shards: (Uint8Array | null | undefined)[], options: ReconstructOptions = {}): Promise<Uint8Array[]> {
    const { len, chosen } = checkReconstructShards(shards, this.dataShards, this.totalShards);
    if (!this.#parallel(len)) return this.#single.reconstruct(shards, options);
    const fill = this.#missing(shards, options.dataOnly);
    const outs = reconstructOutputs('reconstruct', options.into, shards, fill, len);
    if (fill.length === 0) return shards as Uint8Array[];
    await this.#run([{ rows: this.#rows(chosen, fill), inputs: chosen.map((i) => shards[i]!), outputs: outs, len }]);
    fill.forEach((i, r) => (shards[i] = outs[r]!));
    return shards as Uint8Array[];
  }

  /**
   * Reconstruct many independent blocks at once, spread whole across the
   * worker threads and the calling thread: each block as
   * {@link ParallelReedSolomon.reconstruct} would (blocks may differ in
   * shard length and in which shards are missing), filled in place.
   * Resolves to `blocks`.
   *
   * Every block is checked before any work starts; a bad one rejects with
   * the error {@link ReedSolomon.reconstruct} throws for it, its message
   * prefixed `reconstructBlocks: block <b>` (overlaps are checked after
   * every length, so a block with several faults may be refused for another
   * one of them). `GS_ERR_FEC_INVALID_PARAMS` also when an `into` output
   * overlaps a shard of another block.
   */
  async reconstructBlocks(blocks: (Uint8Array | null | undefined)[][], options: ReconstructBlocksOptions = {}): Promise<Uint8Array[][]> {
    if (!Array.isArray(blocks)) throw new TypeError('reconstructBlocks: blocks must be an array of blocks (arrays of k + m shard slots)');
    const into = options.into;
    if (into !== undefined) {
      if (!Array.isArray(into)) throw new TypeError('reconstructBlocks: into must be an array with one entry per block');
      checkCount('reconstructBlocks: into blocks', into.length, blocks.length);
    }
    const plans = blocks.map((shards, b) => {
      const what = `reconstructBlocks: block ${b}`;
      if (!Array.isArray(shards)) throw new TypeError(`${what} is not an array of shard slots`);
      const { len, chosen } = checkReconstructShards(shards, this.dataShards, this.totalShards, what);
      const fill = this.#missing(shards, options.dataOnly);
      // Overlaps: below, for the whole batch at once.
      const outs = reconstructOutputs(what, into?.[b] ?? undefined, shards, fill, len, false);
      return { shards, len, chosen, fill, outs };
    });
    if (into) {
      const all = new BatchArrays();
      plans.forEach(({ shards, fill, outs }, b) => {
        shards.forEach((a, i) => a && all.add(a, false, b, i));
        const given = into[b];
        if (given) fill.forEach((i, r) => outs[r] === given[i] && all.add(outs[r]!, true, b, i));
      });
      const hit = all.overlap();
      if (hit) {
        // An overlap within one block fails with ReedSolomon's message for it; across blocks, both are named.
        plans.forEach(({ shards, fill, len }, b) => reconstructOutputs(`reconstructBlocks: block ${b}`, into[b] ?? undefined, shards, fill, len));
        const name = ([written, b, slot]: [boolean, number, number]) => `block ${b} ${written ? 'into' : 'shard'} ${slot}`;
        throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `reconstructBlocks: ${name(hit[0])} overlaps ${name(hit[1])}`);
      }
    }
    // The rows of one erasure pattern, computed once per call (the decode matrix itself is cached across calls).
    const rowsByPattern = new Map<string, readonly Uint8Array[]>();
    const tasks: BlockTask[] = [];
    for (const { shards, len, chosen, fill, outs } of plans) {
      if (fill.length === 0) continue;
      const key = `${chosen.join(',')}/${fill.join(',')}`;
      let rows = rowsByPattern.get(key);
      if (!rows) rowsByPattern.set(key, (rows = this.#rows(chosen, fill)));
      tasks.push({ rows, inputs: chosen.map((i) => shards[i]!), outputs: outs, len });
    }
    await this.#runBatch(tasks);
    for (const { shards, fill, outs } of plans) fill.forEach((i, r) => (shards[i] = outs[r]!));
    return blocks as Uint8Array[][];
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
   * End the worker threads; calls still running on them reject. Later calls
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

  /** The slots reconstruct fills: missing data shards, then (unless `dataOnly`) missing parity shards. */
  #missing(shards: readonly (Uint8Array | null | undefined)[], dataOnly: boolean | undefined): number[] {
    const fill: number[] = [];
    const end = dataOnly ? this.dataShards : this.totalShards;
    for (let i = 0; i < end; i++) if (shards[i] == null) fill.push(i);
    return fill;
  }

  /**
   * Every shard in `fill` as one combination of the k `chosen` shards: a
   * data shard by its row of the inverse, a parity shard by P_i · inverse
   * (or P_i itself when the chosen shards are the data shards). Exact
   * arithmetic, so the bytes are those of ReedSolomon's two passes.
   */
  #rows(chosen: readonly number[], fill: readonly number[]): Uint8Array[] {
    const k = this.dataShards;
    if (fill[0]! >= k) return fill.map((i) => this.#parity[i - k]!); // no data missing: chosen = 0…k-1
    const inverse = this.#decoder.inverse(chosen);
    const data = fill.filter((i) => i < k).map((j) => inverse[j]!);
    const parity = fill.filter((i) => i >= k).map((i) => this.#parity[i - k]!);
    return parity.length === 0 ? data : [...data, ...multiplyMatrices(parity, inverse)];
  }

  /**
   * Run a batch: across the threads when there is enough work (more than one
   * block and a total shard length of at least `minShardLength`, or one block
   * that `encode` would cut), else in the calling thread.
   */
  async #runBatch(tasks: readonly BlockTask[]): Promise<void> {
    let total = 0;
    for (const t of tasks) total += t.len;
    const spread = tasks.length === 1 ? this.#parallel(total) : tasks.length > 1 && !this.#closed && total >= this.minShardLength;
    if (spread) return this.#run(tasks);
    for (const t of tasks) combineRows(t.rows, t.inputs, t.outputs, 0, t.len);
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

  /**
   * Compute `tasks` on the workers and this thread: each block is one item,
   * or several chunks of at least 8 KiB when its shards are long (about four
   * items per thread in all), taken from a shared counter.
   */
  async #run(tasks: readonly BlockTask[]): Promise<void> {
    const workers = await this.#ensureWorkers();
    let total = 0;
    for (const t of tasks) total += t.len;
    // About four chunks per thread, so that a thread that starts late or runs
    // slow leaves its share to the others; at least 8 KiB (per-chunk calls).
    const chunk = Math.max(MIN_CHUNK, Math.ceil(total / ((workers.length + 1) * 4) / ALIGN) * ALIGN);
    const stride = (len: number) => (len + 7) & ~7;
    // Ordinary arrays go into one pooled shared buffer: inputs copied, outputs computed there.
    // Caller's shared buffers holding enough of the call's bytes go as they are (see DIRECT_MIN).
    const sharedBytes = new Map<ArrayBufferLike, number>();
    for (const t of tasks) {
      for (const a of [...t.inputs, ...t.outputs]) if (isShared(a)) sharedBytes.set(a.buffer, (sharedBytes.get(a.buffer) ?? 0) + t.len);
    }
    const direct = (a: Uint8Array) => (sharedBytes.get(a.buffer) ?? 0) >= DIRECT_MIN;
    let need = 0;
    let tableLength = 0;
    let count = 0;
    for (const t of tasks) {
      for (const a of t.inputs) if (!direct(a)) need += stride(t.len);
      for (const a of t.outputs) if (!direct(a)) need += stride(t.len);
      tableLength += 4 + 2 * (t.inputs.length + t.outputs.length);
      count += Math.ceil(t.len / chunk);
    }
    let sab = need > 0 ? this.#acquire(need) : null;
    const buffers: SharedArrayBuffer[] = [];
    const bufferIndex = new Map<SharedArrayBuffer, number>();
    const ref = (buffer: SharedArrayBuffer): number => {
      let i = bufferIndex.get(buffer);
      if (i === undefined) bufferIndex.set(buffer, (i = buffers.push(buffer) - 1));
      return i;
    };
    const rowsAt = new Map<readonly Uint8Array[], number>();
    let rowBytes = 0;
    const table = new Float64Array(tableLength);
    const items = new Float64Array(3 * count);
    const itemTask = new Int32Array(count);
    /** Per task, the shared stand-in of each ordinary output (null for outputs shared already). */
    const standIns: (Uint8Array | null)[][] = [];
    let at = 0;
    let pos = 0;
    let item = 0;
    tasks.forEach((t, b) => {
      const { len } = t;
      let r0 = rowsAt.get(t.rows);
      if (r0 === undefined) {
        rowsAt.set(t.rows, (r0 = rowBytes));
        rowBytes += t.rows.length * t.inputs.length;
      }
      const record = at;
      table[at++] = t.inputs.length;
      table[at++] = t.outputs.length;
      table[at++] = r0;
      table[at++] = len;
      const place = (a: Uint8Array, copy: boolean): Uint8Array | null => {
        if (direct(a)) {
          table[at++] = ref(a.buffer as SharedArrayBuffer);
          table[at++] = a.byteOffset;
          return null;
        }
        const v = new Uint8Array(sab!, pos, len);
        if (copy) v.set(a);
        table[at++] = ref(sab!);
        table[at++] = pos;
        pos += stride(len);
        return v;
      };
      for (const a of t.inputs) place(a, true);
      standIns.push(t.outputs.map((a) => place(a, false)));
      for (let s = 0; s < len; s += chunk, item++) {
        items[3 * item] = record;
        items[3 * item + 1] = s;
        items[3 * item + 2] = Math.min(len, s + chunk);
        itemTask[item] = b;
      }
    });
    const rows = new Uint8Array(rowBytes);
    for (const [m, r0] of rowsAt) m.forEach((row, r) => rows.set(row, r0 + r * row.length));

    const counter = new Int32Array(new SharedArrayBuffer(8));
    const job = { buffers, table, rows, items, counter };
    const used = workers.slice(0, count - 1);
    // Held until this call settles: a pending Atomics.waitAsync alone does not keep the process alive.
    used.forEach((w) => w.hold());
    const runs = used.map((w) => w.run({ id: this.#nextId++, ...job }));
    // A worker's failure rejects the call; until then its own answer is not awaited (the item count is).
    const failure = new Promise<never>((_, reject) => runs.forEach((j) => j.catch(reject)));
    failure.catch(() => {});
    // This thread works on the caller's own arrays (the same bytes as the
    // shared copies), so only the items the workers took are copied out.
    const mine = new Uint8Array(count);
    try {
      runItems(counter, count, (i) => {
        const t = tasks[itemTask[i]!]!;
        combineRows(t.rows, t.inputs, t.outputs, items[3 * i + 1]!, items[3 * i + 2]!);
        mine[i] = 1;
      });
      for (let done = Atomics.load(counter, 1); done < count; done = Atomics.load(counter, 1)) {
        const w = waitAsync(counter, 1, done);
        if (w.async) await Promise.race([w.value, failure]);
      }
      for (let i = 0; i < count; i++) {
        if (mine[i]) continue;
        this.#piecesOnWorkers++;
        const b = itemTask[i]!;
        const start = items[3 * i + 1]!;
        const end = items[3 * i + 2]!;
        standIns[b]!.forEach((v, r) => v && tasks[b]!.outputs[r]!.set(v.subarray(start, end), start));
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
