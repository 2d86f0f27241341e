/**
 * Run control: orders one at a time in arrival order, the one loader an
 * agent keeps (the seed keeps one 配付コードロード・起動部 per endpoint),
 * started for a `run` after the previous one ended (the seed's
 * re-operation flow, figure 3), asked to run its loaded code again for a
 * `rerun`, stopped by `cancel`, by close, or after `idleLoaderMs` with
 * nothing to do; each run's result goes to the reports.
 */
import { DispatchError } from '../../../errors/index.js';
import type { BindingFields, Bundle, ChannelMessage, DispatchChannel } from '../wire/index.js';
import type { OrderChecks } from './acceptance.js';
import type { AgentHost } from './host.js';
import type { AgentReports } from './reports.js';
import { asDispatchError, blankResult } from './results.js';
import type { RunningRun } from './state.js';
import type { LoaderHandle, LoaderResult } from './types.js';

/** The one loader an agent keeps. */
interface Slot {
  readonly handle: LoaderHandle;
  readonly bundle: Bundle;
  readonly dispatchId: string;
  /** Runs started and not yet reported. */
  running: number;
  idle: ReturnType<typeof setTimeout> | undefined;
}

/** Carries out the agent's orders. @internal */
export class RunControl {
  readonly #host: AgentHost;
  readonly #checks: OrderChecks;
  readonly #reports: AgentReports;
  #orders: Promise<void> = Promise.resolve();
  #slot: Slot | undefined;

  constructor(host: AgentHost, checks: OrderChecks, reports: AgentReports) {
    this.#host = host;
    this.#checks = checks;
    this.#reports = reports;
  }

  /** Queue a `run` or `rerun` order behind every order before it. */
  order(ch: DispatchChannel, m: Extract<ChannelMessage, { t: 'run' | 'rerun' }>): void {
    this.#serial(() => (m.t === 'run' ? this.#onRun(ch, m) : this.#onRerun(ch, m)));
  }

  /** `cancel`: stop the fetch or the loader of `dispatchId`; `error` UNKNOWN_DISPATCH when neither is there. */
  async cancel(ch: DispatchChannel, dispatchId: string): Promise<void> {
    let found = false;
    if (this.#checks.cancel(dispatchId)) found = true;
    if (this.#slot?.dispatchId === dispatchId) {
      found = true;
      await this.#endSlot('cancelled');
    }
    if (!found) this.#host.channels.post(ch, { t: 'error', code: 'GS_ERR_DISPATCH_UNKNOWN_DISPATCH', message: `dispatch ${dispatchId} is not running here`, dispatchId });
  }

  /** On close: abandon a fetch, wait for the orders under way, end the loader (a run in progress reports `timeout`, reason `agent closed`). */
  async stop(): Promise<void> {
    this.#checks.cancel();
    await this.#orders;
    await this.#endSlot('agent closed');
  }

  /** Run `fn` after every order before it; its failures become warnings. */
  #serial(fn: () => Promise<void>): void {
    const next = this.#orders.then(() => (this.#host.closed() ? undefined : fn())).catch((e: unknown) => this.#host.warn(e));
    this.#orders = next;
  }

  /** What a `crashed` report for this run would need, should the agent die before reporting it. */
  #runningOf(fields: BindingFields): RunningRun {
    return { dispatchId: fields.dispatchId, run: fields.run, bundleDigest: fields.bundleDigest, evidence: fields.evidence, startedAt: this.#host.settings.now() };
  }

  async #onRun(ch: DispatchChannel, m: Extract<ChannelMessage, { t: 'run' }>): Promise<void> {
    const host = this.#host;
    const checked = await this.#checks.binding(ch, m.binding);
    if (!checked) return;
    const { fields } = checked;
    const state = host.state();
    const bundle = await this.#checks.bundle(ch, m, fields);
    if (!bundle) return;

