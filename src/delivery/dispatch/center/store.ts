/**
 * The center's dispatch store: everything a restarted center needs to carry
 * on (bundles it signed, dispatches and their options, runs, every target's
 * state, the evidence it issued and which of it is superseded, and the
 * failed verifications it recorded).
 *
 * The interface is synchronous: the two stores answer in microseconds
 * (memory, or SQLite through better-sqlite3, which is synchronous), and a
 * synchronous store lets {@link DispatchCenter.status} answer at once and
 * keeps each target's transition atomic with respect to every other.
 *
 * Rows are plain values (strings, numbers, null): the store never holds
 * bundle bytes (the repository does) and a target row is a few hundred
 * bytes, so 5,000 targets cost a few MB at most.
 */
import { DispatchError } from '../../../errors/index.js';
import { isFinalTargetState, type TargetState } from './target.js';

/**
 * A bundle the center signed or added (its bytes live in the repository).
 * @public
 */
export interface StoredBundle {
  /** `sha256:` + 64 hex of the encoded bundle. */
  readonly digest: string;
  /** The bundle's name (from its metadata). */
  readonly name: string;
  /** The bundle's version (from its metadata). */
  readonly version: number;
  /** Encoded size in bytes. */
  readonly size: number;
  /** The bundle's canonical metadata JSON. */
  readonly metadata: string;
  /** When the center stored it, ms since the epoch. */
  readonly createdAt: number;
}

/**
 * The options a dispatch was made with, after defaults (so a resumed
 * dispatch behaves as the first).
 * @public
 */
export interface StoredDispatchOptions {
  /** Most agents worked on at once. */
  readonly concurrency: number;
  /** Canary waves: whole counts or fractions of the fleet. */
  readonly waves: readonly number[];
  /** A wave whose failure rate is above this stops the dispatch. */
  readonly failureThreshold: number;
  /** Attempts after the first for an agent that cannot be reached. */
  readonly retries: number;
  /** First retry delay, ms. */
  readonly backoffMs: number;
  /** Largest retry delay, ms. */
  readonly maxBackoffMs: number;
  /** Wait for the report after the order, ms; `null`: the bundle's `timeoutMs` plus a margin. */
  readonly timeoutMs: number | null;
  /** How long to wait for a connection and the agent's hello, ms. */
  readonly connectTimeoutMs: number;
  /** Bundles up to this size travel inline with the order. */
  readonly inlineMaxBytes: number;
}

/**
 * A run's life: `running` until every target is final (`done`), or until a
 * wave passed the failure threshold (`stopped`).
 * @public
 */
export type RunState = 'running' | 'done' | 'stopped';

/** A dispatch as the store keeps it: its bundle, its options and its latest run. @public */
export interface StoredDispatch {
  /** 32 hex. */
  readonly id: string;
  /** Digest of the bundle (hex). */
  readonly bundle: string;
  /** The options it runs with, defaults filled in. */
  readonly options: StoredDispatchOptions;
  /** The state of its latest run. */
  readonly state: RunState;
  /** When it was created, ms since the epoch. */
  readonly createdAt: number;
  /** The highest run number (0 until the first re-run). */
  readonly lastRun: number;
}

/**
 * One run of a dispatch: run 0 is the dispatch, run n its n-th re-run.
 * @public
 */
export interface StoredRun {
  /** The dispatch. */
  readonly dispatchId: string;
  /** The run number (1 for the first run). */
  readonly run: number;
  /** Target arguments; `null`: the bundle's. */
  readonly args: readonly string[] | null;
  /** Whether the run is running, done or stopped. */
  readonly state: RunState;
  /** The wave being worked on (index into `waves`). */
  readonly wave: number;
  /** Planned wave sizes. */
  readonly waves: readonly number[];
  /** When the run started, ms since the epoch. */
  readonly createdAt: number;
  /** When the run ended, ms since the epoch; null while it runs. */
  readonly endedAt: number | null;
}

/**
 * One agent in one run.
 * @public
 */
