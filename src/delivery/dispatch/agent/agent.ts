/**
 * The dispatch agent: the seed's resident client (クライアント, §3.1.3.1)
 * as a relay server. It serves one dispatch channel per connection, acts
 * only on orders signed by the center key it pins, starts one loader per
 * dispatch (ending the previous one first: the seed's re-operation flow,
 * figure 3), signs what the loader reports with its identity key, and keeps
 * each signed report until the center acknowledges it.
 *
 * Orders on any channel are handled one at a time, in arrival order:
 *
 * ```text
 *  order   check (in this order)                          refused with                       signed report?
 *  run     binding decodes                                MALFORMED                          no
 *          signed by the pinned key, names this agent,    BAD_SIGNATURE / WRONG_AGENT /      no
 *            not expired                                    EXPIRED
 *          (dispatchId, run) not acted on before          REPLAYED                           no (the first report stands)
 *          bundle: inline body, or fetch on this channel  TIMEOUT / UNKNOWN_BUNDLE           yes, outcome refused
 *          decodes, digest = the binding's                MALFORMED / DIGEST_MISMATCH / …    yes
 *          signed, not expired, version ≥ floor           BAD_SIGNATURE / EXPIRED / ROLLBACK yes
 *          → accepted: state saved (taken, floor), `accepted` sent, the previous loader
 *            ended, the new one started; its result is signed and sent as `report`
 *  rerun   binding checks as above                        as above                           no
 *          a live loader holds the binding's bundle       UNKNOWN_BUNDLE / DIGEST_MISMATCH   yes
 *          and the bundle has not expired                 EXPIRED                            yes
 *          → accepted: the loaded code runs again, nothing is fetched
 *  auth    the center key's signature over this           BAD_SIGNATURE (error only)
 *            connection's hello challenge and our MSID
 *          → the channel is authenticated (for ack and cancel)
 *  cancel  the channel is authenticated                   BAD_SIGNATURE (error only)
 *          the dispatch is being fetched or loaded        UNKNOWN_DISPATCH (error only)
 *          → fetch: refused report (reason cancelled); loader: killed, the run in
 *            progress reports outcome timeout, reason cancelled
 *  ack     the channel is authenticated                   BAD_SIGNATURE (error only)
 *          → drops that pending report
 * ```
 *
 * `ack` and `cancel` carry no signature of their own, so anyone who can
 * reach the agent could otherwise make it forget a report or stop a run:
 * each connection's `hello` carries a fresh random challenge, and the
 * center's `auth` answer (wire's `signChannelAuth`) proves it holds the
 * pinned key. `run` and `rerun` need no authenticated channel: their
 * bindings are signed.
 *
 * Nothing here throws out of {@link DispatchAgent.serve}: a bad message gets
 * an `error` answer, a broken channel ends that channel only.
 */
import { EventEmitter } from 'eventemitter3';
import { ERROR_CODES, DispatchError, type DispatchErrorCode } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import type { Identity } from '../../../session/index.js';
import { serverStart, type ServerStartOptions, type SockIo, type SockServer } from '../../../socket/index.js';
import {
  DEFAULT_MAX_BUNDLE_BYTES,
  DispatchChannel,
  MAX_HEADER_BYTES,
  MAX_PENDING_REPORTS,
  decodeBinding,
  decodeBundle,
  newChannelChallenge,
  parseCenterKey,
  signReport,
  toBase64url,
  verifyBinding,
  verifyBundle,
  verifyChannelAuth,
  type BindingFields,
  type Bundle,
  type ChannelMessage,
  type SignedBinding,
  type SignedReport,
} from '../wire/index.js';
import { ProcessExecutor } from './executor.js';
import { asDispatchError, blankResult, clip } from './results.js';
import { AgentState, type RunningRun } from './state.js';
import type { Executor, LoaderHandle, LoaderResult } from './types.js';

/**
 * Options of {@link DispatchAgent}.
 * @public
 */
