/**
 * The agent's reporting loop (issue 8: "sent on joining and then
 * periodically; only changes after the first report"), independent of the
 * channel it runs over: collect, number (full first, then deltas), send, and
 * follow the center's answer. A center that lost track (`need-full`, `stale`)
 * gets a full report at once; a failed send makes the next report full.
 *
 * States: `idle` → (start) → `running` ⇄ `sending` → (stop) → `stopped`.
 */
import { EventEmitter } from 'eventemitter3';
import { checkOption } from '../../../errors/check.js';
import type { ConfigurationReport, FullReport } from '../report/index.js';
import { ReportSequencer } from './collect.js';

/** The center's answer to one report (what `applyReport` decided). @public */
export type CenterAnswer =
  | { readonly status: 'accepted' }
  | { readonly status: 'stale'; readonly expectSeqAbove: number }
  | { readonly status: 'need-full'; readonly reason?: string };

/** Options of {@link ConfigurationReporter}. @public */
export interface ReporterOptions {
  /** Collect the host's current full state (for instance `async () => (await collectConfiguration(o)).report`). */
  readonly collect: () => Promise<FullReport>;
  /** Deliver one report to the center and return its answer. */
  readonly send: (report: ConfigurationReport) => Promise<CenterAnswer>;
  /** Time between collections, ms. Default 3 600 000 (an hour). */
  readonly intervalMs?: number;
  /** The last sequence number this host used (persist it). Default 0. */
  readonly lastSeq?: number;
}

/** Events of {@link ConfigurationReporter}. @public */
export interface ReporterEvents {
  /** A report went out and the center answered. */
  sent: (report: ConfigurationReport, answer: CenterAnswer) => void;
  /** Collecting or sending failed; the loop goes on and the next report is full. */
  error: (err: unknown) => void;
}

/**
 * Runs collection on a timer and sends the results.
 *
 * @example
 * ```ts
 * const reporter = new ConfigurationReporter({
 *   collect: async () => (await collectConfiguration({ hostMsid })).report,
 *   send: (report) => channel.request(report),
 *   intervalMs: 15 * 60_000,
 * });
 * reporter.start();
 * ```
 * @public
 */
export class ConfigurationReporter extends EventEmitter<ReporterEvents> {
  readonly #options: ReporterOptions;
  readonly #intervalMs: number;
  readonly #sequencer: ReportSequencer;
  #state: 'idle' | 'running' | 'sending' | 'stopped' = 'idle';
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;

  constructor(options: ReporterOptions) {
    super();
    this.#intervalMs = options.intervalMs ?? 3_600_000;
    checkOption(Number.isInteger(this.#intervalMs) && this.#intervalMs > 0, 'intervalMs', 'must be an integer > 0');
    this.#options = options;
    this.#sequencer = new ReportSequencer(options.lastSeq ?? 0);
  }

  /** `idle`, `running`, `sending` or `stopped`. */
  get state(): 'idle' | 'running' | 'sending' | 'stopped' {
    return this.#state;
  }

  /** The last sequence number used (persist it to keep numbering across restarts). */
  get seq(): number {
    return this.#sequencer.seq;
  }

  /** Report now (the join report), then every `intervalMs`. */
  start(): void {
    if (this.#state !== 'idle') throw new Error(`ConfigurationReporter.start in state ${this.#state}`);
    this.#state = 'running';
    void this.#tick();
  }

  /** Stop the timer and wait for a report in flight. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const wasRunning = this.#state !== 'stopped';
    this.#state = 'stopped';
    if (wasRunning) await this.#inFlight;
  }

  /**
   * Collect and send once, now, following the center's answer (at most one
   * extra full report when it lost track). Resolves with the last answer.
   */
  async reportNow(): Promise<CenterAnswer> {
    const answer = await this.#collectAndSend();
    if (answer.status === 'accepted') return answer;
    // The center does not hold what the delta builds on, or our numbers are behind its: one full report (numbered above).
    return this.#collectAndSend();
  }

  /** Collect, number, send; on anything but acceptance the next report is full. */
  async #collectAndSend(): Promise<CenterAnswer> {
    const report = this.#sequencer.next(await this.#options.collect());
    let answer: CenterAnswer;
    try {
      answer = await this.#options.send(report);
    } catch (err) {
      this.#sequencer.requestFull();
      throw err;
    }
    this.emit('sent', report, answer);
    if (answer.status !== 'accepted') this.#sequencer.requestFull(answer.status === 'stale' ? answer.expectSeqAbove : undefined);
    return answer;
  }

  async #tick(): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'sending';
    const done = this.reportNow().then(
      () => undefined,
      (err: unknown) => {
        this.emit('error', err);
      },
    );
    this.#inFlight = done;
    await done;
    // stop() may have run while we awaited (TypeScript cannot see that).
    if ((this.#state as string) === 'stopped') return;
    this.#state = 'running';
    this.#timer = setTimeout(() => void this.#tick(), this.#intervalMs);
    this.#timer.unref?.();
  }
}
