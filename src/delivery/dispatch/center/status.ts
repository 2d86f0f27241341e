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
  readonly dispatchId: string | null;
  readonly run: number | null;
  readonly msid: string;
  readonly reason: string;
  readonly message: string;
  readonly at: number;
}

/** A finished wave. @public */
export interface WaveSummary {
  readonly dispatchId: string;
  readonly run: number;
  readonly index: number;
  readonly size: number;
  readonly failures: number;
  /** Whether this wave stopped the run. */
  readonly stopped: boolean;
}

/** How far a run is. @public */
export interface DispatchProgress {
  readonly dispatchId: string;
  readonly run: number;
  /** Targets in a final state. */
  readonly done: number;
  readonly total: number;
  readonly verified: number;
}

/** A run's end. @public */
export interface DispatchSummary {
  readonly dispatchId: string;
  readonly run: number;
  /** `done`, `stopped` (canary), or `running` when the center closed first (resume it later). */
  readonly state: StoredRun['state'];
  readonly total: number;
  readonly counts: Readonly<Record<TargetState, number>>;
  readonly targets: readonly TargetResult[];
}

/** One run's state as {@link DispatchCenter.status} gives it. @public */
export interface RunStatus {
  readonly run: number;
  readonly args: readonly string[] | null;
  readonly state: StoredRun['state'];
  readonly wave: number;
  readonly waves: readonly number[];
  readonly createdAt: number;
  readonly endedAt: number | null;
  readonly counts: Readonly<Record<TargetState, number>>;
  readonly targets: readonly TargetResult[];
}

/** A dispatch's state. @public */
export interface DispatchStatus {
  readonly id: string;
  readonly bundle: Digest;
  readonly createdAt: number;
  readonly options: StoredDispatchOptions;
  readonly runs: readonly RunStatus[];
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
