/**
 * Executors: where a loader runs. {@link ProcessExecutor} forks a fresh
 * Node process per dispatch (the seed's second process, §3.1.3) and hands
 * it the job over IPC only; {@link InlineExecutor} runs the same loader
 * module in this process. Both share one handle ({@link ManagedHandle}) that
 * queues runs, enforces the bundle's `timeoutMs` per run, and turns a kill,
 * a timeout or a dead loader into a result with a clear outcome:
 *
 * ```text
 *  handle state   event                              → next     the run in progress settles as
 *  alive          run settles (code loaded)          → alive    its result
 *  alive          first run settles, nothing loaded  → ended    its result (refused / code-failed / …)
 *  alive          timeoutMs passes                   → ended    timeout, reason GS_ERR_DISPATCH_TIMEOUT
 *  alive          kill(reason)                       → ended    timeout, reason = the kill's reason
 *  alive          loader process exits / errors      → ended    crashed, reason GS_ERR_DISPATCH_LOADER_FAILED: …
 *
 * A synthetic result's `start` is `started` when the loader said a target
 * started; a loader that dies abruptly may not have said so (best effort).
 *  ended          rerun()                            → ended    (rejects GS_ERR_DISPATCH_UNKNOWN_BUNDLE)
 * ```
 *
 * Ending kills the loader and everything it started: the process executor
 * starts each loader as the leader of a new process group and kills the
 * group; the inline executor kills each target's own group.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DispatchError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import { decodeBinding, decodeBundle, type BindingFields } from '../wire/index.js';
import { Loader } from './loader.js';
import { blankResult, clip, reasonOf } from './results.js';
import type { Executor, LoaderEvents, LoaderHandle, LoaderJob, LoaderResult } from './types.js';

/** Run time limit when the bundle does not decode (the loader then refuses it at once). */
const FALLBACK_TIMEOUT_MS = 60_000;
/** Longest timer Node accepts. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long after a loader's exit its pipes may take to drain before it counts as gone. */
const EXIT_GRACE_MS = 250;
/** How long kill() waits for a loader process to be gone. */
const KILL_WAIT_MS = 5_000;

/** What a handle tells its driver's loader, and hears back. @internal */
interface DriverHooks {
  /** A target started in the run in progress. */
  started(): void;
  /** The loader ended on its own (its process died). */
  died(reason: string): void;
}

/** One loader, seen from its handle. @internal */
interface Driver {
  first(): Promise<{ result: LoaderResult; loaded: boolean }>;
  rerun(binding: string): Promise<LoaderResult>;
  /** End the loader and everything it started; resolves when it is gone. */
  terminate(): Promise<void>;
  /** A run is in progress (true) or none (false): keep the event loop alive only while busy. */
  hold(busy: boolean): void;
}

type Claim = Pick<BindingFields, 'dispatchId' | 'run' | 'bundleDigest' | 'evidence'>;

interface InFlight {
  readonly claim: Claim;
  readonly startedAt: number;
  started: boolean;
  settle(result: LoaderResult): void;
}

/**
 * The {@link LoaderHandle} of both executors: runs one at a time, each
 * bounded by the bundle's `timeoutMs`.
 * @internal
 */
class ManagedHandle implements LoaderHandle {
  readonly result: Promise<LoaderResult>;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #driver: Driver;
  #alive = true;
  #end: { outcome: 'timeout' | 'crashed'; reason: string } | undefined;
  #inFlight: InFlight | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #terminated: Promise<void> | undefined;