export interface StoredTarget {
  /** The dispatch. */
  readonly dispatchId: string;
  /** The run number. */
  readonly run: number;
  /** The agent's MSID. */
  readonly msid: string;
  /** The PCID the agent is reached under. */
  readonly pcid: string;
  /** The wave the target belongs to (index into the run's waves). */
  readonly wave: number;
  /** Where the target is in its state machine. */
  readonly state: TargetState;
  /** Attempts started (connects tried). */
  readonly attempts: number;
  /** When a `retry-wait` target may try again, ms since the epoch. */
  readonly nextAttemptAt: number | null;
  /** The evidence of the order now outstanding (64 hex), or null before the first order. */
  readonly evidence: string | null;
  /** When the outstanding order was issued, ms since the epoch; null before the first. */
  readonly issuedAt: number | null;
  /** The verified report's outcome (`ran`, `refused`, …). */
  readonly outcome: string | null;
  /** The exit code of the verified run; null when none. */
  readonly exitCode: number | null;
  /** The signal that ended the target program, from the verified report. */
  readonly signal: string | null;
  /** Why the target failed, gave up or was skipped; for a verified one, the last note on its way there (a retry, a re-issue), or null. */
  readonly reason: string | null;
  /** The verified report (base64url), kept for audit. */
  readonly report: string | null;
  /** The agent's certificate (base64url DER) that signed it. */
  readonly certificate: string | null;
  /** When the row last changed, ms since the epoch. */
  readonly updatedAt: number;
}

/**
 * What {@link DispatchStore.updateTarget} may change.
 * @public
 */
export type TargetPatch = Partial<Pick<StoredTarget, 'state' | 'attempts' | 'nextAttemptAt' | 'outcome' | 'exitCode' | 'reason' | 'report' | 'certificate'>>;

/**
 * An evidence value the center issued: `current` while its order is
 * outstanding, `accepted` once its report verified, `superseded` when a
 * later order replaced it (a late report carrying it is stale).
 * @public
 */
export interface StoredEvidence {
  /** The dispatch. */
  readonly dispatchId: string;
  /** The run number. */
  readonly run: number;
  /** The agent the evidence was issued to. */
  readonly msid: string;
  /** The evidence value (64 hex). */
  readonly evidence: string;
  /** When it was issued, ms since the epoch. */
  readonly issuedAt: number;
  /** `current` while outstanding, `accepted` once a report carried it back, `superseded` by a newer order. */
  readonly status: 'current' | 'accepted' | 'superseded';
}

/**
 * A failed verification (or another refused input) the center recorded.
 * `dispatchId`/`run` are what the input claimed, when it could be read.
 * @public
 */
export interface StoredFailure {
  /** The dispatch the input claimed, or null when it could not be read. */
  readonly dispatchId: string | null;
  /** The run the input claimed, or null when it could not be read. */
  readonly run: number | null;
  /** The agent the input came from. */
  readonly msid: string;
  /** When it was recorded, ms since the epoch. */
  readonly at: number;
  /** `malformed`, `bad-signature`, `wrong-agent`, `unknown-dispatch`, `wrong-evidence`, `wrong-bundle`, `replayed`, `stale`, … */
  readonly reason: string;
  /** What was wrong, in words. */
  readonly message: string;
}

/**
 * A verified report as {@link DispatchStore.acceptReport} stores it.
 * @public
 */
export interface AcceptedReport {
  /** The target's final state the report leads to. */
  readonly state: TargetState;
  /** The run outcome the report states. */
  readonly outcome: string;
  /** The bundle's exit code; null when it did not exit normally. */
  readonly exitCode: number | null;
  /** The signal that ended the bundle; null when none. */
  readonly signal: string | null;
  /** The report, base64url. */
  readonly report: string;
  /** The agent certificate, base64url DER. */
  readonly certificate: string;
}

/** A target's key. @public */
export interface TargetKey {
  /** The dispatch. */
  readonly dispatchId: string;
  /** The run number. */
  readonly run: number;
  /** The agent's MSID. */
  readonly msid: string;
}

/**
 * A new target, as {@link DispatchStore.createDispatch} and
 * {@link DispatchStore.createRun} take it.
 * @public
 */
export interface NewTarget {
  /** The agent's MSID. */
  readonly msid: string;
  /** The PCID the agent is reached under. */
  readonly pcid: string;
  /** The wave it belongs to (index into the run's waves). */
  readonly wave: number;
}