export interface DispatchAgentOptions {
  /** The agent's identity: its MSID is the one bindings must name; it signs every report. */
  identity: Identity;
  /** The center's public key (32 bytes, or `ed25519:…` text, or a PUBLIC KEY PEM block): the only signer the agent obeys. */
  centerKey: Uint8Array | string;
  /** Where the agent keeps `state.json` (rollback floor, bindings acted on, reports not yet acknowledged). */
  stateDir: string;
  /** Where target programs are written (each bundle's `target.path` is relative to it). */
  workDir: string;
  /** Where loaders run. Default: a {@link ProcessExecutor} (a Node process per dispatch). */
  executor?: Executor;
  /** Largest bundle accepted, in bytes. Default 64 MiB. */
  maxBundleBytes?: number;
  /** How long to wait for a fetched bundle, in ms. Default 30,000. */
  fetchTimeoutMs?: number;
  /** A loaded bundle with no run for this long (ms) is ended, so idle loaders do not pile up. Default 600,000 (10 min). */
  idleLoaderMs?: number;
  /** Flush `state.json` to disk on every save (default true). Off only for benchmarks and tests. */
  syncState?: boolean;
  /** Clock, ms since the epoch (default `Date.now`): expiry checks and report times. */
  now?: () => number;
}

/** Defaults of {@link DispatchAgentOptions}. @public */
export const DEFAULT_DISPATCH_AGENT_OPTIONS = Object.freeze({
  maxBundleBytes: DEFAULT_MAX_BUNDLE_BYTES,
  fetchTimeoutMs: 30_000,
  idleLoaderMs: 600_000,
  syncState: true,
});

/** Longest timer Node accepts. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Answers a channel may hold for a peer that does not read them before the agent drops that peer. */
const MAX_QUEUED_MESSAGES = 256;
/** A hello header's bytes besides its certificate and pending reports (generous). */
const HELLO_HEADER_ROOM = 512;
/** How long an acknowledgement's save may wait to be folded with others. */
const LAZY_SAVE_MS = 200;
/** How long close() lets channels send what they hold. */
const CLOSE_WAIT_MS = 2_000;
/** The reason of the `crashed` report an agent signs on start for a run its previous process never reported. */
export const LOST_RUN_REASON = 'agent restarted during the run';
/** Room for a channel message's header beside the largest bundle body. */
const MESSAGE_HEADER_ROOM = 64 * 1024;

/**
 * Events of a {@link DispatchAgent}.
 * @public
 */
export interface DispatchAgentEvents {
  /** An order passed every check and its loader is starting (or its loaded code runs again). */
  accepted: (info: { dispatchId: string; run: number; bundle: string; name: string; version: number }) => void;
  /** An order was refused, or an `auth`, `ack` or `cancel` not backed by the center key (`code` is a `GS_ERR_DISPATCH_…` code). */
  refused: (info: { code: string; message: string; dispatchId?: string; run?: number }) => void;
  /** A report was signed (it is kept until acknowledged). */
  report: (report: SignedReport) => void;
  /** A line the distributed code logged. */
  log: (info: { dispatchId: string; message: string }) => void;
  /** Something failed that is not an order's outcome (a state save, a send); the agent carries on. */
  warning: (error: Error) => void;
}

/** The one loader an agent keeps (the seed keeps one 配付コードロード・起動部 per endpoint). */
interface Slot {
  readonly handle: LoaderHandle;
  readonly bundle: Bundle;
  readonly dispatchId: string;
  /** Runs started and not yet reported. */
  running: number;
  idle: ReturnType<typeof setTimeout> | undefined;
}

/** An order being prepared (its bundle being fetched), which `cancel` can stop. */
interface Preparing {
  readonly dispatchId: string;
  cancel(): void;
}

/** Thrown into a fetch by `cancel`. */
class Cancelled extends Error {}

const DISPATCH_CODES: readonly string[] = ERROR_CODES.dispatch;

/**
 * The agent side of verifiable dispatch (docs/dispatch.md).
 *
 * @example
 * ```ts
 * const identity = await loadOrCreateServerIdentity('/var/lib/gatesock/agent');
 * const agent = await DispatchAgent.open({ identity, centerKey: 'ed25519:…', stateDir: '/var/lib/gatesock/agent', workDir: '/var/lib/gatesock/work' });
 * const server = await agent.listen({ controller: 'ctl.example:7000', roots: [root] });
 * console.log(`agent ${agent.msid} online as ${server.pcid}`);
 * ```
 * @public
 */
