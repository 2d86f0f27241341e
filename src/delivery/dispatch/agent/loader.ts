/**
 * The loader: the seed's 配付コードロード・起動部 (§3.1.3.2, steps 3–8 of
 * §3.2.3), shared by both executors (the process entry loader-main.ts and
 * {@link InlineExecutor}) so it is written once.
 *
 * ```text
 *  step                                 on failure → outcome        start
 *  decode + verify the bundle           refused (reason = code)     none
 *    (signature, expiry, version floor)
 *  verify the binding (signature,       refused                     none
 *    agent, expiry; digest = bundle's)
 *  write the target under workDir       refused (UNSAFE_PATH),      none / failed
 *    (no symlink escape; mode & 0o777)    start-failed (I/O)
 *  import the code from memory          code-failed                 none
 *    (a data: URL, never a file)
 *  call its default export with ctx     code-failed (it threw),     started / failed / none
 *                                        start-failed (last spawn
 *                                        failed), else ran
 * ```
 *
 * The loader re-verifies what the agent already checked: it is the one that
 * runs code, and a loader must not trust that its parent checked for it. It
 * stays loaded after the first run; {@link Loader.rerun} calls the same
 * module again under a new binding (new evidence, new arguments) without
 * fetching or writing anything (the seed's re-operation, §3 and figure 3).
 *
 * The report's exit status and output digests are those of the last
 * target the code started in that run; every target it started is awaited
 * before the run ends (the executor's timeout bounds that).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DispatchError } from '../../../errors/index.js';
import {
  decodeBinding,
  decodeBundle,
  verifyBinding,
  verifyBundle,
  type BindingFields,
  type Bundle,
  type BundleTarget,
  type OutputDigest,
} from '../wire/index.js';
import { blankResult, OutputCapture, reasonOf } from './results.js';
import type { LoaderJob, LoaderResult } from './types.js';

/** Bytes of each output stream kept for the code to read (all of it is digested). @public */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
/** Longest `ctx.log()` line passed on. */
const MAX_LOG_CHARS = 4096;
/** Most arguments one spawn may pass. */
const MAX_ARGS = 4096;

/**
 * What one target program run gave back to the distributed code.
 * @public
 */
export interface TargetRunResult {
  /** Exit code, or null when a signal ended it. */
  readonly exitCode: number | null;
  /** The signal that ended it, or null. */
  readonly signal: string | null;
  /** SHA-256 and size of everything it wrote to stdout. */
  readonly stdout: OutputDigest;
  /** SHA-256 and size of everything it wrote to stderr. */
  readonly stderr: OutputDigest;
  /** The first bytes of stdout (at most 1 MiB; `truncated` says if there was more). */
  readonly stdoutBytes: Uint8Array;
  /** The first bytes of stderr (at most 1 MiB). */
  readonly stderrBytes: Uint8Array;
  /** True when stdout or stderr held more than was kept. */
  readonly truncated: boolean;
}

/**
 * The argument of the distributed code's default export.
 * @public
 */
export interface DispatchContext {
  /** The dispatch this run belongs to. */
  readonly dispatchId: string;
  /** 0 for the dispatch, n for its n-th re-run. */
  readonly run: number;
  /** The target program as written (absolute path) and the bundle's own arguments; null when the bundle has none. */
  readonly target: { readonly path: string; readonly args: readonly string[] } | null;
  /** This run's arguments: the binding's, or the bundle's when the binding gives none. */
  readonly args: readonly string[];
  /**
   * Start the target program (with `args`, default this run's) in the work
   * directory and wait for it to end. Rejects with `DispatchError`
   * `GS_ERR_DISPATCH_LOADER_FAILED` when it cannot start (the run's outcome
   * is then `start-failed`).
   */
  spawnTarget(args?: readonly string[]): Promise<TargetRunResult>;
  /** Pass a line to the agent's `log` event. */
  log(message: string): void;
}

/** The shape of a distributed code module's default export. */
type DistributedCode = (ctx: DispatchContext) => unknown;

/**
 * Options of {@link Loader.load}.
 * @internal
 */
