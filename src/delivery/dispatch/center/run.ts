/**
 * A run being carried out: the public {@link DispatchRun} handle and the
 * center's in-process bookkeeping of it ({@link Runtime}).
 */
import { EventEmitter } from 'eventemitter3';
import type { DispatchChannel, Digest } from '../wire/index.js';
import type { StoredDispatchOptions, StoredTarget } from './store.js';
import type { DispatchProgress, DispatchSummary, TargetResult, VerificationFailureRecord, WaveSummary } from './status.js';

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

/** Resolve a run's `done` with its summary (once). @internal */
export function finish(run: DispatchRun, summary: DispatchSummary): void {
  settle.get(run)?.(summary);
  settle.delete(run);
}

/** A run in progress in this process. @internal */
export interface Runtime {
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
