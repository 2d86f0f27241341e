/**
 * The dispatch center (the seed's 配付管理サーバ): signs bundles, sends
 * orders to agents in canary waves with a concurrency limit, issues a fresh
 * evidence value per agent and per run, verifies every report against what
 * its store says it issued, and logs it all.
 *
 * One attempt (one target, one connection), top to bottom in
 * {@link DispatchCenter}'s `#attempt`:
 *
 * ```
 * connect ─▶ read hello (MSID = the target's; verify + ack every pending report)
 *        ─▶ [target already issued before: wait a grace time for its report]
 *        ─▶ fresh evidence stored ─▶ log `issued` (hash only) ─▶ send run/rerun
 *        ─▶ serve fetch ─▶ accepted ─▶ report ─▶ checkReport ─▶ record ─▶ ack ─▶ close
 * ```
 *
 * Every target's state changes only through `nextTargetState` (target.ts,
 * with the diagram); everything a restart needs is written to the store
 * before the step that depends on it (the evidence before the order).
 */
import { EventEmitter } from 'eventemitter3';
import { ConfigError, DispatchError, GatesockError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import type { IdentityKey } from '../../../session/index.js';
import {
  DispatchChannel,
  EvidenceLog,
  MAX_TARGET_ARGS,
  MAX_TARGET_ARGS_TOTAL_BYTES,
  MAX_TARGET_ARG_BYTES,
  checkReport,
  createBundle,
  decodeBundle,
  decodeReport,
  evidenceHash,
  fromBase64url,
  newDispatchId,
  newEvidence,
  signBinding,
  verifyBundle,
  type Bundle,
  type BundleInput,
  type BundleMetadata,
  type ChannelMessage,
  type Digest,
  type LogKind,
  type ReportExpectation,
  type ReportFields,
} from '../wire/index.js';
import { sameMsid, type AgentConnector, type AgentRef } from './connector.js';
import { Inbox, isEnd, type InboxEnd } from './inbox.js';
import { DirectoryBundleRepository, MemoryBundleRepository, type BundleRepository } from './repository.js';
import { SqliteDispatchStore } from './sqlite-store.js';
import { MemoryDispatchStore, definedOnly, runFinished, type DispatchStore, type StoredDispatchOptions, type StoredRun, type StoredTarget, type TargetKey, type TargetPatch } from './store.js';
import { isFinalTargetState, isTargetSuccess, nextTargetState, retryDelay, type TargetEvent, type TargetState } from './target.js';
import { DEFAULT_FAILURE_THRESHOLD, DEFAULT_WAVES, checkWaveSpec, planWaves, waveOf, waveStops } from './waves.js';

/**
 * Defaults of {@link DispatchOptions}.
 * @public
 */
export const DISPATCH_DEFAULTS = Object.freeze({
  concurrency: 64,
  waves: DEFAULT_WAVES,
  failureThreshold: DEFAULT_FAILURE_THRESHOLD,
  retries: 3,
  backoffMs: 1_000,
  maxBackoffMs: 30_000,
  connectTimeoutMs: 15_000,
  inlineMaxBytes: 1024 * 1024,
  /** Added to the bundle's `timeoutMs` to get the report wait when `timeoutMs` is not given. */
  reportMarginMs: 10_000,
  /** How long a re-attempt waits for the report of an order issued before, before issuing a new one. */
  reissueGraceMs: 2_000,
});

/**
 * What to dispatch, to whom, and how.
 * @public
 */
export interface DispatchOptions {
  /** Digest of a bundle this center created or added. */
  bundle: Digest;
  /** The agents; each MSID once. */
  agents: readonly AgentRef[];
  /** Most agents worked on at once in this dispatch. Default 64. */
  concurrency?: number;
  /** Canary waves: whole counts or fractions of the fleet; the rest is one last wave. Default `[1, 0.1]`. */
  waves?: readonly number[];
  /** A wave whose failure rate is above this stops the dispatch (the rest `skipped`). Default 0.2. */
  failureThreshold?: number;
  /** Attempts after the first for an agent that cannot be reached or drops the connection. Default 3. */
  retries?: number;
  /** First retry delay, ms (doubles each time, with jitter). Default 1000. */
  backoffMs?: number;
  /** Largest retry delay, ms. Default 30 000. */
  maxBackoffMs?: number;
  /** How long to wait for the report after the order, ms. Default: the bundle's `timeoutMs` + 10 000. */
  timeoutMs?: number;
  /** How long to wait for a connection and the agent's hello, ms. Default 15 000. */
  connectTimeoutMs?: number;
  /** Bundles up to this size travel inline with the order; bigger ones the agent fetches. Default 1 MiB. */
  inlineMaxBytes?: number;
  /** Target arguments; `null` or absent: the bundle's. */
  args?: readonly string[] | null;
}

/**
 * One target's result, as events and status give it: its store row
 * without the evidence, the report and the certificate. `reason` says why
 * it failed, gave up or was skipped (`wrong-evidence`, `offline: …`,
 * `canary-stopped`, …), or for a verified one the last note on its way
 * (a retry, a re-issue), or null.
 * @public
 */
export type TargetResult = Pick<StoredTarget, 'dispatchId' | 'run' | 'msid' | 'pcid' | 'wave' | 'state' | 'attempts' | 'outcome' | 'exitCode' | 'signal' | 'reason'>;

/**
 * A failed verification (or other refused input) the center recorded.
 * @public
 */
export interface VerificationFailureRecord {
  /** The dispatch the input claimed, or null when it could not be read. */
  readonly dispatchId: string | null;
  /** The run the input claimed, or null when it could not be read. */
  readonly run: number | null;
  /** The agent the input came from. */
  readonly msid: string;
  /** Why it was refused (the verification failure's code). */
  readonly reason: string;
  /** What was wrong, in words. */
  readonly message: string;
  /** When it was recorded, ms since the epoch. */
  readonly at: number;
}

/** A finished wave. @public */
export interface WaveSummary {
  /** The dispatch. */
  readonly dispatchId: string;
  /** The run number (1 for the first run). */
  readonly run: number;
  /** The wave's index in the run's planned waves, from 0. */
  readonly index: number;
  /** How many targets the wave holds. */
  readonly size: number;
  /** How many of them ended without a verified success. */
  readonly failures: number;
  /** Whether this wave stopped the run. */
  readonly stopped: boolean;
}

/** How far a run is. @public */
export interface DispatchProgress {
  /** The dispatch. */
  readonly dispatchId: string;
  /** The run number (1 for the first run). */
  readonly run: number;
  /** Targets in a final state. */
  readonly done: number;
  /** How many targets the run has. */
  readonly total: number;
  /** How many of them have a verified report so far. */
  readonly verified: number;
}

/** A run's end. @public */
export interface DispatchSummary {
  /** The dispatch. */
  readonly dispatchId: string;
  /** The run number (1 for the first run). */
  readonly run: number;
  /** `done`, `stopped` (canary), or `running` when the center closed first (resume it later). */
  readonly state: StoredRun['state'];
  /** How many targets the run has. */
  readonly total: number;
  /** How many targets ended in each state. */
  readonly counts: Readonly<Record<TargetState, number>>;
  /** Each target's result. */
  readonly targets: readonly TargetResult[];
}

/** Events of a {@link DispatchRun}. @public */
export interface DispatchRunEvents {
  /** A target reached a final state. */
  result: (result: TargetResult) => void;
  /** A failed verification concerning this run was recorded. */
  failure: (failure: VerificationFailureRecord) => void;
  /** A wave finished. */
  wave: (wave: WaveSummary) => void;
  /** After each target that reaches a final state: the counts so far. */
  progress: (progress: DispatchProgress) => void;
  /** The run ended (every target final, or stopped by a failing wave). */
  done: (summary: DispatchSummary) => void;
}

/**
 * One run of a dispatch being carried out: events as targets finish, and
 * `done` when all have (or the center closed).
 * @public
 */
export class DispatchRun extends EventEmitter<DispatchRunEvents> {
  /** The dispatch this run belongs to. */
  readonly dispatchId: string;
  /** The run number (1 for the first run, one more for each re-run). */
  readonly run: number;
  /** Resolves with the summary when the run ends; never rejects. */
  readonly done: Promise<DispatchSummary>;

  /** @internal Made by {@link DispatchCenter.dispatch}, `rerun` and `resume` only. */
  constructor(dispatchId: string, run: number) {
    super();
    this.dispatchId = dispatchId;
    this.run = run;
    this.done = new Promise((resolve) => settle.set(this, resolve));
  }
}

/** How the center settles a run's `done` (kept off the public class). */
const settle = new WeakMap<DispatchRun, (s: DispatchSummary) => void>();

function finish(run: DispatchRun, summary: DispatchSummary): void {
  settle.get(run)?.(summary);
  settle.delete(run);
}

/** One run's state as {@link DispatchCenter.status} gives it. @public */
export interface RunStatus {
  /** The run number (1 for the first run). */
  readonly run: number;
  /** The target arguments of this run; `null`: the bundle's. */
  readonly args: readonly string[] | null;
  /** Whether the run is still running, done, or stopped by a failing wave. */
  readonly state: StoredRun['state'];
  /** The wave being worked on (index into `waves`). */
  readonly wave: number;
  /** Planned wave sizes. */
  readonly waves: readonly number[];
  /** When the run started, ms since the epoch. */
  readonly createdAt: number;
  /** When the run ended, ms since the epoch; null while it runs. */
  readonly endedAt: number | null;
  /** How many targets are in each state. */
  readonly counts: Readonly<Record<TargetState, number>>;
  /** Each target's result so far. */
  readonly targets: readonly TargetResult[];
}

/** A dispatch's state. @public */
export interface DispatchStatus {
  /** The dispatch ID (32 hex). */
  readonly id: string;
  /** Digest of the bundle dispatched. */
  readonly bundle: Digest;
  /** When the dispatch was created, ms since the epoch. */
  readonly createdAt: number;
  /** The options it runs with, defaults filled in. */
  readonly options: StoredDispatchOptions;
  /** Its runs, first run first. */
  readonly runs: readonly RunStatus[];
  /** Refused inputs (failed verifications) recorded for it. */
  readonly failures: readonly VerificationFailureRecord[];
}

/** Events of a {@link DispatchCenter}. @public */
export interface DispatchCenterEvents {
  /** Any failed verification the center recorded, whichever dispatch it names. */
  failure: (failure: VerificationFailureRecord) => void;
  /** Trouble that stops nothing (an evidence-log write failed, …). */
  error: (error: Error) => void;
}

/**
 * Options of {@link DispatchCenter.open}.
 * @public
 */
export interface DispatchCenterOptions {
  /** The center's signing key: bundles and bindings are signed with it, agents pin its public half. */
  key: IdentityKey;
  /** A store, or a SQLite file path to open one on. Default: a {@link MemoryDispatchStore}. */
  store?: DispatchStore | string;
  /**
   * Where bundles live. Default: with `store` a path, a
   * {@link DirectoryBundleRepository} in the folder `<store>.bundles` beside
   * it (so a restarted center still has them); else a {@link MemoryBundleRepository}.
   */
  repository?: BundleRepository;
  /** How agents are reached. */
  connector: AgentConnector;
  /** Append the evidence log to this file. */
  logPath?: string;
  /** Clock, ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /** Source of retry jitter in [0, 1). Default `Math.random`. */
  random?: () => number;
  /** How long a re-attempt waits for the report of an order issued before, before it issues a new one (ms). Default 2000. */
  reissueGraceMs?: number;
}

/** The end of one attempt. */
type AttemptEnd =
  | { kind: 'verified' }
  | { kind: 'rejected'; reason: string }
  | { kind: 'lost'; reason: string }
  | { kind: 'gone' } // the target moved on without this attempt (final already) — nothing to do
  | { kind: 'aborted' };

/** A run in progress in this process. */
interface Runtime {
  readonly handle: DispatchRun;
  readonly dispatchId: string;
  readonly run: number;
  readonly options: StoredDispatchOptions;
  readonly args: readonly string[] | null;
  readonly bundle: { digest: Digest; timeoutMs: number; size: number; expiresAt: number };
  /** The encoded bundle when it travels inline (one copy per run, never per target). */
  inline: Uint8Array | undefined;
  readonly total: number;
  done: number;
  verified: number;
  /** The wave being worked on. */
  wave: number;
  /** Targets of the current wave not final yet. */
  open: number;
  active: number;
  readonly ready: { msid: string; pcid: string }[];
  readonly timers: Set<ReturnType<typeof setTimeout>>;
  readonly channels: Set<DispatchChannel>;
  /**
   * The rows of this run's unfinished targets, kept in step with every
   * write this center makes (the store is written first, then the copy), so
   * that the state machine reads memory instead of the store. A final row
   * is dropped once counted.
   */
  readonly rows: Map<string, StoredTarget>;
  waveDone: (() => void) | undefined;
  aborted: boolean;
}

/**
 * What one connection may ask of the center beyond its hello: each report
 * is verified and recorded, each fetch sends the bundle, so both are
 * bounded (an honest agent needs one of each, a few more after a retry).
 */
const ATTEMPT_BUDGET = Object.freeze({ reports: 16, fetches: 3 });
type AttemptBudget = { reports: number; fetches: number };

/** A verified report of a superseded order of a target not final yet: neither recorded nor acked until its fate is known. */
interface HeldReport {
  readonly key: TargetKey;
  readonly evidence: string;
  readonly encoded: string;
  readonly certificate: string;
  readonly fields: ReportFields;
}

/** What became of one received report. */
interface ReportReceipt {
  readonly ok: boolean;
  /** It names the target of this attempt (or could not be read). */
  readonly mine: boolean;
  readonly reason?: string;
  readonly held?: HeldReport;
}

/** How long an ack may wait for the agent to take it before the connection is given up. */
const ACK_SEND_MS = 10_000;

/**
 * Send with a time limit: an agent that stops reading must not hold a slot
 * for ever. On time-out or failure the channel is closed and false returned.
 */
async function sendWithin(channel: DispatchChannel, m: ChannelMessage, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sent = channel.send(m).then(
    () => true,
    () => false,
  );
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const ok = await Promise.race([sent, late]);
  clearTimeout(timer);
  if (!ok) {
    // Disconnecting first makes the blocked send give up, so the close that waits for it can finish.
    void channel.sock.disconnect();
    void channel.close();
  }
  return ok;
}

/** MSIDs per `dispatch` log entry (~70 bytes each: about 280 KiB, well under the log's 1 MiB line limit). */
const LOG_AGENTS_PER_ENTRY = 4096;

/** After an agent's `error` answer to an order, how long to wait for the signed `refused` report that may follow. */
const REFUSED_REPORT_WAIT_MS = 2_000;

/** MSIDs are kept in canonical form: `MSID-` + upper-case hex. */
function canonical(msid: string): string {
  return msid.toUpperCase();
}

const MSID_RE = /^MSID-[0-9A-F]{64}$/;

/**
 * The dispatch center. Open one with {@link DispatchCenter.open}.
 *
 * @example
 * ```ts
 * const center = await DispatchCenter.open({ key, store: 'center.sqlite', connector: new RelayAgentConnector(relay), logPath: 'evidence.log' });
 * const bundle = await center.createBundle({ name: 'fix', version: 1, code: 'export default async (ctx) => { await ctx.spawnTarget(); }' });
 * const run = center.dispatch({ bundle: bundle.digest, agents });
 * run.on('progress', (p) => console.log(`${p.done}/${p.total}`));
 * const summary = await run.done;
 * ```
 * @public
 */
export class DispatchCenter extends EventEmitter<DispatchCenterEvents> {
  /** The store (the one given, or the one opened on the given path). */
  readonly store: DispatchStore;
  /** The repository agents fetch bundles from. */
  readonly repository: BundleRepository;
  readonly #key: IdentityKey;
  readonly #publicKey: Uint8Array;
  readonly #connector: AgentConnector;
  readonly #ownsStore: boolean;
  readonly #log: EvidenceLog | undefined;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #reissueGraceMs: number;
  readonly #runtimes = new Map<string, Runtime>();
  #logQueue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(options: DispatchCenterOptions, store: DispatchStore, ownsStore: boolean, log: EvidenceLog | undefined) {
    super();
    this.#key = options.key;
    this.#publicKey = options.key.publicKey;
    this.#connector = options.connector;
    this.store = store;
    this.#ownsStore = ownsStore;
    this.repository =
      options.repository ?? (typeof options.store === 'string' && options.store !== ':memory:' ? new DirectoryBundleRepository(`${options.store}.bundles`) : new MemoryBundleRepository());
    this.#log = log;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#reissueGraceMs = options.reissueGraceMs ?? DISPATCH_DEFAULTS.reissueGraceMs;
  }

  /**
   * Open a center. With `store` a path, opens (or creates) the SQLite store
   * there; the center then owns it and closes it in {@link DispatchCenter.close}.
   * Nothing resumes by itself: call {@link DispatchCenter.resume}.
   */
  static async open(options: DispatchCenterOptions): Promise<DispatchCenter> {
    checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
    checkOption(typeof options.key === 'object' && options.key !== null && typeof options.key.sign === 'function', 'key', 'must be the center IdentityKey');
    checkOption(typeof options.connector === 'object' && options.connector !== null && typeof options.connector.connect === 'function', 'connector', 'must be an AgentConnector');
    checkOption(options.logPath === undefined || (typeof options.logPath === 'string' && options.logPath.length > 0), 'logPath', 'must be a file path');
    checkOption(options.reissueGraceMs === undefined || (Number.isSafeInteger(options.reissueGraceMs) && options.reissueGraceMs >= 0), 'reissueGraceMs', 'must be a whole number of ms ≥ 0');
    const ownsStore = typeof options.store === 'string';
    const store = typeof options.store === 'string' ? await SqliteDispatchStore.open(options.store) : (options.store ?? new MemoryDispatchStore());
    let log: EvidenceLog | undefined;
    try {
      if (options.logPath !== undefined) log = await EvidenceLog.open(options.logPath, options.key, options.now ? { now: options.now } : undefined);
    } catch (err) {
      if (ownsStore) await store.close();
      throw err;
    }
    return new DispatchCenter(options, store, ownsStore, log);
  }

  /** Sign a new bundle with the center key, store it in the repository, and log it. */
  async createBundle(input: BundleInput): Promise<Bundle> {
    this.#checkOpen();
    const bundle = createBundle(input.now === undefined ? { ...input, now: this.#now() } : input, this.#key);
    await this.#keep(bundle);
    return bundle;
  }

  /**
   * Add an encoded bundle signed by this center's key (made elsewhere, or
   * by an earlier center with the same key). Rejects with `DispatchError`
   * (`GS_ERR_DISPATCH_MALFORMED`, `…_DIGEST_MISMATCH`, `…_BAD_SIGNATURE`,
   * `…_EXPIRED`) when it does not decode or verify.
   */
  async addBundle(bytes: Uint8Array): Promise<Bundle> {
    this.#checkOpen();
    const bundle = decodeBundle(bytes);
    verifyBundle(bundle, { centerKey: this.#publicKey, now: this.#now() });
    await this.#keep(bundle);
    return bundle;
  }

  /**
   * Start a dispatch. Throws `DispatchError` `GS_ERR_DISPATCH_UNKNOWN_BUNDLE`
   * for a bundle this center does not have, `ConfigError` for bad options.
   * The dispatch and its targets are in the store before this returns.
   */
  dispatch(options: DispatchOptions): DispatchRun {
    this.#checkOpen();
    checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
    const stored = this.#bundleInfo(options.bundle);
    if (stored.expiresAt <= this.#now()) throw new DispatchError('GS_ERR_DISPATCH_EXPIRED', `bundle ${stored.digest} expired at ${new Date(stored.expiresAt).toISOString()}; agents would refuse it`);
    const agents = checkAgents(options.agents);
    const opts = storedOptions(options);
    const args = checkArgs(options.args);
    const id = newDispatchId();
    const at = this.#now();
    const waves = planWaves(agents.length, opts.waves);
    this.store.createDispatch(
      { id, bundle: stored.digest, options: opts, createdAt: at },
      { args, waves, createdAt: at },
      agents.map((a, i) => ({ msid: a.msid, pcid: a.pcid, wave: waveOf(i, waves) })),
    );
    this.#logDispatch({ id, run: 0, bundle: stored.digest, options: opts, args }, agents.map((a) => a.msid));
    return this.#start(id, 0);
  }

  /**
   * Re-run a dispatch's loaded target with new arguments (a new run number,
   * a new evidence value per agent, the `rerun` order: the agent does not
   * fetch the bundle again). `agents` (MSIDs) default to every agent whose
   * run 0 verified as `ran`. Throws `DispatchError`
   * `GS_ERR_DISPATCH_UNKNOWN_DISPATCH` for an unknown dispatch or an agent
   * not in it, `GS_ERR_DISPATCH_EXPIRED` once the bundle expired,
   * `ConfigError` while another run of it is still going or when no agent
   * is left to re-run.
   */
  rerun(dispatchId: string, options: { args: readonly string[]; agents?: readonly string[] }): DispatchRun {
    this.#checkOpen();
    const d = this.store.getDispatch(dispatchId);
    if (!d) throw new DispatchError('GS_ERR_DISPATCH_UNKNOWN_DISPATCH', `no dispatch ${dispatchId}`);
    checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
    const args = checkArgs(options.args);
    checkOption(args !== null, 'args', 'must be an array of strings');
    for (const r of this.store.listRuns(dispatchId)) {
      if (r.state === 'running') throw new ConfigError('GS_ERR_INVALID_OPTION', `run ${r.run} of dispatch ${dispatchId} is still running; re-run after it ends`);
    }
    const first = this.store.listTargets(dispatchId, 0);
    let chosen: StoredTarget[];
    if (options.agents === undefined) chosen = first.filter((t) => t.state === 'verified' && t.outcome === 'ran');
    else {
      checkOption(Array.isArray(options.agents), 'agents', 'must be an array of MSIDs');
      const byMsid = new Map(first.map((t) => [t.msid, t]));
      chosen = options.agents.map((m) => {
        const t = typeof m === 'string' ? byMsid.get(canonical(m)) : undefined;
        if (!t) throw new DispatchError('GS_ERR_DISPATCH_UNKNOWN_DISPATCH', `agent ${String(m)} is not part of dispatch ${dispatchId}`);
        return t;
      });
      if (new Set(chosen.map((t) => t.msid)).size !== chosen.length) throw new ConfigError('GS_ERR_INVALID_OPTION', 'agents must list each MSID once');
    }
    if (chosen.length === 0) throw new ConfigError('GS_ERR_INVALID_OPTION', `no agent of dispatch ${dispatchId} ran it (verified, outcome ran); name the agents to re-run`);
    const bundle = this.#bundleInfo(d.bundle);
    if (bundle.expiresAt <= this.#now()) throw new DispatchError('GS_ERR_DISPATCH_EXPIRED', `bundle ${bundle.digest} expired at ${new Date(bundle.expiresAt).toISOString()}; agents would refuse the re-run`);
    const at = this.#now();
    const waves = planWaves(chosen.length, d.options.waves);
    const n = this.store.createRun(dispatchId, { args, waves, createdAt: at }, chosen.map((t, i) => ({ msid: t.msid, pcid: t.pcid, wave: waveOf(i, waves) })));
    this.#logDispatch({ id: dispatchId, run: n, bundle: d.bundle, options: d.options, args }, chosen.map((t) => t.msid));
    return this.#start(dispatchId, n);
  }

  /** Where a dispatch is, from the store. Throws `GS_ERR_DISPATCH_UNKNOWN_DISPATCH` for an unknown one. */
  status(dispatchId: string): DispatchStatus {
    this.#checkOpen();
    const d = this.store.getDispatch(dispatchId);
    if (!d) throw new DispatchError('GS_ERR_DISPATCH_UNKNOWN_DISPATCH', `no dispatch ${dispatchId}`);
    return {
      id: d.id,
      bundle: d.bundle,
      createdAt: d.createdAt,
      options: d.options,
      runs: this.store.listRuns(dispatchId).map((r) => ({
        run: r.run,
        args: r.args,
        state: r.state,
        wave: r.wave,
        waves: r.waves,
        createdAt: r.createdAt,
        endedAt: r.endedAt,
        counts: this.store.countTargets(dispatchId, r.run),
        targets: this.store.listTargets(dispatchId, r.run).map(resultOf),
      })),
      failures: this.store.listFailures(dispatchId),
    };
  }

  /**
   * Carry on every run the store says is still running and this center is
   * not running yet (after a restart). Targets that were in flight when the
   * last center stopped are tried again: the agent's hello brings the
   * report it kept; if none comes, the order is issued again with a fresh
   * evidence value and the old one is superseded.
   */
  resume(): DispatchRun[] {
    this.#checkOpen();
    const out: DispatchRun[] = [];
    for (const d of this.store.listDispatches({ unfinished: true })) {
      for (const r of this.store.listRuns(d.id)) {
        if (r.state !== 'running' || this.#runtimes.has(`${d.id}/${r.run}`)) continue;
        out.push(this.#start(d.id, r.run));
      }
    }
    return out;
  }

  /**
   * Stop working: connections close, timers stop, runs in progress resolve
   * `done` with state `running` (their targets stay as they were in the
   * store, for {@link DispatchCenter.resume}); the log is closed, and the
   * store too when the center opened it.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const runtimes = [...this.#runtimes.values()];
    for (const rt of runtimes) this.#abort(rt);
    for (const rt of runtimes) {
      for (const c of rt.channels) {
        void c.sock.disconnect();
        void c.close();
      }
    }
    for (const rt of runtimes) finish(rt.handle, this.#summary(rt));
    this.#runtimes.clear();
    await this.#logQueue;
    await this.#log?.close();
    if (this.#ownsStore) await this.store.close();
  }

  // ---- bundles ----

  async #keep(bundle: Bundle): Promise<void> {
    const digest = await this.repository.put(bundle.bytes);
    if (digest !== bundle.digest) throw new DispatchError('GS_ERR_DISPATCH_DIGEST_MISMATCH', `the repository stored ${bundle.digest} as ${digest}`);
    const m = bundle.metadata;
    this.store.putBundle({ digest, name: m.name, version: m.version, size: bundle.bytes.length, metadata: JSON.stringify(m), createdAt: this.#now() });
    this.#append('bundle', { digest, metadata: m as unknown as Record<string, unknown> });
  }

  #bundleInfo(digest: unknown): { digest: Digest; timeoutMs: number; size: number; expiresAt: number } {
    const b = typeof digest === 'string' ? this.store.getBundle(digest) : undefined;
    if (!b) throw new DispatchError('GS_ERR_DISPATCH_UNKNOWN_BUNDLE', `this center has no bundle ${String(digest)}; create or add it first`);
    const m = JSON.parse(b.metadata) as BundleMetadata;
    return { digest: b.digest, timeoutMs: m.timeoutMs, size: b.size, expiresAt: m.expiresAt };
  }

  // ---- runs ----

  #start(dispatchId: string, run: number): DispatchRun {
    const d = this.store.getDispatch(dispatchId)!;
    const r = this.store.getRun(dispatchId, run)!;
    const handle = new DispatchRun(dispatchId, run);
    const counts = this.store.countTargets(dispatchId, run);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const done = counts.verified + counts.failed + counts['gave-up'] + counts.skipped;
    const rt: Runtime = {
      handle,
      dispatchId,
      run,
      options: d.options,
      args: r.args,
      bundle: this.#bundleInfo(d.bundle),
      inline: undefined,
      total,
      done,
      verified: counts.verified,
      wave: r.wave,
      open: 0,
      active: 0,
      ready: [],
      timers: new Set(),
      channels: new Set(),
      rows: new Map(),
      waveDone: undefined,
      aborted: false,
    };
    this.#runtimes.set(`${dispatchId}/${run}`, rt);
    void this.#execute(rt, r.wave).catch((err: unknown) => {
      // A store failure: the run cannot go on in this process; it stays resumable.
      this.#emitError(err);
      this.#abort(rt);
      this.#runtimes.delete(`${dispatchId}/${run}`);
      finish(rt.handle, this.#summary(rt));
    });
    return handle;
  }

  async #execute(rt: Runtime, firstWave: number): Promise<void> {
    // One copy of the bundle for the whole run, when it travels inline.
    if (rt.bundle.size <= rt.options.inlineMaxBytes) {
      rt.inline = await this.repository.get(rt.bundle.digest);
      if (rt.inline === undefined) throw new DispatchError('GS_ERR_DISPATCH_UNKNOWN_BUNDLE', `the repository lost bundle ${rt.bundle.digest}`);
    }
    const waves = this.store.getRun(rt.dispatchId, rt.run)!.waves;
    for (let w = firstWave; w < waves.length; w++) {
      if (rt.aborted) return;
      this.store.updateRun(rt.dispatchId, rt.run, { wave: w });
      rt.wave = w;
      await this.#runWave(rt, w);
      if (rt.aborted) return;
      const targets = this.store.listTargets(rt.dispatchId, rt.run, { wave: w });
      const failures = targets.filter((t) => !isTargetSuccess(t)).length;
      const stop = w < waves.length - 1 && waveStops(failures, targets.length, rt.options.failureThreshold);
      rt.handle.emit('wave', { dispatchId: rt.dispatchId, run: rt.run, index: w, size: targets.length, failures, stopped: stop });
      if (stop) {
        for (const t of this.store.listTargets(rt.dispatchId, rt.run)) {
          if (t.wave > w && this.#transition(t, { kind: 'skip' }, { reason: 'canary-stopped', nextAttemptAt: null }) !== undefined) this.#finished(rt, t.msid);
        }
        this.#end(rt, 'stopped');
        return;
      }
    }
    this.#end(rt, 'done');
  }

  #end(rt: Runtime, state: 'done' | 'stopped'): void {
    const counts = this.store.countTargets(rt.dispatchId, rt.run);
    // Every target is final by now; `done` only if so (a store that says otherwise keeps the run resumable).
    const final = runFinished(counts) ? state : 'running';
    this.store.updateRun(rt.dispatchId, rt.run, final === 'running' ? {} : { state: final, endedAt: this.#now() });
    this.#runtimes.delete(`${rt.dispatchId}/${rt.run}`);
    const summary = this.#summary(rt);
    rt.handle.emit('done', summary);
    finish(rt.handle, summary);
  }

  #summary(rt: Runtime): DispatchSummary {
    const run = this.store.getRun(rt.dispatchId, rt.run);
    return {
      dispatchId: rt.dispatchId,
      run: rt.run,
      state: run?.state ?? 'running',
      total: rt.total,
      counts: this.store.countTargets(rt.dispatchId, rt.run),
      targets: this.store.listTargets(rt.dispatchId, rt.run).map(resultOf),
    };
  }

  /** Work one wave until each of its targets is final. */
  async #runWave(rt: Runtime, wave: number): Promise<void> {
    const now = this.#now();
    rt.open = 0;
    for (const t of this.store.listTargets(rt.dispatchId, rt.run, { wave })) {
      if (isFinalTargetState(t.state)) continue;
      rt.open++;
      rt.rows.set(t.msid, t);
      if (t.state === 'connecting' || t.state === 'issued' || t.state === 'accepted') {
        // In flight when the last center stopped.
        this.#transition(t, { kind: 'resume' }, { nextAttemptAt: now });
      }
      const row = rt.rows.get(t.msid)!;
      if (row.state === 'retry-wait' && row.nextAttemptAt !== null && row.nextAttemptAt > now) this.#later(rt, row, row.nextAttemptAt - now);
      else rt.ready.push({ msid: row.msid, pcid: row.pcid });
    }
    if (rt.open === 0) return;
    await new Promise<void>((resolve) => {
      rt.waveDone = resolve;
      this.#pump(rt);
    });
    rt.waveDone = undefined;
  }

  #later(rt: Runtime, t: { msid: string; pcid: string }, ms: number): void {
    const timer = setTimeout(() => {
      rt.timers.delete(timer);
      if (rt.aborted) return;
      rt.ready.push({ msid: t.msid, pcid: t.pcid });
      this.#pump(rt);
    }, ms);
    rt.timers.add(timer);
  }

  #pump(rt: Runtime): void {
    while (!rt.aborted && rt.active < rt.options.concurrency && rt.ready.length > 0) {
      const next = rt.ready.shift()!;
      rt.active++;
      void this.#runTarget(rt, next)
        .catch((err: unknown) => this.#emitError(err))
        .finally(() => {
          rt.active--;
          this.#pump(rt);
        });
    }
  }

  /** One attempt for one target, and what follows from its end. */
  async #runTarget(rt: Runtime, ref: { msid: string; pcid: string }): Promise<void> {
    const key: TargetKey = { dispatchId: rt.dispatchId, run: rt.run, msid: ref.msid };
    const row = this.#row(key);
    if (!row) return;
    if (isFinalTargetState(row.state)) {
      // Finished meanwhile (a pending report delivered on another connection).
      return;
    }
    if (this.#transition(row, { kind: 'start' }, { attempts: row.attempts + 1, nextAttemptAt: null }) === undefined) return;
    let end: AttemptEnd;
    try {
      end = await this.#attempt(rt, { ...row, state: 'connecting', attempts: row.attempts + 1 });
    } catch (err) {
      end = rt.aborted ? { kind: 'aborted' } : { kind: 'lost', reason: `internal: ${messageOf(err)}` };
      if (!rt.aborted) this.#emitError(err);
    }
    if (end.kind === 'aborted' || rt.aborted || end.kind === 'verified' || end.kind === 'gone') return;
    const cur = this.#row(key)!;
    if (isFinalTargetState(cur.state)) {
      // acceptReport already moved it (and counted it) — or another path finished it.
      return;
    }
    if (end.kind === 'rejected') {
      if (this.#transition(cur, { kind: 'rejected' }, { reason: end.reason }) !== undefined) this.#finished(rt, key.msid);
      return;
    }
    const retry = cur.attempts <= rt.options.retries;
    const delay = retry ? retryDelay(cur.attempts, rt.options.backoffMs, rt.options.maxBackoffMs, this.#random) : 0;
    const next = this.#transition(cur, { kind: 'lost', retry }, { reason: end.reason, nextAttemptAt: retry ? this.#now() + delay : null });
    if (next === 'retry-wait') this.#later(rt, cur, delay);
    else if (next === 'gave-up') this.#finished(rt, key.msid);
  }

  /** Count a target that reached a final state, and tell the listeners. */
  #finished(rt: Runtime, msid: string): void {
    const t = this.#row({ dispatchId: rt.dispatchId, run: rt.run, msid });
    rt.rows.delete(msid);
    if (!t) return;
    rt.done++;
    if (t.state === 'verified') rt.verified++;
    rt.handle.emit('result', resultOf(t));
    rt.handle.emit('progress', { dispatchId: rt.dispatchId, run: rt.run, done: rt.done, total: rt.total, verified: rt.verified });
    if (t.wave === rt.wave && --rt.open === 0) rt.waveDone?.();
  }

  /** Move a target through the state machine; returns the new state, or undefined when the event does not apply. */
  #transition(t: TargetKey & { state: TargetState }, event: TargetEvent, patch: TargetPatch = {}): TargetState | undefined {
    const cur = this.#row(t);
    if (!cur) return undefined;
    const next = nextTargetState(cur.state, event);
    if (next === undefined) return undefined;
    const at = this.#now();
    this.store.updateTarget(t, { ...patch, state: next }, at);
    this.#remember({ ...cur, ...definedOnly(patch), state: next, updatedAt: at });
    return next;
  }

  /**
   * A target's row: the running run's copy when there is one, else the
   * store's (then kept as the copy while the target is not final).
   */
  #row(key: TargetKey): StoredTarget | undefined {
    const rt = this.#runtimes.get(`${key.dispatchId}/${key.run}`);
    const kept = rt?.rows.get(key.msid);
    if (kept !== undefined) return kept;
    const row = this.store.getTarget(key);
    if (rt !== undefined && row !== undefined && !isFinalTargetState(row.state)) rt.rows.set(key.msid, row);
    return row;
  }

  /** Keep a row just written to the store as its run's copy (a final one until {@link DispatchCenter.#finished} counts it). */
  #remember(row: StoredTarget): void {
    this.#runtimes.get(`${row.dispatchId}/${row.run}`)?.rows.set(row.msid, row);
  }

  /** Drop the copy of a row the store changed in a way the center does not mirror (a reinstated evidence). */
  #forget(key: TargetKey): void {
    this.#runtimes.get(`${key.dispatchId}/${key.run}`)?.rows.delete(key.msid);
  }

  #abort(rt: Runtime): void {
    rt.aborted = true;
    for (const timer of rt.timers) clearTimeout(timer);
    rt.timers.clear();
    rt.ready.length = 0;
    rt.waveDone?.();
  }

  // ---- one attempt ----

  async #attempt(rt: Runtime, target: StoredTarget): Promise<AttemptEnd> {
    const o = rt.options;
    let sock;
    try {
      sock = await this.#connector.connect({ msid: target.msid, pcid: target.pcid }, { timeoutMs: o.connectTimeoutMs });
    } catch (err) {
      if (err instanceof DispatchError && err.code === 'GS_ERR_DISPATCH_WRONG_AGENT') return { kind: 'rejected', reason: 'wrong-agent' };
      return { kind: 'lost', reason: `offline: ${codeOf(err)}` };
    }
    if (rt.aborted) {
      void sock.disconnect();
      return { kind: 'aborted' };
    }
    const channel = new DispatchChannel(sock);
    rt.channels.add(channel);
    const inbox = new Inbox(channel);
    try {
      return await this.#converse(rt, target, channel, inbox);
    } finally {
      inbox.dispose();
      rt.channels.delete(channel);
      // Not awaited: a peer that never finishes its side would hold the slot for the socket's linger time.
      void channel.close();
    }
  }

  async #converse(rt: Runtime, target: StoredTarget, channel: DispatchChannel, inbox: Inbox): Promise<AttemptEnd> {
    const o = rt.options;
    const key: TargetKey = { dispatchId: rt.dispatchId, run: rt.run, msid: target.msid };
    const hello = await inbox.take(o.connectTimeoutMs);
    if (rt.aborted) return { kind: 'aborted' };
    if (isEnd(hello)) {
      if (isMalformedEnd(hello)) return this.#protocolFailure(key, hello.error.message);
      return { kind: 'lost', reason: hello.end === 'timeout' ? 'no-hello' : 'disconnected' };
    }
    if (hello.t !== 'hello') return this.#protocolFailure(key, `expected hello, got ${hello.t}`);
    if (!sameMsid(hello.agentMsid, target.msid)) {
      this.#recordFailure({ dispatchId: key.dispatchId, run: key.run, msid: target.msid, reason: 'wrong-agent', message: `the agent said hello as ${String(hello.agentMsid)}` });
      return { kind: 'rejected', reason: 'wrong-agent' };
    }
    // Reports the agent kept from connections that dropped (this dispatch or any other).
    const pending = Array.isArray(hello.pending) ? hello.pending.slice(0, 1024) : [];
    const held: { report?: HeldReport } = {};
    for (const p of pending) {
      const got = await this.#receiveReport(channel, (p as { report?: unknown } | null)?.report, hello.certificate, target.msid, key, false, held);
      if (rt.aborted) return { kind: 'aborted' };
      if (got.ok && got.mine) return { kind: 'verified' };
      if (got.held && got.mine) held.report = got.held;
      if (this.#isFinal(key)) return this.#endHeld(channel, held, finalEnd(this.#row(key)!));
    }
    const budget: AttemptBudget = { ...ATTEMPT_BUDGET };
    const cur = this.#row(key)!;
    if (cur.evidence !== null && this.#reissueGraceMs > 0) {
      // An order went out before and its report did not come with the hello:
      // give the agent a moment to send it before the order is replaced.
      const end = await this.#awaitReport(rt, channel, inbox, key, this.#reissueGraceMs, false, null, budget, held);
      if (end !== undefined) return this.#endHeld(channel, held, end);
    }
    if (rt.aborted) return { kind: 'aborted' };

    // Issue: fresh evidence, stored (and the old one superseded) before the order leaves.
    const before = this.#row(key)!;
    // Finished meanwhile (a report of this target verified on another connection): issue nothing.
    if (nextTargetState(before.state, { kind: 'issue' }) === undefined) return this.#endHeld(channel, held, finalEnd(before));
    const evidence = newEvidence();
    const issuedAt = this.#now();
    // The `issue` transition (checked just above) is written with the evidence, in one step.
    const patch: TargetPatch = before.evidence !== null ? { state: 'issued', reason: `reissued after ${before.reason ?? 'an unanswered order'}` } : { state: 'issued' };
    this.store.issueEvidence(key, evidence, issuedAt, patch);
    this.#remember({ ...before, ...patch, evidence, issuedAt, updatedAt: issuedAt });
    this.#append('issued', { dispatch: key.dispatchId, run: key.run, agent: key.msid, evidence: evidenceHash(evidence) });
    const reportWait = o.timeoutMs ?? rt.bundle.timeoutMs + DISPATCH_DEFAULTS.reportMarginMs;
    const binding = signBinding(
      {
        dispatchId: key.dispatchId,
        run: key.run,
        agentMsid: key.msid,
        bundleDigest: rt.bundle.digest,
        evidence,
        args: rt.args === null ? null : [...rt.args],
        issuedAt,
        expiresAt: issuedAt + reportWait + 10 * 60_000,
      },
      this.#key,
    );
    const order: ChannelMessage =
      rt.run > 0
        ? { t: 'rerun', binding: binding.encoded }
        : rt.inline !== undefined
          ? { t: 'run', binding: binding.encoded, inline: true, body: rt.inline }
          : { t: 'run', binding: binding.encoded, inline: false };
    if (!(await sendWithin(channel, order, Math.max(o.connectTimeoutMs, reportWait)))) return { kind: 'lost', reason: 'disconnected' };
    return this.#endHeld(channel, held, (await this.#awaitReport(rt, channel, inbox, key, reportWait, true, before.evidence, budget, held)) ?? { kind: 'lost', reason: 'timeout' });
  }

  /**
   * The attempt ends with `end`. A report still held (see
   * {@link DispatchCenter.#receiveReport}) is recorded `stale` and acked
   * when its target finished otherwise; when the attempt was only lost it
   * stays with the agent (unacked), which brings it to the next hello.
   */
  async #endHeld(channel: DispatchChannel, held: { report?: HeldReport }, end: AttemptEnd): Promise<AttemptEnd> {
    const h = held.report;
    held.report = undefined;
    if (h !== undefined && !channel.closed && this.#isFinal(h.key)) await this.#discardHeld(channel, h);
    return end;
  }

  /**
   * Read messages until this target's report verifies or fails, the time
   * is up (`undefined`), or the connection ends. `ordered`: an order is out
   * on this connection, so a report that fails verification fails the target.
   * `previous`: the evidence this order replaced, if it is a re-issue.
   */
  async #awaitReport(
    rt: Runtime,
    channel: DispatchChannel,
    inbox: Inbox,
    key: TargetKey,
    waitMs: number,
    ordered: boolean,
    previous: string | null,
    budget: AttemptBudget,
    held: { report?: HeldReport },
  ): Promise<AttemptEnd | undefined> {
    let deadline = Date.now() + waitMs;
    /** An `error` the agent answered the order with: a signed `refused` report may follow it. */
    let refusal: string | undefined;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return refusal === undefined ? undefined : { kind: 'rejected', reason: refusal };
      const m = await inbox.take(left);
      if (rt.aborted) return { kind: 'aborted' };
      if (isEnd(m)) {
        if (refusal !== undefined) return { kind: 'rejected', reason: refusal };
        if (m.end === 'timeout') return undefined;
        if (m.end === 'overflow') return this.#protocolFailure(key, 'the agent sent too many messages');
        if (isMalformedEnd(m)) return this.#protocolFailure(key, m.error.message);
        return { kind: 'lost', reason: 'disconnected' };
      }
      switch (m.t) {
        case 'accepted': {
          if (m.dispatchId === key.dispatchId && m.run === key.run) this.#transition({ ...key, state: 'issued' }, { kind: 'accepted' });
          break;
        }
        case 'fetch': {
          // An agent fetches once per order; a loop of fetches would make the center send the bundle again and again.
          if (--budget.fetches < 0) return this.#protocolFailure(key, `the agent fetched more than ${ATTEMPT_BUDGET.fetches} times on one connection`);
          if (m.digest === rt.bundle.digest) {
            const body = rt.inline ?? (await this.repository.get(m.digest));
            const answer: ChannelMessage = body !== undefined ? { t: 'bundle', digest: m.digest, body } : { t: 'error', code: 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE', message: `no bundle ${m.digest}` };
            if (!(await sendWithin(channel, answer, Math.max(1, deadline - Date.now())))) return { kind: 'lost', reason: 'disconnected' };
          } else {
            await sendWithin(channel, { t: 'error', code: 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE', message: `this dispatch serves only ${rt.bundle.digest}` }, Math.max(1, deadline - Date.now()));
          }
          break;
        }
        case 'report': {
          if (--budget.reports < 0) return this.#protocolFailure(key, `the agent sent more than ${ATTEMPT_BUDGET.reports} reports on one connection`);
          const got = await this.#receiveReport(channel, m.report, m.certificate, key.msid, key, ordered, held);
          if (got.ok && got.mine) return { kind: 'verified' };
          if (got.held && got.mine) held.report = got.held;
          if (this.#isFinal(key)) return finalEnd(this.#row(key)!);
          // A stale report is a real report of an order that was replaced: held, and the wait goes on for what the agent does with the new one.
          if (!got.ok && ordered && got.reason !== 'stale') return { kind: 'rejected', reason: got.reason ?? 'malformed' };
          break;
        }
        case 'error': {
          if (!ordered || refusal !== undefined) break;
          if (m.dispatchId !== undefined && (m.dispatchId !== key.dispatchId || m.run !== key.run)) break;
          if (m.code === 'GS_ERR_DISPATCH_REPLAYED' && previous !== null) {
            // The agent acted on an earlier order of this run: that order stands.
            const h = held.report;
            if (h !== undefined) {
              // Its report already came (it crossed the re-issue): that is the result.
              held.report = undefined;
              return (await this.#acceptHeld(channel, h)) ? { kind: 'verified' } : finalEnd(this.#row(key)!);
            }
            // Its loader may still be running: its report will come with a later hello. Undo the re-issue and try again later.
            this.store.reinstateEvidence(key, previous, this.#now());
            this.#forget(key);
            return { kind: 'lost', reason: 'the agent still holds the earlier order' };
          }
          // The agent refused the order. For some refusals a signed `refused` report follows: wait for it briefly.
          refusal = `agent-error: ${String(m.code).slice(0, 64)}`;
          deadline = Math.min(deadline, Date.now() + REFUSED_REPORT_WAIT_MS);
          break;
        }
        default:
          return this.#protocolFailure(key, `unexpected ${String((m as { t?: unknown }).t).slice(0, 32)} from the agent`);
      }
    }
  }

  /**
   * Verify one report from agent `msid` against the store, record the
   * result, and ack it once recorded. `mine`: the report names `current`
   * (or could not be read at all). A verified report of another target of
   * this center (a pending one from an earlier connection) completes that
   * target.
   *
   * A verified report carrying evidence a later order superseded, for a
   * target not final yet, is neither recorded nor acked: it comes back
   * `held` (the agent keeps it). Whether it is the true result depends on
   * what the agent does with the order that replaced it: refused as
   * replayed, the first order stands and the held report is accepted
   * ({@link DispatchCenter.#settleHeld}); answered with its own report, the
   * held one is recorded `stale`.
   */
  async #receiveReport(channel: DispatchChannel, encoded: unknown, certificate: unknown, msid: string, current: TargetKey, ordered: boolean, held: { report?: HeldReport }): Promise<ReportReceipt> {
    let report;
    try {
      report = decodeReport(String(encoded), fromBase64url(certificate, 'certificate', 16 * 1024));
    } catch (err) {
      this.#recordFailure({ dispatchId: current.dispatchId, run: current.run, msid, reason: 'malformed', message: messageOf(err) });
      return { ok: false, mine: true, reason: 'malformed' };
    }
    const f = report.fields;
    const key: TargetKey = { dispatchId: f.dispatchId, run: f.run, msid };
    const mine = current.dispatchId === f.dispatchId && current.run === f.run && current.msid === msid;
    const target = this.#row(key);
    const dispatch = target && this.store.getDispatch(f.dispatchId);
    let expectation: ReportExpectation | undefined;
    let superseded = false;
    if (target && dispatch && target.evidence !== null) {
      let evidence = target.evidence;
      if (f.evidence !== target.evidence) {
        const old = this.store.findEvidence(key, f.evidence);
        if (old?.status === 'superseded') {
          evidence = old.evidence;
          superseded = true;
        }
      }
      expectation = { dispatchId: f.dispatchId, run: f.run, agentMsid: msid, evidence, bundleDigest: dispatch.bundle, accepted: !superseded && target.state === 'verified' };
    }
    const check = checkReport(report, expectation);
    const ack = () => sendWithin(channel, { t: 'ack', dispatchId: f.dispatchId, run: f.run }, ACK_SEND_MS);
    if (!check.ok && check.reason === 'replayed' && !ordered && target?.report === report.encoded) {
      // The very report we accepted, again in a hello: our ack was lost with the last connection. Not an attack; nothing to record.
      await ack();
      return { ok: false, mine, reason: 'duplicate' };
    }
    if (!check.ok) {
      this.#recordFailure({ dispatchId: f.dispatchId, run: f.run, msid, reason: check.reason, message: check.message });
      await ack();
      return { ok: false, mine, reason: check.reason };
    }
    if (superseded) {
      const held: HeldReport = { key, evidence: f.evidence, encoded: report.encoded, certificate: certificate as string, fields: check.fields };
      // Not final: this may be the order that stands (see above). Kept by the agent until that is known.
      if (!isFinalTargetState(target!.state)) return { ok: false, mine, reason: 'stale', held };
      await this.#discardHeld(channel, held);
      return { ok: false, mine, reason: 'stale' };
    }
    // This attempt's target gets its result: a report held for it is not the result (recorded before the run can end).
    const stale = mine ? held.report : undefined;
    if (stale !== undefined) {
      held.report = undefined;
      this.#recordStale(stale);
    }
    const accepted = this.#acceptVerified(target!, report.encoded, certificate as string, check.fields);
    if (!accepted) this.#recordFailure({ dispatchId: f.dispatchId, run: f.run, msid, reason: 'late', message: `a verified report arrived after the target was ${target!.state}; not accepted` });
    await ack();
    if (stale !== undefined) await sendWithin(channel, { t: 'ack', dispatchId: stale.key.dispatchId, run: stale.key.run }, ACK_SEND_MS);
    return accepted ? { ok: true, mine } : { ok: false, mine, reason: 'late' };
  }

  /**
   * A held report (see {@link DispatchCenter.#receiveReport}) is the
   * result after all: the agent refused the order that replaced it as
   * replayed, so the order it answers stands. Its evidence is current again
   * (the later one superseded) and the report is accepted, then acked.
   * False when the target cannot take it (final meanwhile: recorded `late`).
   */
  async #acceptHeld(channel: DispatchChannel, held: HeldReport): Promise<boolean> {
    this.store.reinstateEvidence(held.key, held.evidence, this.#now());
    this.#forget(held.key);
    const t = this.#row(held.key)!;
    const accepted = this.#acceptVerified(t, held.encoded, held.certificate, held.fields);
    if (!accepted) this.#recordFailure({ ...held.key, reason: 'late', message: `a verified report arrived after the target was ${t.state}; not accepted` });
    await sendWithin(channel, { t: 'ack', dispatchId: held.key.dispatchId, run: held.key.run }, ACK_SEND_MS);
    return accepted;
  }

  /** A held report that is not the result (its target finished otherwise): recorded `stale`, then acked so the agent drops it. */
  async #discardHeld(channel: DispatchChannel, held: HeldReport): Promise<void> {
    this.#recordStale(held);
    await sendWithin(channel, { t: 'ack', dispatchId: held.key.dispatchId, run: held.key.run }, ACK_SEND_MS);
  }

  #recordStale(held: HeldReport): void {
    this.#recordFailure({ ...held.key, reason: 'stale', message: 'the report carries evidence that a later order superseded; not accepted' });
  }

  /** Store a verified report for `t` (any run in this center), count it, log it. False when `t` cannot take it (final already). */
  #acceptVerified(t: StoredTarget, encoded: string, certificate: string, fields: ReportFields): boolean {
    const next = nextTargetState(t.state, { kind: 'verified' });
    if (next === undefined) return false;
    const at = this.#now();
    const result = { state: next, outcome: fields.outcome, exitCode: fields.exitCode, signal: fields.signal, report: encoded, certificate };
    this.store.acceptReport(t, result, at);
    this.#remember({ ...t, ...result, nextAttemptAt: null, updatedAt: at });
    this.#append('result', { dispatch: t.dispatchId, run: t.run, agent: t.msid, report: fields as unknown as Record<string, unknown>, encoded, certificate });
    const rt = this.#runtimes.get(`${t.dispatchId}/${t.run}`);
    if (rt) this.#finished(rt, t.msid);
    return true;
  }

  #isFinal(key: TargetKey): boolean {
    const t = this.#row(key);
    return t !== undefined && isFinalTargetState(t.state);
  }

  #protocolFailure(key: TargetKey, message: string): AttemptEnd {
    this.#recordFailure({ dispatchId: key.dispatchId, run: key.run, msid: key.msid, reason: 'malformed', message });
    return { kind: 'rejected', reason: 'malformed' };
  }

  #recordFailure(f: Omit<VerificationFailureRecord, 'at'>): void {
    const record: VerificationFailureRecord = { ...f, message: f.message.slice(0, 512), at: this.#now() };
    this.store.recordFailure(record);
    this.#append('failure', { dispatch: record.dispatchId, run: record.run, agent: record.msid, reason: record.reason, message: record.message });
    this.emit('failure', record);
    if (record.dispatchId !== null && record.run !== null) this.#runtimes.get(`${record.dispatchId}/${record.run}`)?.handle.emit('failure', record);
  }

  // ---- log ----

  /**
   * Log a dispatch or re-run with its agents: in parts of
   * `LOG_AGENTS_PER_ENTRY` MSIDs (`part`, `parts`), so that a large
   * fleet never makes one line pass the log's line limit.
   */
  #logDispatch(data: Record<string, unknown>, msids: readonly string[]): void {
    const parts = Math.max(1, Math.ceil(msids.length / LOG_AGENTS_PER_ENTRY));
    for (let i = 0; i < parts; i++) {
      const agents = msids.slice(i * LOG_AGENTS_PER_ENTRY, (i + 1) * LOG_AGENTS_PER_ENTRY);
      this.#append('dispatch', parts === 1 ? { ...data, agents } : { ...data, agents, part: i, parts });
    }
  }

  #append(kind: LogKind, data: Record<string, unknown>): void {
    const log = this.#log;
    if (!log) return;
    this.#logQueue = this.#logQueue.then(() => log.append(kind, data)).catch((err: unknown) => this.#emitError(err));
  }

  #emitError(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  #checkOpen(): void {
    if (this.#closed) throw new DispatchError('GS_ERR_DISPATCH_CLOSED', 'the dispatch center is closed; open a new one on the same store and resume()');
  }
}

