/**
 * The dispatch center (the seed's 配付管理サーバ): signs bundles, sends
 * orders to agents in canary waves with a concurrency limit, issues a fresh
 * evidence value per agent and per run, verifies every report against what
 * its store says it issued, and logs it all.
 *
 * This module is the API and the scheduling (runs, waves, slots, retries,
 * the targets' state machine and their rows); one attempt's conversation
 * with an agent is attempt.ts, the options and their checks options.ts,
 * results and status status.ts, the run handle run.ts.
 *
 * Every target's state changes only through `nextTargetState` (target.ts,
 * with the diagram); everything a restart needs is written to the store
 * before the step that depends on it (the evidence before the order).
 */
import { EventEmitter } from 'eventemitter3';
import { ConfigError, DispatchError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import type { IdentityKey } from '../../../session/index.js';
import {
  EvidenceLog,
  createBundle,
  decodeBundle,
  newDispatchId,
  verifyBundle,
  type Bundle,
  type BundleInput,
  type BundleMetadata,
  type Digest,
  type LogKind,
  type ReportFields,
} from '../wire/index.js';
import { AttemptRunner, messageOf, type AttemptEnd } from './attempt.js';
import type { AgentConnector } from './connector.js';
import { DISPATCH_DEFAULTS, canonical, checkAgents, checkArgs, storedOptions, type DispatchOptions } from './options.js';
import { DirectoryBundleRepository, MemoryBundleRepository, type BundleRepository } from './repository.js';
import { DispatchRun, finish, type Runtime } from './run.js';
import { SqliteDispatchStore } from './sqlite-store.js';
import { dispatchStatus, resultOf, runSummary, type DispatchStatus, type DispatchSummary, type VerificationFailureRecord } from './status.js';
import { MemoryDispatchStore, definedOnly, runFinished, type DispatchStore, type StoredTarget, type TargetKey, type TargetPatch } from './store.js';
import { isFinalTargetState, isTargetSuccess, nextTargetState, retryDelay, type TargetEvent, type TargetState } from './target.js';
import { planWaves, waveOf, waveStops } from './waves.js';

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

/** MSIDs per `dispatch` log entry (~70 bytes each: about 280 KiB, well under the log's 1 MiB line limit). */
const LOG_AGENTS_PER_ENTRY = 4096;

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
  readonly #attempts: AttemptRunner;
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
    this.#attempts = new AttemptRunner({
      store,
      repository: this.repository,
      connector: this.#connector,
      key: this.#key,
      reissueGraceMs: this.#reissueGraceMs,
      now: () => this.#now(),
      bundleOf: (dispatchId, run) => this.#runtimes.get(`${dispatchId}/${run}`)?.bundle.digest ?? this.store.getDispatch(dispatchId)?.bundle,
      row: (key) => this.#row(key),
      remember: (row) => this.#remember(row),
      forget: (key) => this.#forget(key),
      transition: (t, event, patch) => this.#transition(t, event, patch),
      acceptVerified: (t, encoded, certificate, fields) => this.#acceptVerified(t, encoded, certificate, fields),
      recordFailure: (f) => this.#recordFailure(f),
      append: (kind, data) => this.#append(kind, data),
    });
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
    return dispatchStatus(this.store, dispatchId);
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
    // A last head that could not be written leaves the log past its head (it still verifies): an `error`, not a reason to keep the store open.
    await this.#log?.close().catch((err: unknown) => this.#emitError(err));
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
    // `done` after the evidence log holds every line of the run, so a caller
    // that reads or ships the log then sees the whole run (appends never reject).
    void this.#logQueue.then(() => {
      rt.handle.emit('done', summary);
      finish(rt.handle, summary);
    });
  }

  #summary(rt: Runtime): DispatchSummary {
    return runSummary(this.store, rt.dispatchId, rt.run, rt.total);
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
      end = await this.#attempts.run(rt, { ...row, state: 'connecting', attempts: row.attempts + 1 });
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

  /** Keep a row just written to the store as its run's copy (a final one until `#finished` counts it). */
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
