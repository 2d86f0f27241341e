/**
 * The agent's side of its dispatch channels (one per center connection):
 * the `hello` with the reports not yet acknowledged and a fresh challenge,
 * the center's `auth` answer that authenticates a channel for `ack` and
 * `cancel`, and sending without letting a peer that stops reading stall
 * anyone else.
 */
import {
  MAX_HEADER_BYTES,
  MAX_PENDING_REPORTS,
  newChannelChallenge,
  verifyChannelAuth,
  type ChannelMessage,
  type DispatchChannel,
} from '../wire/index.js';
import type { DispatchAgentEvents } from './host.js';
import type { PendingReport } from './state.js';

/** Answers a channel may hold for a peer that does not read them before the agent drops that peer. */
const MAX_QUEUED_MESSAGES = 256;
/** A hello header's bytes besides its certificate and pending reports (generous). */
const HELLO_HEADER_ROOM = 512;

/** What {@link AgentChannels} needs of its agent. @internal */
export interface ChannelsHost {
  readonly msid: string;
  /** The agent's certificate, unpadded base64url. */
  readonly certificate: string;
  /** The pinned center key. */
  readonly centerKey: Uint8Array;
  /** Emit `refused` (an `auth`, `ack` or `cancel` not backed by the center key). */
  refused(info: Parameters<DispatchAgentEvents['refused']>[0]): void;
}

/** The agent's open channels, each one's authentication and send queue. @internal */
export class AgentChannels {
  readonly #host: ChannelsHost;
  readonly #open = new Set<DispatchChannel>();
  /** Each channel's hello challenge, and whether the center has answered it (see `auth`). */
  readonly #auth = new WeakMap<DispatchChannel, { readonly challenge: string; ok: boolean }>();
  /** Messages posted to each channel and not yet taken by its socket. */
  readonly #queued = new WeakMap<DispatchChannel, number>();

  constructor(host: ChannelsHost) {
    this.#host = host;
  }

  /** Count `ch` as open (until {@link AgentChannels.delete}). */
  add(ch: DispatchChannel): void {
    this.#open.add(ch);
  }

  delete(ch: DispatchChannel): void {
    this.#open.delete(ch);
  }

  /** Every channel counted as open, oldest first. */
  all(): DispatchChannel[] {
    return [...this.#open];
  }

  /** Where a report made for `ch` goes: `ch`, or the newest open channel when it closed. */
  routeFor(ch: DispatchChannel): DispatchChannel | undefined {
    return ch.closed ? [...this.#open].reverse().find((c) => !c.closed) : ch;
  }

  /**
   * Send `hello` with as many pending reports as one hello holds and a
   * fresh challenge; the other reports follow as `report` messages.
   */
  async hello(ch: DispatchChannel, pending: readonly PendingReport[]): Promise<void> {
    const certificate = this.#host.certificate;
    let room = MAX_HEADER_BYTES - HELLO_HEADER_ROOM - certificate.length;
    let listed = 0;
    while (listed < pending.length && listed < MAX_PENDING_REPORTS && (room -= pending[listed]!.report.length + 16) >= 0) listed++;
    const challenge = newChannelChallenge();
    this.#auth.set(ch, { challenge, ok: false });
    this.post(ch, { t: 'hello', agentMsid: this.#host.msid, certificate, pending: pending.slice(0, listed).map((p) => ({ report: p.report })), challenge });
    for (const p of pending.slice(listed)) if (!(await this.send(ch, { t: 'report', report: p.report, certificate }))) break;
  }

  /** The center's answer to this channel's challenge: marks the channel authenticated when it verifies. */
  auth(ch: DispatchChannel, signature: string): void {
    const auth = this.#auth.get(ch);
    if (auth === undefined) return;
    if (verifyChannelAuth(signature, { challenge: auth.challenge, agentMsid: this.#host.msid }, this.#host.centerKey)) {
      auth.ok = true;
      return;
    }
    // A bad auth does not undo a good one: both came from the same peer on this encrypted connection.
    const message = 'auth is not the pinned center key\'s signature over this connection\'s challenge';
    this.#host.refused({ code: 'GS_ERR_DISPATCH_BAD_SIGNATURE', message });
    this.post(ch, { t: 'error', code: 'GS_ERR_DISPATCH_BAD_SIGNATURE', message });
  }

  /** True when `ch` is authenticated; otherwise answers `error` BAD_SIGNATURE for the `what` message and nothing changes. */
  authenticated(ch: DispatchChannel, what: 'ack' | 'cancel', ids: { dispatchId: string; run?: number }): boolean {
    if (this.#auth.get(ch)?.ok === true) return true;
    const message = `${what} refused: this channel has no valid auth from the center key (nothing ${what === 'ack' ? 'dropped' : 'cancelled'})`;
    this.#host.refused({ code: 'GS_ERR_DISPATCH_BAD_SIGNATURE', message, ...ids });
    this.post(ch, { t: 'error', code: 'GS_ERR_DISPATCH_BAD_SIGNATURE', message, ...ids });
    return false;
  }

  /**
   * Queue a message without waiting for the peer to take it: the channel
   * keeps its messages in order, and a peer that stops reading must not
   * stall the orders of every other channel.
   */
  post(ch: DispatchChannel, m: ChannelMessage): void {
    const queued = (this.#queued.get(ch) ?? 0) + 1;
    this.#queued.set(ch, queued);
    if (queued > MAX_QUEUED_MESSAGES) {
      // The peer has not read our last answers: drop it rather than hold them all.
      void ch.sock.disconnect();
      return;
    }
    void this.send(ch, m).finally(() => this.#queued.set(ch, (this.#queued.get(ch) ?? 1) - 1));
  }

  /** Send and wait for the channel to take it; false when it is closed or the send failed. */
  async send(ch: DispatchChannel, m: ChannelMessage): Promise<boolean> {
    if (ch.closed) return false;
    try {
      await ch.send(m);
      return true;
    } catch {
      return false;
    }
  }

  /** Close every channel once its queued messages are out; a peer that stopped reading is disconnected after `waitMs`. */
  async closeAll(waitMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.allSettled([...this.#open].map((c) => c.close())), new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
    for (const c of this.#open) if (!c.closed) void c.sock.disconnect().catch(() => undefined);
  }
}