/** The channel closed because the agent sent bytes that are not a message (bad input, not a network failure: not retried). */
function isMalformedEnd(e: InboxEnd): e is { end: 'closed'; error: DispatchError } {
  return e.end === 'closed' && e.error instanceof DispatchError && e.error.code === 'GS_ERR_DISPATCH_MALFORMED';
}

function finalEnd(t: StoredTarget): AttemptEnd {
  return t.state === 'verified' ? { kind: 'verified' } : { kind: 'gone' };
}

function resultOf(t: StoredTarget): TargetResult {
  return { dispatchId: t.dispatchId, run: t.run, msid: t.msid, pcid: t.pcid, wave: t.wave, state: t.state, attempts: t.attempts, outcome: t.outcome, exitCode: t.exitCode, signal: t.signal, reason: t.reason };
}

function checkAgents(agents: unknown): AgentRef[] {
  checkOption(Array.isArray(agents) && agents.length > 0, 'agents', 'must be a non-empty array of { msid, pcid }');
  const seen = new Set<string>();
  return (agents as unknown[]).map((a, i) => {
    const ref = a as Partial<AgentRef> | null;
    checkOption(typeof ref === 'object' && ref !== null && typeof ref.msid === 'string' && MSID_RE.test(ref.msid.toUpperCase()), `agents[${i}].msid`, 'must be a machine ID (MSID- and 64 hex digits)');
    checkOption(typeof ref.pcid === 'string' && ref.pcid.length > 0 && ref.pcid.length <= 31, `agents[${i}].pcid`, 'must be a PCID');
    const msid = canonical(ref.msid);
    checkOption(!seen.has(msid), `agents[${i}].msid`, 'appears twice');
    seen.add(msid);
    return { msid, pcid: ref.pcid };
  });
}