export class DispatchAgent extends EventEmitter<DispatchAgentEvents> {
  /** This agent's MSID (its identity's). */
  readonly msid: string;
  readonly #identity: Identity;
  readonly #certificate: string;
  readonly #centerKey: Uint8Array;
  readonly #workDir: string;
  readonly #executor: Executor;
  readonly #maxBundleBytes: number;
  readonly #fetchTimeoutMs: number;
  readonly #idleLoaderMs: number;
  readonly #now: () => number;
  readonly #ready: Promise<AgentState>;
  #state: AgentState | undefined;
  readonly #channels = new Set<DispatchChannel>();
  readonly #tracked = new Set<Promise<unknown>>();
  /** Each channel's hello challenge, and whether the center has answered it (see `auth`). */
  readonly #auth = new WeakMap<DispatchChannel, { readonly challenge: string; ok: boolean }>();
  /** Messages posted to each channel and not yet taken by its socket. */
  readonly #queued = new WeakMap<DispatchChannel, number>();
  #orders: Promise<void> = Promise.resolve();
  #slot: Slot | undefined;
  #preparing: Preparing | undefined;
  #saveTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** Use {@link DispatchAgent.open} to wait until the state is loaded; `serve` waits for it too. */
  constructor(options: DispatchAgentOptions) {
    super();
    checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
    const id = options.identity;
    checkOption(typeof id === 'object' && id !== null && typeof id.msid === 'string' && typeof id.sign === 'function' && id.certificate?.der instanceof Uint8Array, 'identity', 'must be an Identity');
    let centerKey: Uint8Array;
    try {
      centerKey = parseCenterKey(options.centerKey);
    } catch {
      checkOption(false, 'centerKey', 'must be a 32-byte Ed25519 public key, "ed25519:<base64url>" or a PUBLIC KEY PEM block');
    }
    checkOption(typeof options.stateDir === 'string' && options.stateDir.length > 0, 'stateDir', 'must be a directory path');
    checkOption(typeof options.workDir === 'string' && options.workDir.length > 0, 'workDir', 'must be a directory path');
    checkOption(options.executor === undefined || typeof options.executor?.start === 'function', 'executor', 'must be an Executor');
    const d = DEFAULT_DISPATCH_AGENT_OPTIONS;
    const maxBundleBytes = options.maxBundleBytes ?? d.maxBundleBytes;
    const fetchTimeoutMs = options.fetchTimeoutMs ?? d.fetchTimeoutMs;
    const idleLoaderMs = options.idleLoaderMs ?? d.idleLoaderMs;
    checkOption(Number.isSafeInteger(maxBundleBytes) && maxBundleBytes > 0, 'maxBundleBytes', 'must be a positive integer');
    checkOption(Number.isInteger(fetchTimeoutMs) && fetchTimeoutMs > 0 && fetchTimeoutMs <= MAX_TIMER_MS, 'fetchTimeoutMs', `must be an integer from 1 to ${MAX_TIMER_MS}`);
    checkOption(Number.isInteger(idleLoaderMs) && idleLoaderMs > 0 && idleLoaderMs <= MAX_TIMER_MS, 'idleLoaderMs', `must be an integer from 1 to ${MAX_TIMER_MS}`);
    checkOption(options.syncState === undefined || typeof options.syncState === 'boolean', 'syncState', 'must be a boolean');
    checkOption(options.now === undefined || typeof options.now === 'function', 'now', 'must be a function');

    this.#identity = id;
    this.msid = id.msid;
    this.#certificate = toBase64url(id.certificate.der);
    this.#centerKey = centerKey!;
    this.#workDir = options.workDir;
    this.#executor = options.executor ?? new ProcessExecutor();
    this.#maxBundleBytes = maxBundleBytes;
    this.#fetchTimeoutMs = fetchTimeoutMs;
    this.#idleLoaderMs = idleLoaderMs;
    this.#now = options.now ?? Date.now;
    this.#ready = AgentState.open(options.stateDir, { sync: options.syncState ?? d.syncState, now: this.#now }).then(async (s) => {
      this.#state = s;
      await this.#reportLostRuns(s);
      return s;
    });
    this.#ready.catch(() => undefined);
  }

  /**
   * An agent with its state loaded from `stateDir`. Rejects with
   * `DispatchError` `GS_ERR_DISPATCH_MALFORMED` when `state.json` is
   * damaged, and with `ConfigError` for bad options.
   */
  static async open(options: DispatchAgentOptions): Promise<DispatchAgent> {
    const agent = new DispatchAgent(options);
    await agent.#ready;
    return agent;
  }

  /**
   * Serve one center connection: send `hello` (with the reports not yet
   * acknowledged and a fresh challenge), then act on its messages until it
   * closes; `ack` and `cancel` only after the center's `auth` verified. Resolves when
   * the channel ends; never rejects.
   */
  async serve(sock: SockIo): Promise<void> {
    let channel: DispatchChannel | undefined;
    try {
      await this.#ready;
      if (this.#closed) throw new DispatchError('GS_ERR_DISPATCH_LOADER_FAILED', 'the agent is closed');
      channel = new DispatchChannel(sock, { maxBytes: this.#maxBundleBytes + MESSAGE_HEADER_ROOM });
    } catch (e) {
      if (!this.#closed) this.#warn(e);
      await sock.disconnect().catch(() => undefined);
      return;
    }
    const ch = channel;
    const ended = new Promise<void>((resolve) => ch.once('close', () => resolve()));
    this.#channels.add(ch);
    ch.on('message', (m) => this.#onMessage(ch, m));
    if (!ch.closed) {
      // As many pending reports as one hello holds; the rest follow as `report` messages.
      const pending = this.#state!.pending();
      let room = MAX_HEADER_BYTES - HELLO_HEADER_ROOM - this.#certificate.length;
      let listed = 0;
      while (listed < pending.length && listed < MAX_PENDING_REPORTS && (room -= pending[listed]!.report.length + 16) >= 0) listed++;
      const challenge = newChannelChallenge();
      this.#auth.set(ch, { challenge, ok: false });
      this.#post(ch, { t: 'hello', agentMsid: this.msid, certificate: this.#certificate, pending: pending.slice(0, listed).map((p) => ({ report: p.report })), challenge });
      for (const p of pending.slice(listed)) if (!(await this.#send(ch, { t: 'report', report: p.report, certificate: this.#certificate }))) break;
      await ended;
    }
    this.#channels.delete(ch);
  }

  /**
   * Go online as a relay server (`serverStart` with this agent's identity)
   * and serve every connection.
   */
  listen(options: Omit<ServerStartOptions, 'identity'> & { identity?: Identity }): Promise<SockServer> {
    checkOption(options.identity === undefined || options.identity.msid === this.msid, 'identity', "must be the agent's own identity (or left out)");
    return serverStart({ ...options, identity: this.#identity }, (sock) => this.serve(sock));
  }

  /**
   * Stop: a fetch in progress is abandoned, the loader and everything it
   * started are killed (a run in progress is reported as `timeout`, reason
   * `agent closed`, kept for the next start), channels close, state is saved.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#preparing?.cancel();
    await this.#orders;
    await this.#endSlot('agent closed');
    await Promise.allSettled([...this.#tracked]);
    // A channel closes once its queued messages are out; a peer that stopped reading gets CLOSE_WAIT_MS.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.allSettled([...this.#channels].map((c) => c.close())), new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    for (const c of this.#channels) if (!c.closed) void c.sock.disconnect().catch(() => undefined);
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    try {
      await this.#ready;
      await this.#state!.save();
    } catch (e) {
      this.#warn(e);
    }
  }

  #onMessage(ch: DispatchChannel, m: ChannelMessage): void {
    try {
      switch (m.t) {
        case 'run':
          this.#serial(() => this.#onRun(ch, m));
          return;
        case 'rerun':
          this.#serial(() => this.#onRerun(ch, m));
          return;
        case 'auth':
          this.#onAuth(ch, m.signature);
          return;
        case 'cancel':
          if (this.#authenticated(ch, 'cancel', { dispatchId: m.dispatchId })) this.#track(this.#onCancel(ch, m.dispatchId));
          return;
        case 'ack':
          if (this.#authenticated(ch, 'ack', { dispatchId: m.dispatchId, run: m.run }) && this.#state!.dropPending(m.dispatchId, m.run)) this.#saveSoon();
          return;
        case 'bundle': // the answer to a fetch (taken by the fetch itself), or late
        case 'error': // the center's answer to something; a fetch takes its own
          return;
        default:
          this.#post(ch, { t: 'error', code: 'GS_ERR_DISPATCH_MALFORMED', message: `an agent does not take "${m.t}" messages` });
      }
    } catch (e) {
      this.#warn(e);
    }
  }

  /** What a `crashed` report for this run would need, should the agent die before reporting it. */
  #runningOf(fields: BindingFields): RunningRun {
    return { dispatchId: fields.dispatchId, run: fields.run, bundleDigest: fields.bundleDigest, evidence: fields.evidence, startedAt: this.#now() };
  }

  /**
   * On start: every run taken by an earlier process and never reported died
   * with it (SIGKILL, power loss). Sign a `crashed` report for each (reason
   * {@link LOST_RUN_REASON}, start `none`: this process cannot know whether
   * the target had started) into `pending`, so the next `hello` delivers a
   * true outcome; the binding stays taken, so the run never starts twice.
   */
  async #reportLostRuns(state: AgentState): Promise<void> {
    const lost = state.running();
    if (lost.length === 0) return;
    const now = this.#now();
    for (const r of lost) {
      const result = blankResult(r, 'crashed', LOST_RUN_REASON, 'none', Math.min(r.startedAt, now), now);
      try {
        const signed = signReport({ ...result, agentMsid: this.msid }, this.#identity);
        state.addPending({ dispatchId: r.dispatchId, run: r.run, report: signed.encoded });
      } catch (e) {
        // A damaged entry (edited file) cannot be signed: warn; it is retried on the next start.
        this.#warn(e);
      }
    }
    // Not saving is harmless: the runs are still listed as running and are reported again next start.
    await state.save().catch((e: unknown) => this.#warn(e));
  }

  /** The center's answer to this channel's challenge: marks the channel authenticated when it verifies. */
  #onAuth(ch: DispatchChannel, signature: string): void {
    const auth = this.#auth.get(ch);
    if (auth === undefined) return;
    if (verifyChannelAuth(signature, { challenge: auth.challenge, agentMsid: this.msid }, this.#centerKey)) {
      auth.ok = true;
      return;
    }
    // A bad auth does not undo a good one: both came from the same peer on this encrypted connection.
    const message = 'auth is not the pinned center key\'s signature over this connection\'s challenge';
    this.emit('refused', { code: 'GS_ERR_DISPATCH_BAD_SIGNATURE', message });
    this.#post(ch, { t: 'error', code: 'GS_ERR_DISPATCH_BAD_SIGNATURE', message });
  }

  /** True when `ch` is authenticated; otherwise answers `error` BAD_SIGNATURE for the `what` message and nothing changes. */
  #authenticated(ch: DispatchChannel, what: 'ack' | 'cancel', ids: { dispatchId: string; run?: number }): boolean {
    if (this.#auth.get(ch)?.ok === true) return true;
    const message = `${what} refused: this channel has no valid auth from the center key (nothing ${what === 'ack' ? 'dropped' : 'cancelled'})`;
    this.emit('refused', { code: 'GS_ERR_DISPATCH_BAD_SIGNATURE', message, ...ids });
    this.#post(ch, { t: 'error', code: 'GS_ERR_DISPATCH_BAD_SIGNATURE', message, ...ids });
    return false;
  }

  /** Run `fn` after every order before it; its failures become warnings. */
  #serial(fn: () => Promise<void>): void {
    const next = this.#orders.then(() => (this.#closed ? undefined : fn())).catch((e: unknown) => this.#warn(e));
    this.#orders = next;
  }

  /** Decode and verify a binding; undefined (after answering `error`) when it does not verify or was acted on. */
  async #checkBinding(ch: DispatchChannel, encoded: string): Promise<{ signed: SignedBinding; fields: BindingFields } | undefined> {
    let signed: SignedBinding;
    try {
      signed = decodeBinding(encoded);
    } catch (e) {
      await this.#refuse(ch, e);
      return undefined;
    }
    let fields: BindingFields;
    try {
      fields = verifyBinding(signed, { centerKey: this.#centerKey, agentMsid: this.msid, now: this.#now() });
    } catch (e) {
      await this.#refuse(ch, e, signed.fields);
      return undefined;
    }
    if (this.#state!.isTaken(fields.dispatchId, fields.run)) {
      await this.#refuse(ch, new DispatchError('GS_ERR_DISPATCH_REPLAYED', `dispatch ${fields.dispatchId} run ${fields.run} was already acted on here`), fields);
      return undefined;
    }
    return { signed, fields };
  }

  async #onRun(ch: DispatchChannel, m: Extract<ChannelMessage, { t: 'run' }>): Promise<void> {
    const checked = await this.#checkBinding(ch, m.binding);
    if (!checked) return;
    const { fields } = checked;
    const state = this.#state!;

    let bundle: Bundle;
    try {
      let bytes: Uint8Array;
      if (m.inline) {
        if (!(m.body instanceof Uint8Array)) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', 'an inline run carries no bundle');
        bytes = m.body;
      } else {
        bytes = await this.#fetch(ch, fields);
      }
      bundle = decodeBundle(bytes, { maxBytes: this.#maxBundleBytes });
      if (bundle.digest !== fields.bundleDigest) {
        throw new DispatchError('GS_ERR_DISPATCH_DIGEST_MISMATCH', `the bundle is ${bundle.digest}; the binding names ${fields.bundleDigest}`);
      }
      verifyBundle(bundle, { centerKey: this.#centerKey, now: this.#now(), minVersion: state.floor(bundle.metadata.name) });
    } catch (e) {
      await this.#refuse(ch, e, fields, { report: true, reason: e instanceof Cancelled ? 'cancelled' : undefined });
      return;
    }

    // Accepted: remember it before anything runs, so a restart cannot replay it or roll back.
    const { name, version } = bundle.metadata;
    state.take(fields.dispatchId, fields.run, fields.expiresAt);
    state.startRun(this.#runningOf(fields));
    state.raiseFloor(name, version);
    if (!(await this.#saveBeforeRun(ch, fields))) return;
    this.#post(ch, { t: 'accepted', dispatchId: fields.dispatchId, run: fields.run });
    this.emit('accepted', { dispatchId: fields.dispatchId, run: fields.run, bundle: bundle.digest, name, version });

    // The seed's re-operation flow: a previous loader is ended before the new one starts.
    await this.#endSlot('superseded');
    let handle: LoaderHandle;
    try {
      handle = this.#executor.start(
        { bundle: bundle.bytes, binding: m.binding, centerKey: this.#centerKey, agentMsid: this.msid, workDir: this.#workDir, minVersion: state.floor(name), timeoutMs: bundle.metadata.timeoutMs },
        { log: (message) => this.emit('log', { dispatchId: fields.dispatchId, message }) },
      );
    } catch (e) {
      const now = this.#now();
      this.#track(this.#report(ch, blankResult(fields, 'crashed', `GS_ERR_DISPATCH_LOADER_FAILED: ${asDispatchError(e).message}`, 'none', now, now)));
      return;
    }
    const slot: Slot = { handle, bundle, dispatchId: fields.dispatchId, running: 1, idle: undefined };
    this.#slot = slot;
    this.#track(handle.result.then((result) => this.#finishRun(ch, slot, result)));
  }

  async #onRerun(ch: DispatchChannel, m: Extract<ChannelMessage, { t: 'rerun' }>): Promise<void> {
    const checked = await this.#checkBinding(ch, m.binding);
    if (!checked) return;
    const { fields } = checked;
    const slot = this.#slot;
    try {
      if (slot === undefined || !slot.handle.alive) throw new DispatchError('GS_ERR_DISPATCH_UNKNOWN_BUNDLE', `no bundle is loaded here to re-run (dispatch ${fields.dispatchId})`);
      if (slot.bundle.digest !== fields.bundleDigest) {
        throw new DispatchError('GS_ERR_DISPATCH_DIGEST_MISMATCH', `the binding names bundle ${fields.bundleDigest}; ${slot.bundle.digest} is loaded`);
      }
      verifyBundle(slot.bundle, { centerKey: this.#centerKey, now: this.#now() });
    } catch (e) {
      await this.#refuse(ch, e, fields, { report: true });
      return;
    }
    this.#state!.take(fields.dispatchId, fields.run, fields.expiresAt);
    this.#state!.startRun(this.#runningOf(fields));
    if (!(await this.#saveBeforeRun(ch, fields))) return;
    this.#post(ch, { t: 'accepted', dispatchId: fields.dispatchId, run: fields.run });
    const { name, version } = slot.bundle.metadata;
    this.emit('accepted', { dispatchId: fields.dispatchId, run: fields.run, bundle: slot.bundle.digest, name, version });
    clearTimeout(slot.idle);
    slot.idle = undefined;
    slot.running++;
    this.#track(
      slot.handle.rerun(m.binding).then(
        (result) => this.#finishRun(ch, slot, result),
        (e: unknown) => {
          const now = this.#now();
          return this.#finishRun(ch, slot, blankResult(fields, 'refused', asDispatchError(e, 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE').code, 'none', now, now));
        },
      ),
    );
  }

  async #onCancel(ch: DispatchChannel, dispatchId: string): Promise<void> {
    let found = false;
    if (this.#preparing?.dispatchId === dispatchId) {
      this.#preparing.cancel();
      found = true;
    }
    if (this.#slot?.dispatchId === dispatchId) {
      found = true;
      await this.#endSlot('cancelled');
    }
    if (!found) this.#post(ch, { t: 'error', code: 'GS_ERR_DISPATCH_UNKNOWN_DISPATCH', message: `dispatch ${dispatchId} is not running here`, dispatchId });
  }

  /** Ask the center for the bundle on this channel; bounded by `fetchTimeoutMs`, stopped by `cancel`. */
  async #fetch(ch: DispatchChannel, fields: BindingFields): Promise<Uint8Array> {
    const digest = fields.bundleDigest;
    let cancel!: () => void;
    const cancelled = new Promise<never>((_, reject) => (cancel = () => reject(new Cancelled('cancelled'))));
    cancelled.catch(() => undefined);
    this.#preparing = { dispatchId: fields.dispatchId, cancel };
    try {
      const answer = ch.next(
        (r) => (r.t === 'bundle' && r.digest === digest) || (r.t === 'error' && (r.dispatchId === fields.dispatchId || r.code === 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE')),
        this.#fetchTimeoutMs,
      );
      answer.catch(() => undefined);
      // A channel that closes makes `answer` reject; one that stops reading makes it time out.
      this.#post(ch, { t: 'fetch', digest });
      const reply = await Promise.race([answer, cancelled]);
      if (reply.t === 'bundle') return reply.body;
      if (reply.t === 'error') {
        const code = (DISPATCH_CODES.includes(reply.code) ? reply.code : 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE') as DispatchErrorCode;
        throw new DispatchError(code, `the center could not give bundle ${digest}: ${clip(String(reply.message))}`);
      }
      throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `unexpected ${reply.t} in answer to a fetch`);
    } catch (e) {
      if (e instanceof Cancelled || e instanceof DispatchError) throw e;
      throw new DispatchError('GS_ERR_DISPATCH_TIMEOUT', `bundle ${digest} did not arrive within ${this.#fetchTimeoutMs} ms`, { cause: e });
    } finally {
      this.#preparing = undefined;
    }
  }

  /**
   * Answer a refused order: `error` to the sender, and — when the binding
   * verified — a signed report with outcome `refused`, so the center records
   * a clear outcome.
   */
  async #refuse(ch: DispatchChannel, e: unknown, fields?: Pick<BindingFields, 'dispatchId' | 'run'> & Partial<BindingFields>, opts: { report?: boolean; reason?: string } = {}): Promise<void> {
    const err = e instanceof Cancelled ? new DispatchError('GS_ERR_DISPATCH_TIMEOUT', 'cancelled by the center') : asDispatchError(e, 'GS_ERR_DISPATCH_MALFORMED');
    const ids = fields === undefined ? {} : { dispatchId: fields.dispatchId, run: fields.run };
    this.emit('refused', { code: err.code, message: err.message, ...ids });
    this.#post(ch, { t: 'error', code: err.code, message: clip(err.message), ...ids });
    if (opts.report && fields?.bundleDigest !== undefined && fields.evidence !== undefined) {
      const now = this.#now();
      const full = fields as BindingFields;
      await this.#report(ch, blankResult(full, 'refused', opts.reason ?? err.code, 'none', now, now));
    }
  }

  async #finishRun(ch: DispatchChannel, slot: Slot, result: LoaderResult): Promise<void> {
    slot.running--;
    if (this.#slot === slot) {
      if (!slot.handle.alive) this.#slot = undefined;
      else if (slot.running === 0) this.#armIdle(slot);
    }
    await this.#report(ch, result);
  }

  #armIdle(slot: Slot): void {
    clearTimeout(slot.idle);
    slot.idle = setTimeout(() => {
      slot.idle = undefined;
      if (this.#slot === slot && slot.running === 0) this.#track(this.#endSlot('idle'));
    }, this.#idleLoaderMs);
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

  /** Sign a result, keep it until acknowledged, and send it (on its channel, or the newest open one). */
  async #report(ch: DispatchChannel, result: LoaderResult): Promise<void> {
    let signed: SignedReport;
    try {
      signed = signReport({ ...result, agentMsid: this.msid }, this.#identity);
    } catch (e) {
      this.#warn(e);
      return;
    }
    this.#state!.addPending({ dispatchId: result.dispatchId, run: result.run, report: signed.encoded });
    await this.#save();
    this.emit('report', signed);
    const target = ch.closed ? [...this.#channels].reverse().find((c) => !c.closed) : ch;
    if (target) this.#post(target, { t: 'report', report: signed.encoded, certificate: this.#certificate });
  }

  /**
   * Queue a message without waiting for the peer to take it: the channel
   * keeps its messages in order, and a peer that stops reading must not
   * stall the orders of every other channel.
   */
  #post(ch: DispatchChannel, m: ChannelMessage): void {
    const queued = (this.#queued.get(ch) ?? 0) + 1;
    this.#queued.set(ch, queued);
    if (queued > MAX_QUEUED_MESSAGES) {
      // The peer has not read our last answers: drop it rather than hold them all.
      void ch.sock.disconnect();
      return;
    }
    void this.#send(ch, m).finally(() => this.#queued.set(ch, (this.#queued.get(ch) ?? 1) - 1));
  }

  async #send(ch: DispatchChannel, m: ChannelMessage): Promise<boolean> {
    if (ch.closed) return false;
    try {
      await ch.send(m);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Save the state before an order runs; when that fails the order is
   * refused (nothing runs that a restart could replay or roll back). The
   * binding stays taken in memory, so it is not retried in this process.
   */
  async #saveBeforeRun(ch: DispatchChannel, fields: BindingFields): Promise<boolean> {
    try {
      await this.#state!.save();
      return true;
    } catch (e) {
      this.#warn(e);
      await this.#refuse(ch, new DispatchError('GS_ERR_DISPATCH_LOADER_FAILED', `the agent could not save its state: ${e instanceof Error ? e.message : String(e)}`), fields, { report: true });
      return false;
    }
  }

  /**
   * Save a little later, folding a burst (the acks for a hello's pending
   * reports) into one write. Losing it in a crash only means a report is
   * sent again, which the center recognises.
   */
  #saveSoon(): void {
    if (this.#saveTimer !== undefined) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      this.#track(this.#save());
    }, LAZY_SAVE_MS);
    this.#saveTimer.unref?.();
  }

  async #save(): Promise<void> {
    try {
      await this.#state!.save();
    } catch (e) {
      this.#warn(e);
    }
  }

  #track(p: Promise<unknown>): void {
    const t = p.catch((e: unknown) => this.#warn(e)).finally(() => this.#tracked.delete(t));
    this.#tracked.add(t);
  }

  #warn(e: unknown): void {
    const error = e instanceof Error ? e : new Error(String(e));
    try {
      this.emit('warning', error);
    } catch {
      // A listener that throws does not stop the agent.
    }
  }
}