export interface LoaderOptions {
  /** `ctx.log()` lines. */
  log?(message: string): void;
  /** A target started (its pid). */
  spawned?(pid: number): void;
  /**
   * `own`: each target leads its own process group, so {@link Loader.kill}
   * ends it and its children (the inline executor). `inherit`: targets stay
   * in the loader's group, which the process executor kills whole.
   */
  targetGroup?: 'own' | 'inherit';
  /** Bytes of each output stream kept for the code (default 1 MiB). */
  maxOutputBytes?: number;
  /** Clock, ms since the epoch. */
  now?: () => number;
  /** Called with the loader once the code is loaded, before its first run (so it can be killed during that run). */
  loaded?(loader: Loader): void;
}

/** A loader's first run: its result, and the loader when code is loaded. */
export interface LoadOutcome {
  readonly result: LoaderResult;
  /** Undefined when nothing was loaded (refused, or the code failed to load). */
  readonly loader: Loader | undefined;
}

/** What one run tracks about the targets it started. */
interface RunTrack {
  active: boolean;
  lastStart: 'started' | 'failed' | undefined;
  failure: unknown;
  last: TargetRunResult | undefined;
  readonly waiting: Promise<unknown>[];
}

/**
 * Loaded distributed code and its written target, ready to run again.
 * @internal
 */
export class Loader {
  readonly #job: LoaderJob;
  readonly #bundle: Bundle;
  readonly #entry: DistributedCode;
  readonly #targetPath: string | null;
  readonly #options: LoaderOptions;
  readonly #now: () => number;
  readonly #children = new Set<ChildProcess>();
  #killed = false;