/**
 * Where the center keeps its state. {@link MemoryDispatchStore} for tests
 * and one-shot tools, {@link SqliteDispatchStore} to survive a restart.
 * Methods throw `DispatchError` `GS_ERR_DISPATCH_UNKNOWN_DISPATCH` for a
 * dispatch, run or target that is not there, where they change something.
 * @public
 */
export interface DispatchStore {
  /** Keep a bundle's record (the first record of a digest stays). */
  putBundle(bundle: StoredBundle): void;
  /** A bundle's record, by digest. */
  getBundle(digest: string): StoredBundle | undefined;
  /** A new dispatch with its run 0 and its targets, in one step. */
  createDispatch(dispatch: Omit<StoredDispatch, 'state' | 'lastRun'>, run: Omit<StoredRun, 'dispatchId' | 'run' | 'state' | 'wave' | 'endedAt'>, targets: readonly NewTarget[]): void;
  /** One dispatch. */
  getDispatch(id: string): StoredDispatch | undefined;
  /** Dispatches, oldest first; `unfinished` keeps those whose latest run is `running`. */
  listDispatches(filter?: { unfinished?: boolean }): StoredDispatch[];
  /** Run `dispatch.lastRun + 1` with its targets, in one step; returns its number. */
  createRun(dispatchId: string, run: Omit<StoredRun, 'dispatchId' | 'run' | 'state' | 'wave' | 'endedAt'>, targets: readonly NewTarget[]): number;
  /** One run of a dispatch. */
  getRun(dispatchId: string, run: number): StoredRun | undefined;
  /** Every run of a dispatch, by run number. */
  listRuns(dispatchId: string): StoredRun[];
  /** Change a run (a change of `state` of the latest run is also the dispatch's state). */
  updateRun(dispatchId: string, run: number, patch: Partial<Pick<StoredRun, 'state' | 'wave' | 'endedAt'>>): void;
  /** One target. */
  getTarget(key: TargetKey): StoredTarget | undefined;
  /** Targets of a run in creation order, optionally of one wave only. */
  listTargets(dispatchId: string, run: number, filter?: { wave?: number }): StoredTarget[];
  /** Change a target (and stamp `updatedAt` with `at`). */
  updateTarget(key: TargetKey, patch: TargetPatch, at: number): void;
  /** Count of targets per state in a run. */
  countTargets(dispatchId: string, run: number): Record<TargetState, number>;
  /**
   * Record a fresh evidence value for a target's next order, in one step:
   * the previous `current` one (if any) becomes `superseded`, the target's
   * `evidence`/`issuedAt` become the new one. Throws if the value was ever
   * issued before (evidence is never reused). `patch`, when given, is
   * applied to the target in the same step (the center moves the target to
   * `issued` with it: one commit instead of two).
   */
  issueEvidence(key: TargetKey, evidence: string, at: number, patch?: TargetPatch): void;
  /**
   * Undo a re-issue the agent refused because it still holds the earlier
   * order (`GS_ERR_DISPATCH_REPLAYED`): `previous` (a superseded value of
   * this target) becomes `current` and the target's evidence again, and the
   * refused one is `superseded`. In one step.
   */
  reinstateEvidence(key: TargetKey, previous: string, at: number): void;
  /** A value this center issued to that target, whatever its status. */
  findEvidence(key: TargetKey, evidence: string): StoredEvidence | undefined;
  /** Mark a target's current evidence `accepted` and store its verified result, in one step. */
  acceptReport(key: TargetKey, result: AcceptedReport, at: number): void;
  /** Keep a failed verification. */
  recordFailure(failure: StoredFailure): void;
  /** Failures recorded, oldest first; for one dispatch or all. */
  listFailures(dispatchId?: string): StoredFailure[];
  /** Release the store; later calls throw. */
  close(): Promise<void>;
}

/** The empty per-state count. @internal */
export function emptyCounts(): Record<TargetState, number> {
  return { pending: 0, connecting: 0, issued: 0, accepted: 0, 'retry-wait': 0, verified: 0, failed: 0, 'gave-up': 0, skipped: 0 };
}

