/**
 * What a dispatch looks like from outside: per-target results, waves,
 * progress, a run's summary and a dispatch's status, all built from the
 * store (the one source of truth, also after a restart).
 */
import { DispatchError } from '../../../errors/index.js';
import type { Digest } from '../wire/index.js';
import type { DispatchStore, StoredDispatchOptions, StoredRun, StoredTarget } from './store.js';
import type { TargetState } from './target.js';

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

/** A target's result: its row without the evidence, the report and the certificate. @internal */
export function resultOf(t: StoredTarget): TargetResult {
  return { dispatchId: t.dispatchId, run: t.run, msid: t.msid, pcid: t.pcid, wave: t.wave, state: t.state, attempts: t.attempts, outcome: t.outcome, exitCode: t.exitCode, signal: t.signal, reason: t.reason };
}

/** A run's summary from the store; `total` as the run counted it. @internal */
export function runSummary(store: DispatchStore, dispatchId: string, run: number, total: number): DispatchSummary {
  const r = store.getRun(dispatchId, run);
  return {
    dispatchId,
    run,
    state: r?.state ?? 'running',
    total,
    counts: store.countTargets(dispatchId, run),
    targets: store.listTargets(dispatchId, run).map(resultOf),
  };
}

/** A dispatch's status from the store. Throws `GS_ERR_DISPATCH_UNKNOWN_DISPATCH` for an unknown one. @internal */
export function dispatchStatus(store: DispatchStore, dispatchId: string): DispatchStatus {
  const d = store.getDispatch(dispatchId);
  if (!d) throw new DispatchError('GS_ERR_DISPATCH_UNKNOWN_DISPATCH', `no dispatch ${dispatchId}`);
  return {
    id: d.id,
    bundle: d.bundle,
    createdAt: d.createdAt,
    options: d.options,
    runs: store.listRuns(dispatchId).map((r) => ({
      run: r.run,
      args: r.args,
      state: r.state,
      wave: r.wave,
      waves: r.waves,
      createdAt: r.createdAt,
      endedAt: r.endedAt,
      counts: store.countTargets(dispatchId, r.run),
      targets: store.listTargets(dispatchId, r.run).map(resultOf),
    })),
    failures: store.listFailures(dispatchId),
  };
}