  private constructor(job: LoaderJob, bundle: Bundle, entry: DistributedCode, targetPath: string | null, options: LoaderOptions) {
    this.#job = job;
    this.#bundle = bundle;
    this.#entry = entry;
    this.#targetPath = targetPath;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Verify, write, import and run `job` once. Throws only `DispatchError`
   * `GS_ERR_DISPATCH_MALFORMED` for a binding that does not decode (there is
   * then no dispatch to report on); every other failure is the result's
   * outcome.
   */
  static async load(job: LoaderJob, options: LoaderOptions = {}): Promise<LoadOutcome> {
    const now = options.now ?? Date.now;
    const startedAt = now();
    const claimed = decodeBinding(job.binding).fields;
    const refuse = (e: unknown, start: LoaderResult['start'] = 'none'): LoadOutcome => ({
      result: blankResult(claimed, 'refused', reasonOf(e), start, startedAt, now()),
      loader: undefined,
    });

    let bundle: Bundle;
    let fields: BindingFields;
    try {
      bundle = decodeBundle(job.bundle);
      verifyBundle(bundle, { centerKey: job.centerKey, now: startedAt, minVersion: job.minVersion });
      fields = verifyBinding(decodeBinding(job.binding), { centerKey: job.centerKey, agentMsid: job.agentMsid, now: startedAt });
      if (fields.bundleDigest !== bundle.digest) {
        throw new DispatchError('GS_ERR_DISPATCH_DIGEST_MISMATCH', `the binding names bundle ${fields.bundleDigest}, not ${bundle.digest}`);
      }
    } catch (e) {
      return refuse(e);
    }

    let targetPath: string | null = null;
    const target = bundle.metadata.target;
    if (target !== null) {
      try {
        targetPath = await writeTarget(job.workDir, target, bundle.target ?? new Uint8Array(0));
      } catch (e) {
        if (e instanceof DispatchError) return refuse(e);
        return { result: blankResult(fields, 'start-failed', `writing the target: ${reasonOf(e)}`, 'failed', startedAt, now()), loader: undefined };
      }
    }

    let entry: DistributedCode;
    try {
      entry = await importFromMemory(bundle.code);
    } catch (e) {
      return { result: blankResult(fields, 'code-failed', reasonOf(e), 'none', startedAt, now()), loader: undefined };
    }
    const loader = new Loader(job, bundle, entry, targetPath, options);
    options.loaded?.(loader);
    return { result: await loader.#call(fields, startedAt), loader };
  }

  /** The loaded bundle's digest. */
  get bundleDigest(): string {
    return this.#bundle.digest;
  }

  /**
   * Run the loaded code again under `binding`: the same checks on the
   * binding (and the bundle's expiry), then the same module with the new
   * evidence and arguments. Throws only `GS_ERR_DISPATCH_MALFORMED` for a
   * binding that does not decode.
   */
  async rerun(binding: string): Promise<LoaderResult> {
    const startedAt = this.#now();
    const claimed = decodeBinding(binding);
    let fields: BindingFields;
    try {
      if (this.#killed) throw new DispatchError('GS_ERR_DISPATCH_UNKNOWN_BUNDLE', 'the loader has ended');
      verifyBundle(this.#bundle, { centerKey: this.#job.centerKey, now: startedAt, minVersion: this.#job.minVersion });
      fields = verifyBinding(claimed, { centerKey: this.#job.centerKey, agentMsid: this.#job.agentMsid, now: startedAt });
      if (fields.bundleDigest !== this.#bundle.digest) {
        throw new DispatchError('GS_ERR_DISPATCH_DIGEST_MISMATCH', `the binding names bundle ${fields.bundleDigest}, but ${this.#bundle.digest} is loaded`);
      }
    } catch (e) {
      return blankResult(claimed.fields, 'refused', reasonOf(e), 'none', startedAt, this.#now());
    }
    return this.#call(fields, startedAt);
  }

  /** Kill every target still running (and, with `own` groups, their children); no run starts after this. */
  kill(): void {
    this.#killed = true;
    for (const child of this.#children) killTree(child, this.#options.targetGroup !== 'inherit');
    this.#children.clear();
  }

  async #call(fields: BindingFields, startedAt: number): Promise<LoaderResult> {
    const target = this.#bundle.metadata.target;
    const args = Object.freeze([...(fields.args ?? target?.args ?? [])]);
    const track: RunTrack = { active: true, lastStart: undefined, failure: undefined, last: undefined, waiting: [] };
    const ctx: DispatchContext = Object.freeze({
      dispatchId: fields.dispatchId,
      run: fields.run,
      target: this.#targetPath === null || target === null ? null : Object.freeze({ path: this.#targetPath, args: Object.freeze([...target.args]) }),
      args,
      spawnTarget: (next?: readonly string[]) => this.#spawn(track, next ?? args),
      log: (message: string) => {
        try {
          this.#options.log?.(String(message).slice(0, MAX_LOG_CHARS));
        } catch {
          // A failing log sink never fails the run.
        }
      },
    });

    let threw = false;
    let thrown: unknown;
    try {
      await this.#entry(ctx);
    } catch (e) {
      threw = true;
      thrown = e;
    }
    track.active = false;
    await Promise.allSettled(track.waiting);

    const startFailed = track.lastStart === 'failed';
    const outcome = startFailed ? 'start-failed' : threw ? 'code-failed' : 'ran';
    const reason = startFailed ? reasonText(track.failure) : threw ? reasonText(thrown) : null;
    const last = startFailed ? undefined : track.last;
    return blankResult(fields, outcome, reason, track.lastStart ?? 'none', startedAt, this.#now(), last);
  }

  #spawn(track: RunTrack, args: readonly string[]): Promise<TargetRunResult> {
    if (!track.active || this.#killed) return Promise.reject(new DispatchError('GS_ERR_DISPATCH_LOADER_FAILED', 'spawnTarget() after the run ended'));
    const file = this.#targetPath;
    if (file === null) return Promise.reject(new DispatchError('GS_ERR_DISPATCH_MALFORMED', 'this bundle has no target program'));
    if (!Array.isArray(args) || args.length > MAX_ARGS || !args.every((a) => typeof a === 'string' && !a.includes('\0'))) {
      return Promise.reject(new DispatchError('GS_ERR_DISPATCH_MALFORMED', 'spawnTarget() arguments must be strings without NUL'));
    }
    const own = this.#options.targetGroup !== 'inherit';
    const cap = this.#options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    track.last = undefined;
    const done = new Promise<TargetRunResult>((resolve, reject) => {
      const fail = (e: unknown) => {
        track.lastStart = 'failed';
        track.failure = e;
        reject(new DispatchError('GS_ERR_DISPATCH_LOADER_FAILED', `the target program did not start: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
      };
      let child: ChildProcess;
      try {
        child = spawn(file, [...args], { cwd: this.#job.workDir, stdio: ['ignore', 'pipe', 'pipe'], detached: own, windowsHide: true });
      } catch (e) {
        fail(e);
        return;
      }
      const stdout = new OutputCapture(cap);
      const stderr = new OutputCapture(cap);
      let spawned = false;
      let settled = false;
      child.once('spawn', () => {
        spawned = true;
        track.lastStart = 'started';
        if (this.#killed) killTree(child, own);
        else this.#children.add(child);
        try {
          this.#options.spawned?.(child.pid ?? 0);
        } catch {
          // Progress only.
        }
      });
      child.once('error', (e) => {
        if (spawned || settled) return;
        settled = true;
        fail(e);
      });
      child.stdout?.on('data', (c: Uint8Array) => stdout.push(c));
      child.stderr?.on('data', (c: Uint8Array) => stderr.push(c));
      child.once('close', (code, signal) => {
        this.#children.delete(child);
        if (settled) return;
        settled = true;
        const result: TargetRunResult = Object.freeze({
          exitCode: code,
          signal: signal ?? null,
          stdout: stdout.finish(),
          stderr: stderr.finish(),
          stdoutBytes: stdout.bytes(),
          stderrBytes: stderr.bytes(),
          truncated: stdout.truncated || stderr.truncated,
        });
        track.last = result;
        resolve(result);
      });
    });
    track.waiting.push(done.catch(() => undefined));
    return done;
  }
}

/** A reason for a report: the text of what was thrown. */
function reasonText(e: unknown): string {
  if (e instanceof DispatchError && e.code !== 'GS_ERR_DISPATCH_LOADER_FAILED') return e.code;
  return reasonOf(e instanceof DispatchError ? e.message : e);
}

/** SIGKILL a target: its whole process group when it leads one. */
function killTree(child: ChildProcess, group: boolean): void {
  const pid = child.pid;
  if (pid === undefined) return;
  try {
    if (group) process.kill(-pid, 'SIGKILL');
    else child.kill('SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * Import an ES module from its bytes through a `data:` URL: the code exists
 * only in this process's memory, never as a file (design, system 4; the
 * seed keeps the distributed code's executable off the endpoint's disk).
 * Node caches a module per URL, so the same code imported twice in one
 * process is one module instance.
 */
async function importFromMemory(code: Uint8Array): Promise<DistributedCode> {
  const url = `data:text/javascript;base64,${Buffer.from(code.buffer, code.byteOffset, code.byteLength).toString('base64')}`;
  const mod = (await import(/* @vite-ignore */ url)) as { default?: unknown };
  if (typeof mod.default !== 'function') throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', 'the distributed code has no default export function');
  return mod.default as DistributedCode;
}

/** True when `inner` is `root` or below it. */
function within(root: string, inner: string): boolean {
  const rel = path.relative(root, inner);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Write the target program at `workDir/<target.path>`: each directory on the
 * way is created or, when it is a symlink, must resolve inside the work
 * directory; the file is written under a temporary name and renamed into
 * place, so a symlink already at the final name is replaced, never written
 * through. The mode keeps only permission bits (no set-id, no sticky).
 * Throws `DispatchError` `GS_ERR_DISPATCH_UNSAFE_PATH` for an escape; other
 * I/O errors as they are.
 */
async function writeTarget(workDir: string, target: BundleTarget, bytes: Uint8Array): Promise<string> {
  const unsafe = (why: string) => new DispatchError('GS_ERR_DISPATCH_UNSAFE_PATH', `target path "${target.path}": ${why}`);
  const parts = target.path.split('/');
  if (path.isAbsolute(target.path) || parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0') || p.includes('\\'))) throw unsafe('must be a relative path without "." or ".." parts');
  // Only the agent's user may change what is on the way (the walk below cannot stop a racing writer).
  await fs.mkdir(workDir, { recursive: true, mode: 0o700 });
  const root = await fs.realpath(workDir);
  let dir = root;
  for (const part of parts.slice(0, -1)) {
    const next = path.join(dir, part);
    let st = await fs.lstat(next).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (st === undefined) {
      await fs.mkdir(next).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      st = await fs.lstat(next);
    }
    if (st.isSymbolicLink()) {
      const real = await fs.realpath(next);
      if (!within(root, real)) throw unsafe('a directory on the way is a symlink out of the work directory');
      dir = real;
    } else if (st.isDirectory()) {
      dir = next;
    } else {
      throw unsafe(`"${part}" is not a directory`);
    }
  }
  if (!within(root, await fs.realpath(dir))) throw unsafe('leaves the work directory');
  const final = path.join(dir, parts[parts.length - 1]!);
  const tmp = `${final}.gatesock-${randomBytes(6).toString('hex')}.tmp`;
  try {
    await fs.writeFile(tmp, bytes, { mode: 0o600, flag: 'wx' });
    await fs.chmod(tmp, target.mode & 0o777);
    await fs.rename(tmp, final);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  return final;
}
