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
 *
 * This module is the API (open, serve, listen, close), the routing of
 * messages and the agent's state saves; the channels (hello, auth, sends)
 * are channels.ts, the checks of the table above acceptance.ts, the loader
 * and its runs runs.ts, signing and sending reports reports.ts, the options
 * and their checks options.ts, the events and what the parts share host.ts.
 */
import { EventEmitter } from 'eventemitter3';
import { DispatchError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import type { Identity } from '../../../session/index.js';
import { serverStart, type ServerStartOptions, type SockIo, type SockServer } from '../../../socket/index.js';
import { DispatchChannel, type ChannelMessage } from '../wire/index.js';
import { OrderChecks } from './acceptance.js';
import { AgentChannels } from './channels.js';
import type { AgentHost, DispatchAgentEvents } from './host.js';
import { agentSettings, type AgentSettings, type DispatchAgentOptions } from './options.js';
import { AgentReports } from './reports.js';
import { RunControl } from './runs.js';
import { AgentState } from './state.js';

/** How long an acknowledgement's save may wait to be folded with others. */
const LAZY_SAVE_MS = 200;
/** How long close() lets channels send what they hold. */
const CLOSE_WAIT_MS = 2_000;
/** Room for a channel message's header beside the largest bundle body. */
const MESSAGE_HEADER_ROOM = 64 * 1024;

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
  readonly #settings: AgentSettings;
  readonly #ready: Promise<AgentState>;
  #state: AgentState | undefined;
  readonly #channels: AgentChannels;
  readonly #runs: RunControl;
  readonly #tracked = new Set<Promise<unknown>>();
  #saveTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** Use {@link DispatchAgent.open} to wait until the state is loaded; `serve` waits for it too. */
  constructor(options: DispatchAgentOptions) {
    super();
    const settings = agentSettings(options);
    this.#settings = settings;
    this.msid = settings.msid;
    this.#channels = new AgentChannels({
      msid: settings.msid,
      certificate: settings.certificate,
      centerKey: settings.centerKey,
      refused: (info) => this.emit('refused', info),
    });
    const host: AgentHost = {
      settings,
      channels: this.#channels,
      state: () => this.#state!,
      closed: () => this.#closed,
      emit: (event, ...args) => void (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args),
      save: () => this.#save(),
      track: (p) => this.#track(p),
      warn: (e) => this.#warn(e),
    };
    const reports = new AgentReports(host);
    this.#runs = new RunControl(host, new OrderChecks(host, reports), reports);
    this.#ready = AgentState.open(settings.stateDir, { sync: settings.syncState, now: settings.now }).then(async (s) => {
      this.#state = s;
      await reports.reportLostRuns(s);
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
      channel = new DispatchChannel(sock, { maxBytes: this.#settings.maxBundleBytes + MESSAGE_HEADER_ROOM });
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
      await this.#channels.hello(ch, this.#state!.pending());
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
    return serverStart({ ...options, identity: this.#settings.identity }, (sock) => this.serve(sock));
  }

  /**
   * Stop: a fetch in progress is abandoned, the loader and everything it
   * started are killed (a run in progress is reported as `timeout`, reason
   * `agent closed`, kept for the next start), channels close, state is saved.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#runs.stop();
    await Promise.allSettled([...this.#tracked]);
    // A channel closes once its queued messages are out; a peer that stopped reading gets CLOSE_WAIT_MS.
    await this.#channels.closeAll(CLOSE_WAIT_MS);
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
        case 'rerun':
          this.#runs.order(ch, m);
          return;
        case 'auth':
          this.#channels.auth(ch, m.signature);
          return;
        case 'cancel':
          if (this.#channels.authenticated(ch, 'cancel', { dispatchId: m.dispatchId })) this.#track(this.#runs.cancel(ch, m.dispatchId));
          return;
        case 'ack':
          if (this.#channels.authenticated(ch, 'ack', { dispatchId: m.dispatchId, run: m.run }) && this.#state!.dropPending(m.dispatchId, m.run)) this.#saveSoon();
          return;
        case 'bundle': // the answer to a fetch (taken by the fetch itself), or late
        case 'error': // the center's answer to something; a fetch takes its own
          return;
        default:
          this.#channels.post(ch, { t: 'error', code: 'GS_ERR_DISPATCH_MALFORMED', message: `an agent does not take "${m.t}" messages` });
      }
    } catch (e) {
      this.#warn(e);
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