    // Accepted: remember it before anything runs, so a restart cannot replay it or roll back.
    const { name, version } = bundle.metadata;
    state.take(fields.dispatchId, fields.run, fields.expiresAt);
    state.startRun(this.#runningOf(fields));
    state.raiseFloor(name, version);
    if (!(await this.#saveBeforeRun(ch, fields))) return;
    host.channels.post(ch, { t: 'accepted', dispatchId: fields.dispatchId, run: fields.run });
    host.emit('accepted', { dispatchId: fields.dispatchId, run: fields.run, bundle: bundle.digest, name, version });

    // The seed's re-operation flow: a previous loader is ended before the new one starts.
    await this.#endSlot('superseded');
    const { centerKey, msid, workDir, executor, now } = host.settings;
    let handle: LoaderHandle;
    try {
      handle = executor.start(
        { bundle: bundle.bytes, binding: m.binding, centerKey, agentMsid: msid, workDir, minVersion: state.floor(name), timeoutMs: bundle.metadata.timeoutMs },
        { log: (message) => host.emit('log', { dispatchId: fields.dispatchId, message }) },
      );
    } catch (e) {
      const at = now();
      host.track(this.#reports.report(ch, blankResult(fields, 'crashed', `GS_ERR_DISPATCH_LOADER_FAILED: ${asDispatchError(e).message}`, 'none', at, at)));
      return;
    }
    const slot: Slot = { handle, bundle, dispatchId: fields.dispatchId, running: 1, idle: undefined };
    this.#slot = slot;
    host.track(handle.result.then((result) => this.#finishRun(ch, slot, result)));
  }

  async #onRerun(ch: DispatchChannel, m: Extract<ChannelMessage, { t: 'rerun' }>): Promise<void> {
    const host = this.#host;
    const checked = await this.#checks.binding(ch, m.binding);
    if (!checked) return;
    const { fields } = checked;
    const slot = this.#slot;
    if (!(await this.#checks.loaded(ch, slot !== undefined && slot.handle.alive ? slot.bundle : undefined, fields))) return;
    const live = slot!;
    host.state().take(fields.dispatchId, fields.run, fields.expiresAt);
    host.state().startRun(this.#runningOf(fields));
    if (!(await this.#saveBeforeRun(ch, fields))) return;
    host.channels.post(ch, { t: 'accepted', dispatchId: fields.dispatchId, run: fields.run });
    const { name, version } = live.bundle.metadata;
    host.emit('accepted', { dispatchId: fields.dispatchId, run: fields.run, bundle: live.bundle.digest, name, version });
    clearTimeout(live.idle);
    live.idle = undefined;
    live.running++;
    host.track(
      live.handle.rerun(m.binding).then(
        (result) => this.#finishRun(ch, live, result),
        (e: unknown) => {
          const at = host.settings.now();
          return this.#finishRun(ch, live, blankResult(fields, 'refused', asDispatchError(e, 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE').code, 'none', at, at));
        },
      ),
    );
  }

  async #finishRun(ch: DispatchChannel, slot: Slot, result: LoaderResult): Promise<void> {
    slot.running--;
    if (this.#slot === slot) {
      if (!slot.handle.alive) this.#slot = undefined;
      else if (slot.running === 0) this.#armIdle(slot);
    }
    await this.#reports.report(ch, result);
  }

  #armIdle(slot: Slot): void {
    clearTimeout(slot.idle);
    slot.idle = setTimeout(() => {
      slot.idle = undefined;
      if (this.#slot === slot && slot.running === 0) this.#host.track(this.#endSlot('idle'));
    }, this.#host.settings.idleLoaderMs);
    slot.idle.unref?.();
  }

  /** End the current loader (its run in progress reports `timeout` with `reason`). */
  async #endSlot(reason: string): Promise<void> {
    const slot = this.#slot;
    if (!slot) return;
    this.#slot = undefined;
    clearTimeout(slot.idle);
    await slot.handle.kill(reason);
  }

  /**
   * Save the state before an order runs; when that fails the order is
   * refused (nothing runs that a restart could replay or roll back). The
   * binding stays taken in memory, so it is not retried in this process.
   */
  async #saveBeforeRun(ch: DispatchChannel, fields: BindingFields): Promise<boolean> {
    try {
      await this.#host.state().save();
      return true;
    } catch (e) {
      this.#host.warn(e);
      await this.#checks.refuse(ch, new DispatchError('GS_ERR_DISPATCH_LOADER_FAILED', `the agent could not save its state: ${e instanceof Error ? e.message : String(e)}`), fields, { report: true });
      return false;
    }
  }
}
