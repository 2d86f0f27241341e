/**
 * What an agent must remember across restarts, in `stateDir/state.json`:
 *
 * ```text
 * { "version": 1,
 *   "bundles": { "<name>": <highest version run> },          the rollback floor
 *   "taken":   [["<dispatchId>", <run>, <expiresAt>], …],     bindings already acted on
 *   "pending": [{ "dispatchId", "run", "report" }, …],        signed reports not yet acknowledged
 *   "running": [{ "dispatchId", "run", "bundleDigest",         runs taken and not yet reported
 *                 "evidence", "startedAt" }, …] }              (absent in older files: none)
 * ```
 *
 * `running` holds what a report needs, so an agent killed mid-run (SIGKILL,
 * power loss) can sign a true `crashed` outcome for each such run when it
 * starts again, instead of leaving the center with no outcome at all (the
 * binding is in `taken`, so the run is never started twice). This is the one
 * place the evidence value touches the disk before its report: it is
 * single-use (the binding is taken, so no other run can present it), it is
 * only ever used again to report that very run once it is over, the same
 * value is written into `pending` inside the signed report the moment the
 * run ends, and the file is 0600 in a 0700 directory. An entry is removed
 * when the run's report is kept in `pending`.
 *
 * A binding is kept in `taken` until its own `expiresAt`; after that it is
 * refused as expired anyway, so forgetting it cannot let it run twice.
 * The file is written to `state.json.tmp`, flushed (unless `sync` is off)
 * and renamed over the old one, so a crash leaves the old or the new state,
 * never half of one. Saves are serialised; a save asked for while one runs
 * is folded into the next.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DispatchError } from '../../../errors/index.js';

const STATE_VERSION = 1;
/** File name of the state inside the state directory. */
export const STATE_FILE = 'state.json';
/** Most reports kept waiting for an acknowledgement; the oldest go first. */
export const MAX_KEPT_REPORTS = 1000;
/** Most bindings remembered (each until it expires); the soonest to expire go first. */
export const MAX_TAKEN = 100_000;

/** A signed report the center has not acknowledged. */
export interface PendingReport {
  readonly dispatchId: string;
  readonly run: number;
  /** The report as on the wire (base64url). */
  readonly report: string;
}

/** A run taken and not yet reported: what a `crashed` report for it needs. */
export interface RunningRun {
  readonly dispatchId: string;
  readonly run: number;
  readonly bundleDigest: string;
  /** The binding's evidence (64 hex); see the file comment for why it may sit here. */
  readonly evidence: string;
  /** When the agent accepted the order (ms since the epoch). */
  readonly startedAt: number;
}

interface StateFile {
  version: number;
  bundles: Record<string, number>;
  taken: [string, number, number][];
  pending: PendingReport[];
  running?: RunningRun[];
}

const keyOf = (dispatchId: string, run: number) => `${dispatchId}/${run}`;

/**
 * An agent's persistent state.
 * @internal
 */
export class AgentState {
  readonly #file: string;
  readonly #sync: boolean;
  readonly #now: () => number;
  readonly #floors = new Map<string, number>();
  readonly #taken = new Map<string, number>();
  readonly #pending = new Map<string, PendingReport>();
  readonly #running = new Map<string, RunningRun>();
  #saving: Promise<void> | undefined;
  #again = false;

  private constructor(dir: string, sync: boolean, now: () => number) {
    this.#file = path.join(dir, STATE_FILE);
    this.#sync = sync;
    this.#now = now;
  }

  /**
   * Load the state from `dir` (created when missing; an absent file is an
   * empty state). Throws `DispatchError` `GS_ERR_DISPATCH_MALFORMED` for a
   * damaged file: starting over would forget the rollback floor.
   */
  static async open(dir: string, options: { sync?: boolean; now?: () => number } = {}): Promise<AgentState> {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const state = new AgentState(dir, options.sync ?? true, options.now ?? Date.now);
    let text: string | undefined;
    try {
      text = await fs.readFile(state.#file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text !== undefined) state.#parse(text);
    return state;
  }

  #parse(text: string): void {
    const bad = (why: string) => new DispatchError('GS_ERR_DISPATCH_MALFORMED', `agent state ${this.#file} is damaged (${why}); restore it or remove it to start with no rollback floor`);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw bad('not JSON');
    }
    const s = raw as Partial<StateFile>;
    if (typeof raw !== 'object' || raw === null || s.version !== STATE_VERSION) throw bad(`version must be ${STATE_VERSION}`);
    if (typeof s.bundles !== 'object' || s.bundles === null || Array.isArray(s.bundles)) throw bad('bundles must be an object');
    for (const [name, v] of Object.entries(s.bundles)) {
      if (!Number.isSafeInteger(v) || v < 1) throw bad(`bundles.${name} must be a positive integer`);
      this.#floors.set(name, v);
    }
    if (!Array.isArray(s.taken)) throw bad('taken must be an array');
    const now = this.#now();
    for (const t of s.taken) {
      if (!Array.isArray(t) || t.length !== 3 || typeof t[0] !== 'string' || !Number.isSafeInteger(t[1]) || !Number.isSafeInteger(t[2])) throw bad('taken holds a bad entry');
      if (t[2] >= now) this.#taken.set(keyOf(t[0], t[1]), t[2]);
    }
    if (!Array.isArray(s.pending)) throw bad('pending must be an array');
    for (const p of s.pending) {
      if (typeof p !== 'object' || p === null || typeof p.dispatchId !== 'string' || !Number.isSafeInteger(p.run) || typeof p.report !== 'string') throw bad('pending holds a bad entry');
      this.#pending.set(keyOf(p.dispatchId, p.run), { dispatchId: p.dispatchId, run: p.run, report: p.report });
    }
    if (s.running !== undefined && !Array.isArray(s.running)) throw bad('running must be an array');
    for (const r of s.running ?? []) {
      const ok =
        typeof r === 'object' && r !== null && typeof r.dispatchId === 'string' && Number.isSafeInteger(r.run) &&
        typeof r.bundleDigest === 'string' && typeof r.evidence === 'string' && Number.isSafeInteger(r.startedAt) && r.startedAt >= 0;
      if (!ok) throw bad('running holds a bad entry');
      this.#running.set(keyOf(r.dispatchId, r.run), { dispatchId: r.dispatchId, run: r.run, bundleDigest: r.bundleDigest, evidence: r.evidence, startedAt: r.startedAt });
    }
  }