/** @internal */
export function unknownDispatch(what: string): DispatchError {
  return new DispatchError('GS_ERR_DISPATCH_UNKNOWN_DISPATCH', `the dispatch store has no ${what}`);
}

/** @internal */
export function reusedEvidence(): DispatchError {
  return new DispatchError('GS_ERR_DISPATCH_MALFORMED', 'an evidence value may be issued only once');
}

function targetKeyString(k: TargetKey): string {
  return `${k.dispatchId}/${k.run}/${k.msid}`;
}

interface MemoryRun extends StoredRun {
  targets: Map<string, StoredTarget>;
}

/**
 * A {@link DispatchStore} in this process's memory: gone when it ends.
 * @public
 */
export class MemoryDispatchStore implements DispatchStore {
  #bundles = new Map<string, StoredBundle>();
  #dispatches = new Map<string, StoredDispatch>();
  #runs = new Map<string, MemoryRun>();
  /** Evidence value → its record (values are unique across the store). */
  #evidence = new Map<string, StoredEvidence>();
  #failures: StoredFailure[] = [];
  #closed = false;

  /** {@inheritDoc DispatchStore.putBundle} */
  putBundle(bundle: StoredBundle): void {
    this.#open();
    if (!this.#bundles.has(bundle.digest)) this.#bundles.set(bundle.digest, { ...bundle });
  }

  /** {@inheritDoc DispatchStore.getBundle} */
  getBundle(digest: string): StoredBundle | undefined {
    this.#open();
    const b = this.#bundles.get(digest);
    return b && { ...b };
  }

  /** {@inheritDoc DispatchStore.createDispatch} */
  createDispatch(dispatch: Omit<StoredDispatch, 'state' | 'lastRun'>, run: Omit<StoredRun, 'dispatchId' | 'run' | 'state' | 'wave' | 'endedAt'>, targets: readonly NewTarget[]): void {
    this.#open();
    if (this.#dispatches.has(dispatch.id)) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `dispatch ${dispatch.id} already exists`);
    if (!this.#bundles.has(dispatch.bundle)) throw new DispatchError('GS_ERR_DISPATCH_UNKNOWN_BUNDLE', `the dispatch store has no bundle ${dispatch.bundle}`);
    const rows = this.#newTargets(dispatch.id, 0, targets, run.createdAt);
    this.#dispatches.set(dispatch.id, { ...dispatch, options: { ...dispatch.options }, state: 'running', lastRun: 0 });
    this.#addRun(dispatch.id, 0, run, rows);
  }

  /** {@inheritDoc DispatchStore.getDispatch} */
  getDispatch(id: string): StoredDispatch | undefined {
    this.#open();
    const d = this.#dispatches.get(id);
    return d && { ...d };
  }

  /** {@inheritDoc DispatchStore.listDispatches} */
  listDispatches(filter: { unfinished?: boolean } = {}): StoredDispatch[] {
    this.#open();
    const all = [...this.#dispatches.values()].map((d) => ({ ...d }));
    return filter.unfinished ? all.filter((d) => d.state === 'running') : all;
  }

  /** {@inheritDoc DispatchStore.createRun} */
  createRun(dispatchId: string, run: Omit<StoredRun, 'dispatchId' | 'run' | 'state' | 'wave' | 'endedAt'>, targets: readonly NewTarget[]): number {
    this.#open();
    const d = this.#dispatches.get(dispatchId);
    if (!d) throw unknownDispatch(`dispatch ${dispatchId}`);
    const n = d.lastRun + 1;
    const rows = this.#newTargets(dispatchId, n, targets, run.createdAt);
    this.#dispatches.set(dispatchId, { ...d, lastRun: n, state: 'running' });
    this.#addRun(dispatchId, n, run, rows);
    return n;
  }

  /** {@inheritDoc DispatchStore.getRun} */
  getRun(dispatchId: string, run: number): StoredRun | undefined {
    this.#open();
    const r = this.#runs.get(`${dispatchId}/${run}`);
    return r && runView(r);
  }

  /** {@inheritDoc DispatchStore.listRuns} */
  listRuns(dispatchId: string): StoredRun[] {
    this.#open();
    const d = this.#dispatches.get(dispatchId);
    if (!d) return [];
    const out: StoredRun[] = [];
    for (let n = 0; n <= d.lastRun; n++) {
      const r = this.#runs.get(`${dispatchId}/${n}`);
      if (r) out.push(runView(r));
    }
    return out;
  }

  /** {@inheritDoc DispatchStore.updateRun} */
  updateRun(dispatchId: string, run: number, patch: Partial<Pick<StoredRun, 'state' | 'wave' | 'endedAt'>>): void {
    this.#open();
    const r = this.#runs.get(`${dispatchId}/${run}`);
    if (!r) throw unknownDispatch(`run ${run} of dispatch ${dispatchId}`);
    const next: MemoryRun = { ...r, ...definedOnly(patch), targets: r.targets };
    this.#runs.set(`${dispatchId}/${run}`, next);
    const d = this.#dispatches.get(dispatchId)!;
    if (patch.state !== undefined && run === d.lastRun) this.#dispatches.set(dispatchId, { ...d, state: patch.state });
  }

  /** {@inheritDoc DispatchStore.getTarget} */
  getTarget(key: TargetKey): StoredTarget | undefined {
    this.#open();
    const t = this.#runs.get(`${key.dispatchId}/${key.run}`)?.targets.get(key.msid);
    return t && { ...t };
  }

  /** {@inheritDoc DispatchStore.listTargets} */
  listTargets(dispatchId: string, run: number, filter: { wave?: number } = {}): StoredTarget[] {
    this.#open();
    const r = this.#runs.get(`${dispatchId}/${run}`);
    if (!r) return [];
    const out: StoredTarget[] = [];
    for (const t of r.targets.values()) if (filter.wave === undefined || t.wave === filter.wave) out.push({ ...t });
    return out;
  }

  /** {@inheritDoc DispatchStore.updateTarget} */
  updateTarget(key: TargetKey, patch: TargetPatch, at: number): void {
    this.#open();
    const r = this.#runs.get(`${key.dispatchId}/${key.run}`);
    const t = r?.targets.get(key.msid);
    if (!r || !t) throw unknownDispatch(`target ${targetKeyString(key)}`);
    r.targets.set(key.msid, { ...t, ...definedOnly(patch), updatedAt: at });
  }

  /** {@inheritDoc DispatchStore.countTargets} */
  countTargets(dispatchId: string, run: number): Record<TargetState, number> {
    this.#open();
    const counts = emptyCounts();
    const r = this.#runs.get(`${dispatchId}/${run}`);
    if (r) for (const t of r.targets.values()) counts[t.state]++;
    return counts;
  }

  /** {@inheritDoc DispatchStore.issueEvidence} */
  issueEvidence(key: TargetKey, evidence: string, at: number, patch: TargetPatch = {}): void {
    this.#open();
    const r = this.#runs.get(`${key.dispatchId}/${key.run}`);
    const t = r?.targets.get(key.msid);
    if (!r || !t) throw unknownDispatch(`target ${targetKeyString(key)}`);
    if (this.#evidence.has(evidence)) throw reusedEvidence();
    if (t.evidence !== null) {
      const old = this.#evidence.get(t.evidence);
      if (old && old.status === 'current') this.#evidence.set(t.evidence, { ...old, status: 'superseded' });
    }
    this.#evidence.set(evidence, { dispatchId: key.dispatchId, run: key.run, msid: key.msid, evidence, issuedAt: at, status: 'current' });
    r.targets.set(key.msid, { ...t, ...definedOnly(patch), evidence, issuedAt: at, updatedAt: at });
  }

  /** {@inheritDoc DispatchStore.reinstateEvidence} */
  reinstateEvidence(key: TargetKey, previous: string, at: number): void {
    this.#open();
    const r = this.#runs.get(`${key.dispatchId}/${key.run}`);
    const t = r?.targets.get(key.msid);
    const old = this.#evidence.get(previous);
    if (!r || !t || !old || old.dispatchId !== key.dispatchId || old.run !== key.run || old.msid !== key.msid) throw unknownDispatch(`evidence ${previous.slice(0, 8)}… of target ${targetKeyString(key)}`);
    if (t.evidence !== null && t.evidence !== previous) {
      const cur = this.#evidence.get(t.evidence);
      if (cur && cur.status === 'current') this.#evidence.set(t.evidence, { ...cur, status: 'superseded' });
    }
    this.#evidence.set(previous, { ...old, status: 'current' });
    r.targets.set(key.msid, { ...t, evidence: previous, issuedAt: old.issuedAt, updatedAt: at });
  }

  /** {@inheritDoc DispatchStore.findEvidence} */
  findEvidence(key: TargetKey, evidence: string): StoredEvidence | undefined {
    this.#open();
    const e = this.#evidence.get(evidence);
    if (!e || e.dispatchId !== key.dispatchId || e.run !== key.run || e.msid !== key.msid) return undefined;
    return { ...e };
  }

  /** {@inheritDoc DispatchStore.acceptReport} */
  acceptReport(key: TargetKey, result: AcceptedReport, at: number): void {
    this.#open();
    const r = this.#runs.get(`${key.dispatchId}/${key.run}`);
    const t = r?.targets.get(key.msid);
    if (!r || !t) throw unknownDispatch(`target ${targetKeyString(key)}`);
    if (t.evidence !== null) {
      const e = this.#evidence.get(t.evidence);
      if (e) this.#evidence.set(t.evidence, { ...e, status: 'accepted' });
    }
    r.targets.set(key.msid, { ...t, state: result.state, outcome: result.outcome, exitCode: result.exitCode, signal: result.signal, report: result.report, certificate: result.certificate, nextAttemptAt: null, updatedAt: at });
  }

  /** {@inheritDoc DispatchStore.recordFailure} */
  recordFailure(failure: StoredFailure): void {
    this.#open();
    this.#failures.push({ ...failure });
  }

  /** {@inheritDoc DispatchStore.listFailures} */
  listFailures(dispatchId?: string): StoredFailure[] {
    this.#open();
    return this.#failures.filter((f) => dispatchId === undefined || f.dispatchId === dispatchId).map((f) => ({ ...f }));
  }

  /** {@inheritDoc DispatchStore.close} */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #newTargets(dispatchId: string, n: number, targets: readonly NewTarget[], at: number): Map<string, StoredTarget> {
    const map = new Map<string, StoredTarget>();
    for (const t of targets) {
      if (map.has(t.msid)) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `agent ${t.msid} is listed twice`);
      map.set(t.msid, newTargetRow(dispatchId, n, t, at));
    }
    return map;
  }

  #addRun(dispatchId: string, n: number, run: Omit<StoredRun, 'dispatchId' | 'run' | 'state' | 'wave' | 'endedAt'>, map: Map<string, StoredTarget>): void {
    this.#runs.set(`${dispatchId}/${n}`, { dispatchId, run: n, args: run.args, state: 'running', wave: 0, waves: [...run.waves], createdAt: run.createdAt, endedAt: null, targets: map });
  }

  #open(): void {
    if (this.#closed) throw new DispatchError('GS_ERR_DISPATCH_CLOSED', 'the dispatch store is closed');
  }
}

/** A fresh target row. @internal */
export function newTargetRow(dispatchId: string, run: number, t: NewTarget, at: number): StoredTarget {
  return {
    dispatchId,
    run,
    msid: t.msid,
    pcid: t.pcid,
    wave: t.wave,
    state: 'pending',
    attempts: 0,
    nextAttemptAt: null,
    evidence: null,
    issuedAt: null,
    outcome: null,
    exitCode: null,
    signal: null,
    reason: null,
    report: null,
    certificate: null,
    updatedAt: at,
  };
}

function runView(r: MemoryRun): StoredRun {
  return { dispatchId: r.dispatchId, run: r.run, args: r.args, state: r.state, wave: r.wave, waves: r.waves, createdAt: r.createdAt, endedAt: r.endedAt };
}

/** A patch without its undefined fields. @internal */
export function definedOnly<T extends object>(patch: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** Whether every target of a run is final. @internal */
export function runFinished(counts: Record<TargetState, number>): boolean {
  for (const [state, n] of Object.entries(counts)) if (n > 0 && !isFinalTargetState(state as TargetState)) return false;
  return true;
}