/** Target arguments, checked against the binding's limits here, so that a bad list fails the call and not every order. */
function checkArgs(args: unknown): string[] | null {
  if (args === undefined || args === null) return null;
  checkOption(Array.isArray(args) && args.length <= MAX_TARGET_ARGS, 'args', `must be an array of at most ${MAX_TARGET_ARGS} strings, or null`);
  let total = 0;
  for (const a of args as unknown[]) {
    checkOption(typeof a === 'string' && !a.includes('\0'), 'args', 'entries must be strings without NUL');
    const n = Buffer.byteLength(a, 'utf8');
    total += n;
    checkOption(n <= MAX_TARGET_ARG_BYTES, 'args', `entries must be at most ${MAX_TARGET_ARG_BYTES} bytes`);
  }
  checkOption(total <= MAX_TARGET_ARGS_TOTAL_BYTES, 'args', `must be at most ${MAX_TARGET_ARGS_TOTAL_BYTES} bytes together`);
  return [...(args as string[])];
}

function storedOptions(o: DispatchOptions): StoredDispatchOptions {
  const d = DISPATCH_DEFAULTS;
  const int = (v: unknown, name: string, min: number, dflt: number): number => {
    if (v === undefined) return dflt;
    checkOption(Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= 2 ** 31 - 1, name, `must be a whole number from ${min} to ${2 ** 31 - 1}`);
    return v as number;
  };
  const waves = o.waves === undefined ? [...d.waves] : [...o.waves];
  checkWaveSpec(waves);
  const threshold = o.failureThreshold ?? d.failureThreshold;
  checkOption(typeof threshold === 'number' && threshold >= 0 && threshold <= 1, 'failureThreshold', 'must be a number from 0 to 1');
  const backoffMs = int(o.backoffMs, 'backoffMs', 0, d.backoffMs);
  const maxBackoffMs = int(o.maxBackoffMs, 'maxBackoffMs', 0, Math.max(d.maxBackoffMs, backoffMs));
  checkOption(maxBackoffMs >= backoffMs, 'maxBackoffMs', 'must be ≥ backoffMs');
  return {
    concurrency: int(o.concurrency, 'concurrency', 1, d.concurrency),
    waves,
    failureThreshold: threshold,
    retries: int(o.retries, 'retries', 0, d.retries),
    backoffMs,
    maxBackoffMs,
    timeoutMs: o.timeoutMs === undefined ? null : int(o.timeoutMs, 'timeoutMs', 1, 0),
    connectTimeoutMs: int(o.connectTimeoutMs, 'connectTimeoutMs', 1, d.connectTimeoutMs),
    inlineMaxBytes: int(o.inlineMaxBytes, 'inlineMaxBytes', 0, d.inlineMaxBytes),
  };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function codeOf(err: unknown): string {
  return err instanceof GatesockError ? err.code : messageOf(err).slice(0, 80);
}