  /** The lowest version of `name` this agent may run: the highest it has run (0 for none). */
  floor(name: string): number {
    return this.#floors.get(name) ?? 0;
  }

  /** Remember that `version` of `name` was run. */
  raiseFloor(name: string, version: number): void {
    if (version > this.floor(name)) this.#floors.set(name, version);
  }

  /** True when this (dispatch, run) was already acted on. */
  isTaken(dispatchId: string, run: number): boolean {
    const until = this.#taken.get(keyOf(dispatchId, run));
    return until !== undefined && until >= this.#now();
  }

  /** Remember a binding acted on, until its expiry. */
  take(dispatchId: string, run: number, expiresAt: number): void {
    this.#taken.set(keyOf(dispatchId, run), expiresAt);
    if (this.#taken.size > MAX_TAKEN) this.#prune(true);
  }

  /** Remember a run taken and not yet reported (until {@link AgentState.addPending} keeps its report). */
  startRun(run: RunningRun): void {
    this.#running.set(keyOf(run.dispatchId, run.run), { ...run });
  }

  /** Runs taken and not yet reported, oldest first. */
  running(): RunningRun[] {
    return [...this.#running.values()];
  }

  /** Keep a signed report until the center acknowledges it; its run is no longer running. */
  addPending(report: PendingReport): void {
    this.#running.delete(keyOf(report.dispatchId, report.run));
    this.#pending.delete(keyOf(report.dispatchId, report.run));
    this.#pending.set(keyOf(report.dispatchId, report.run), report);
    while (this.#pending.size > MAX_KEPT_REPORTS) this.#pending.delete(this.#pending.keys().next().value as string);
  }

  /** Forget an acknowledged report; false when none was pending. */
  dropPending(dispatchId: string, run: number): boolean {
    return this.#pending.delete(keyOf(dispatchId, run));
  }

  /** Reports not yet acknowledged, oldest first. */
  pending(): PendingReport[] {
    return [...this.#pending.values()];
  }

  #prune(overfull: boolean): void {
    const now = this.#now();
    for (const [k, until] of this.#taken) if (until < now) this.#taken.delete(k);
    if (overfull && this.#taken.size > MAX_TAKEN) {
      const soonest = [...this.#taken].sort((a, b) => a[1] - b[1]).slice(0, this.#taken.size - MAX_TAKEN);
      for (const [k] of soonest) this.#taken.delete(k);
    }
  }

  /** Write the state (atomically). Resolves once what was asked before the call is on disk. */
  save(): Promise<void> {
    if (this.#saving) {
      this.#again = true;
      return this.#saving;
    }
    const run = async (): Promise<void> => {
      do {
        this.#again = false;
        await this.#write();
      } while (this.#again);
    };
    this.#saving = run().finally(() => (this.#saving = undefined));
    return this.#saving;
  }

  async #write(): Promise<void> {
    this.#prune(false);
    const file: StateFile = {
      version: STATE_VERSION,
      bundles: Object.fromEntries(this.#floors),
      taken: [...this.#taken].map(([k, until]) => {
        const i = k.lastIndexOf('/');
        return [k.slice(0, i), Number(k.slice(i + 1)), until] as [string, number, number];
      }),
      pending: this.pending(),
      running: this.running(),
    };
    const tmp = `${this.#file}.tmp`;
    const text = JSON.stringify(file);
    if (this.#sync) {
      const handle = await fs.open(tmp, 'w', 0o600);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
    } else {
      await fs.writeFile(tmp, text, { mode: 0o600 });
    }
    await fs.rename(tmp, this.#file);
  }
}