  constructor(job: LoaderJob, makeDriver: (hooks: DriverHooks) => Driver, now: () => number) {
    const claim = claimOf(job.binding);
    let timeoutMs = FALLBACK_TIMEOUT_MS;
    if (job.timeoutMs !== undefined) {
      checkOption(Number.isInteger(job.timeoutMs) && job.timeoutMs > 0 && job.timeoutMs <= MAX_TIMER_MS, 'job.timeoutMs', `must be an integer from 1 to ${MAX_TIMER_MS}`);
      timeoutMs = job.timeoutMs;
    } else {
      try {
        timeoutMs = decodeBundle(job.bundle).metadata.timeoutMs;
      } catch {
        // The loader refuses a bundle that does not decode, well within the fallback limit.
      }
    }
    this.#timeoutMs = timeoutMs;
    this.#now = now;
    this.#driver = makeDriver({
      started: () => {
        if (this.#inFlight) this.#inFlight.started = true;
      },
      died: (reason) => this.#finish('crashed', reason),
    });
    let loaded = false;
    this.result = this.#enqueue(claim, async () => {
      const first = await this.#driver.first();
      loaded = first.loaded;
      return first.result;
    });
    // Registered before anyone else can listen, so a caller never sees a
    // live handle with nothing loaded.
    void this.result.then(() => {
      if (!loaded) this.#finish('crashed', 'nothing loaded');
    });
  }

  get alive(): boolean {
    return this.#alive;
  }

  rerun(binding: string): Promise<LoaderResult> {
    if (!this.#alive) return Promise.reject(new DispatchError('GS_ERR_DISPATCH_UNKNOWN_BUNDLE', 'the loader has ended'));
    const claim = claimOf(binding);
    return this.#enqueue(claim, () => this.#driver.rerun(binding));
  }

  async kill(reason: string): Promise<void> {
    this.#finish('timeout', reason);
    await this.#terminated;
  }

  #enqueue(claim: Claim, exec: () => Promise<LoaderResult>): Promise<LoaderResult> {
    const run = this.#queue.then(
      () =>
        new Promise<LoaderResult>((resolve) => {
          const startedAt = this.#now();
          if (!this.#alive) {
            const end = this.#end ?? { outcome: 'crashed', reason: 'the loader has ended' };
            resolve(blankResult(claim, end.outcome, end.reason, 'none', startedAt, startedAt));
            return;
          }
          let timer: ReturnType<typeof setTimeout> | undefined;
          const flight: InFlight = {
            claim,
            startedAt,
            started: false,
            settle: (result) => {
              if (this.#inFlight !== flight) return;
              this.#inFlight = undefined;
              clearTimeout(timer);
              if (this.#alive) this.#driver.hold(false);
              resolve(result);
            },
          };
          this.#inFlight = flight;
          this.#driver.hold(true);
          timer = setTimeout(() => this.#finish('timeout', 'GS_ERR_DISPATCH_TIMEOUT'), this.#timeoutMs);
          exec().then(
            (result) => flight.settle(result),
            (e: unknown) => flight.settle(blankResult(claim, 'crashed', `GS_ERR_DISPATCH_LOADER_FAILED: ${reasonOf(e)}`, flight.started ? 'started' : 'none', startedAt, this.#now())),
          );
        }),
    );
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** End the loader: the run in progress settles with `outcome`; everything it started is killed. */
  #finish(outcome: 'timeout' | 'crashed', reason: string): void {
    if (!this.#alive) return;
    this.#alive = false;
    this.#end = { outcome, reason: clip(reason) };
    const flight = this.#inFlight;
    if (flight) flight.settle(blankResult(flight.claim, outcome, this.#end.reason, flight.started ? 'started' : 'none', flight.startedAt, this.#now()));
    this.#terminated = this.#driver.terminate().catch(() => undefined);
  }
}

/** The fields a synthetic result needs, from a binding the agent already verified. */
function claimOf(binding: string): Claim {
  const { dispatchId, run, bundleDigest, evidence } = decodeBinding(binding).fields;
  return { dispatchId, run, bundleDigest, evidence };
}

/**
 * Options of {@link InlineExecutor}.
 * @public
 */
export interface InlineExecutorOptions {
  /** Clock, ms since the epoch (default `Date.now`). */
  now?: () => number;
}

/**
 * Runs the loader in this process: the same verification, target handling
 * and reports as {@link ProcessExecutor}, without a process per dispatch.
 * For tests and benchmarks: the distributed code shares this process (a
 * `process.exit()` in it ends the agent), a synchronous endless loop cannot
 * be stopped, and Node keeps each distinct code module loaded for the life
 * of the process. Timeouts still end a hung target and settle the run.
 * @public
 */
export class InlineExecutor implements Executor {
  readonly #now: () => number;

  constructor(options: InlineExecutorOptions = {}) {
    checkOption(options.now === undefined || typeof options.now === 'function', 'now', 'must be a function');
    this.#now = options.now ?? Date.now;
  }

  /** Run `job` in this process and report through `events`; the handle stops it and gives its result. */
  start(job: LoaderJob, events: LoaderEvents = {}): LoaderHandle {
    return new ManagedHandle(
      job,
      (hooks) => {
        let loader: Loader | undefined;
        let ended = false;
        return {
          first: async () => {
            const out = await Loader.load(job, {
              targetGroup: 'own',
              log: events.log,
              spawned: () => hooks.started(),
              now: this.#now,
              loaded: (l) => {
                if (ended) l.kill();
                else loader = l;
              },
            });
            return { result: out.result, loaded: out.loader !== undefined };
          },
          rerun: (binding) => {
            if (!loader) return Promise.reject(new DispatchError('GS_ERR_DISPATCH_UNKNOWN_BUNDLE', 'nothing is loaded'));
            return loader.rerun(binding);
          },
          terminate: async () => {
            ended = true;
            loader?.kill();
            loader = undefined;
          },
          hold: () => undefined,
        };
      },
      this.#now,
    );
  }
}

/**
 * Options of {@link ProcessExecutor}.
 * @public
 */
export interface ProcessExecutorOptions {
  /**
   * The loader entry script. Default: `dispatch-loader.js` beside the built
   * module (`dist/delivery/`). From source (tests), pass
   * `src/delivery/dispatch/agent/loader-main.ts` with `execArgv: ['--import', 'tsx']`.
   */
  loaderPath?: string | URL;
  /** Node options of the loader process (default none: the agent's own `execArgv` is not passed on). */
  execArgv?: string[];
  /** Environment of the loader process (default this process's). Never carries the job. */
  env?: NodeJS.ProcessEnv;
  /** Clock, ms since the epoch (default `Date.now`). */
  now?: () => number;
}

/** IPC messages, agent → loader process. @internal */
export type ToLoader = { t: 'job'; id: 0; job: LoaderJob } | { t: 'rerun'; id: number; binding: string };
/** IPC messages, loader process → agent. @internal */
export type FromLoader =
  | { t: 'result'; id: number; result: LoaderResult; loaded: boolean }
  | { t: 'spawned'; id: number; pid: number }
  | { t: 'log'; message: string };

/** The default loader script: beside this module, or under `delivery/` when this code sits in a chunk at `dist/`'s root. */
function defaultLoaderUrl(): URL {
  const here = import.meta.url;
  const candidates = [new URL('./dispatch-loader.js', here), new URL('./delivery/dispatch-loader.js', here)];
  for (const c of candidates) {
    if (c.protocol === 'file:' && existsSync(fileURLToPath(c))) return c;
  }
  return candidates[0]!;
}

/**
 * Runs each loader as a separate Node process (`child_process.fork` of the
 * loader entry), the leader of its own process group: the job goes over the
 * IPC pipe only (structured clone, `serialization: 'advanced'`), never on
 * the command line, in the environment or on disk. A timeout or a kill ends
 * the whole group — the loader, the target and the target's children —
 * and a loader that dies mid-run is reported as `crashed`. A loader whose
 * agent goes away exits (its IPC pipe closes).
 * @public
 */
export class ProcessExecutor implements Executor {
  readonly #path: string;
  readonly #execArgv: string[];
  readonly #env: NodeJS.ProcessEnv | undefined;
  readonly #now: () => number;

  constructor(options: ProcessExecutorOptions = {}) {
    const p = options.loaderPath ?? defaultLoaderUrl();
    checkOption(typeof p === 'string' || p instanceof URL, 'loaderPath', 'must be a path or a file: URL');
    checkOption(options.execArgv === undefined || (Array.isArray(options.execArgv) && options.execArgv.every((a) => typeof a === 'string')), 'execArgv', 'must be an array of strings');
    checkOption(options.now === undefined || typeof options.now === 'function', 'now', 'must be a function');
    this.#path = p instanceof URL ? fileURLToPath(p) : p.startsWith('file:') ? fileURLToPath(p) : p;
    this.#execArgv = [...(options.execArgv ?? [])];
    this.#env = options.env;
    this.#now = options.now ?? Date.now;
  }

  /** Run `job` in a loader child process and report through `events`; the handle stops it and gives its result. */
  start(job: LoaderJob, events: LoaderEvents = {}): LoaderHandle {
    return new ManagedHandle(job, (hooks) => new ProcessDriver(this.#path, this.#execArgv, this.#env, job, hooks, events), this.#now);
  }
}

/** One loader process. */
class ProcessDriver implements Driver {
  readonly #child: ChildProcess;
  readonly #job: LoaderJob;
  readonly #hooks: DriverHooks;
  readonly #waiting = new Map<number, { resolve: (m: Extract<FromLoader, { t: 'result' }>) => void; reject: (e: Error) => void }>();
  readonly #exited: Promise<void>;
  #gone = false;
  #nextId = 1;
  #current = 0;
  #stderrTail = '';

  constructor(file: string, execArgv: string[], env: NodeJS.ProcessEnv | undefined, job: LoaderJob, hooks: DriverHooks, events: LoaderEvents) {
    this.#job = job;
    this.#hooks = hooks;
    this.#child = fork(file, [], {
      execArgv,
      env: env ?? process.env,
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      detached: true,
    });
    const child = this.#child;
    this.#exited = new Promise((resolve) => {
      const gone = (why: string) => {
        if (this.#gone) return;
        this.#gone = true;
        const tail = this.#stderrTail.trim().split('\n').pop() ?? '';
        const reason = `GS_ERR_DISPATCH_LOADER_FAILED: ${why}${tail ? ` (${tail})` : ''}`;
        for (const w of this.#waiting.values()) w.reject(new Error(reason));
        this.#waiting.clear();
        hooks.died(reason);
        resolve();
      };
      // 'close' comes after the pipes are drained, so every message the
      // loader sent before it died has been seen; but a process the code
      // started may hold the loader's stderr open, so 'exit' also counts
      // after a short grace.
      const why = (code: number | null, signal: NodeJS.Signals | null) => (code !== null ? `loader exited with code ${code}` : `loader killed by ${signal ?? 'a signal'}`);
      child.once('close', (code, signal) => gone(why(code, signal)));
      child.once('exit', (code, signal) => setTimeout(() => gone(why(code, signal)), EXIT_GRACE_MS).unref());
      child.once('error', (e) => {
        // A spawn failure has no exit event; any other error is followed by one.
        if (child.pid === undefined) gone(`loader did not start: ${e.message}`);
      });
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      this.#stderrTail = (this.#stderrTail + s).slice(-2048);
    });
    child.on('message', (raw: unknown) => {
      const m = raw as FromLoader;
      if (typeof m !== 'object' || m === null) return;
      if (m.t === 'result') {
        const w = this.#waiting.get(m.id);
        this.#waiting.delete(m.id);
        w?.resolve(m);
      } else if (m.t === 'spawned') {
        if (m.id === this.#current) hooks.started();
      } else if (m.t === 'log') {
        try {
          events.log?.(String(m.message));
        } catch {
          // A failing log sink never fails the run.
        }
      }
    });
  }

  #request(m: ToLoader): Promise<Extract<FromLoader, { t: 'result' }>> {
    if (this.#gone) return Promise.reject(new Error('GS_ERR_DISPATCH_LOADER_FAILED: the loader has ended'));
    return new Promise((resolve, reject) => {
      this.#waiting.set(m.id, { resolve, reject });
      this.#current = m.id;
      try {
        this.#child.send(m, (e) => {
          if (e) {
            this.#waiting.delete(m.id);
            reject(e);
          }
        });
      } catch (e) {
        this.#waiting.delete(m.id);
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  async first(): Promise<{ result: LoaderResult; loaded: boolean }> {
    const m = await this.#request({ t: 'job', id: 0, job: this.#job });
    return { result: m.result, loaded: m.loaded };
  }

  async rerun(binding: string): Promise<LoaderResult> {
    const m = await this.#request({ t: 'rerun', id: this.#nextId++, binding });
    return m.result;
  }

  hold(busy: boolean): void {
    if (this.#gone) return;
    const channel = this.#child.channel as { ref?(): void; unref?(): void } | undefined;
    const stderr = this.#child.stderr as { ref?(): void; unref?(): void } | null;
    if (busy) {
      this.#child.ref();
      channel?.ref?.();
      stderr?.ref?.();
    } else {
      this.#child.unref();
      channel?.unref?.();
      stderr?.unref?.();
    }
  }

  async terminate(): Promise<void> {
    const pid = this.#child.pid;
    if (pid !== undefined) {
      // The group outlives a loader that died on its own (its targets are
      // still in it), so it is killed either way; ESRCH once it is empty.
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        if (!this.#gone) this.#child.kill('SIGKILL');
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.#exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, KILL_WAIT_MS)))]);
    clearTimeout(timer);
  }
}
