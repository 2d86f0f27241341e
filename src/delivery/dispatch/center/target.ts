/**
 * One target's life (one agent in one run of a dispatch), as a sans-I/O
 * state machine: every transition the center makes goes through
 * {@link nextTargetState}, and nothing else writes a target's state.
 *
 * ```
 *   pending ──start──▶ connecting ──issue──▶ issued ──accepted──▶ accepted
 *                      └──────────── in flight: any of these three ────────┘
 *
 *   in flight ──verified──────────────────▶ verified   (report checked; from connecting: a report kept by the agent, in its hello)
 *   in flight ──rejected──────────────────▶ failed     (verification failed, agent error, wrong agent, malformed input)
 *   in flight ──lost, attempts left───────▶ retry-wait (connect failed, no hello, disconnect, timeout)
 *   in flight ──lost, none left───────────▶ gave-up
 *   in flight ──resume────────────────────▶ retry-wait (a restarted center found it in flight; no attempt counted)
 *   retry-wait ──start────────────────────▶ connecting
 *   retry-wait ──verified─────────────────▶ verified   (a report kept by the agent, on another connection)
 *   pending, retry-wait ──skip────────────▶ skipped    (canary stop)
 * ```
 *
 * A report verifies against the target's current evidence, or against an
 * earlier one of the same target that a re-issue superseded once the agent
 * refuses the re-issue as replayed (it acts on a run once, so the earlier
 * order is the one that stands: its evidence becomes current again and the
 * report is accepted; a report that crossed the re-issue is held, unacked,
 * until then). Whatever state the target is in, a re-issue undone that way
 * takes the same `verified` or `lost` edge as any other attempt.
 *
 * `verified`, `failed`, `gave-up` and `skipped` are final. `verified` means
 * the report verified, whatever it says happened (a refused order or a
 * non-zero exit is still a verified report); {@link isTargetSuccess} is the
 * narrower "ran and exited 0" that canary waves count.
 */

/**
 * Where one target is (see the diagram in the center's `target.ts`).
 * @public
 */
export type TargetState = 'pending' | 'connecting' | 'issued' | 'accepted' | 'retry-wait' | 'verified' | 'failed' | 'gave-up' | 'skipped';

/** Every {@link TargetState}, in life order. @public */
export const TARGET_STATES: readonly TargetState[] = Object.freeze(['pending', 'connecting', 'issued', 'accepted', 'retry-wait', 'verified', 'failed', 'gave-up', 'skipped']);

/** The final states: a target there is done for its run. @public */
export const FINAL_TARGET_STATES: readonly TargetState[] = Object.freeze(['verified', 'failed', 'gave-up', 'skipped']);

/**
 * What happened to a target.
 * - `start`: a slot is free; the center starts connecting.
 * - `issue`: a fresh evidence value is stored and the order is sent.
 * - `accepted`: the agent acknowledged the order.
 * - `verified`: a report for this target verified.
 * - `rejected`: the attempt ended for good: a report failed verification,
 *   the agent answered `error`, or the peer was the wrong agent.
 * - `lost`: the attempt ended and may be tried again (connect failed,
 *   disconnect, timeout); `retry` says whether attempts are left.
 * - `skip`: the run no longer wants this target (canary stop).
 * - `resume`: a restarted center found the target in flight.
 * @public
 */
export type TargetEvent =
  | { kind: 'start' }
  | { kind: 'issue' }
  | { kind: 'accepted' }
  | { kind: 'verified' }
  | { kind: 'rejected' }
  | { kind: 'lost'; retry: boolean }
  | { kind: 'skip' }
  | { kind: 'resume' };

/** True for a final state. @public */
export function isFinalTargetState(state: TargetState): boolean {
  return state === 'verified' || state === 'failed' || state === 'gave-up' || state === 'skipped';
}

/**
 * The state after `event`, or `undefined` when `event` cannot happen in
 * `state` (the caller ignores it: a late event for a target that already
 * moved on must not move it back).
 * @public
 */
export function nextTargetState(state: TargetState, event: TargetEvent): TargetState | undefined {
  switch (`${state}:${event.kind}`) {
    case 'pending:start':
    case 'retry-wait:start':
      return 'connecting';
    case 'connecting:issue':
      return 'issued';
    case 'issued:accepted':
      return 'accepted';
    // A pending report in the agent's hello can verify a target still connecting (after a restart or a retry).
    case 'connecting:verified':
    case 'issued:verified':
    case 'accepted:verified':
    // A report the agent kept after a dropped connection, delivered while this target waited to retry.
    case 'retry-wait:verified':
      return 'verified';
    case 'connecting:rejected':
    case 'issued:rejected':
    case 'accepted:rejected':
      return 'failed';
    case 'connecting:lost':
    case 'issued:lost':
    case 'accepted:lost':
      return (event as { retry: boolean }).retry ? 'retry-wait' : 'gave-up';
    case 'pending:skip':
    case 'retry-wait:skip':
      return 'skipped';
    // The center that had it in flight is gone: try again without counting an attempt.
    case 'connecting:resume':
    case 'issued:resume':
    case 'accepted:resume':
      return 'retry-wait';
    default:
      return undefined;
  }
}

/**
 * The canary's notion of success: the report verified, outcome `ran`, no
 * signal, and exit code 0 (or none: a bundle with code only and no target
 * program). Everything else (failed verification, gave up, a verified
 * report of a refusal, a crash, a timeout, a signal or a non-zero exit)
 * counts against the wave.
 * @public
 */
export function isTargetSuccess(t: { state: TargetState; outcome: string | null; exitCode: number | null; signal: string | null }): boolean {
  return t.state === 'verified' && t.outcome === 'ran' && t.signal === null && (t.exitCode === 0 || t.exitCode === null);
}

/**
 * Delay before attempt `attempt + 1` after `attempt` failed ones (1-based):
 * exponential from `baseMs`, capped at `maxMs`, with jitter in the upper
 * half (so the delay is at least half the exponential step: a fleet that
 * lost its network comes back spread out, but never all at once at 0).
 * @public
 */
export function retryDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}
