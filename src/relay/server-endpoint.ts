/**
 * A server's side of the gateway system: log in through the controller,
 * attach to the gateway it names with the redirect token, and keep that
 * server session up for as long as the endpoint runs. Each connection the
 * gateway opens on the session becomes a byte stream handed to the
 * application — through the end-to-end layer unless it is turned off.
 *
 * States (one loop, readable in {@link ServerEndpoint.run}):
 *
 * ```
 *   login ──► attach ──► online ──(session ends)──► backoff ──► login …
 *                          │
 *                          └─(gateway says move)──► login (avoiding it) ──► attach ──► online
 *                                                   the old session serves its open connections
 *                                                   until they end; the gateway then closes it
 * ```
 *
 * Network failures are retried with exponential backoff and full jitter
 * (a thousand servers that lost one gateway come back spread out); a
 * refusal that will not change by retrying (a certificate problem) ends the
 * first attempt with that error.
 */
import { EventEmitter } from 'eventemitter3';
import { GatesockError, SessionError } from '../errors/index.js';
import { checkOption } from '../errors/check.js';
import {
  certificateVerifier,
  secureAccept,
  type ByteStream,
  type Identity,
  type MuxConnection,
  type VerifiedCertificate,
} from '../session/index.js';
import { Backoff, sleep, type BackoffOptions } from './backoff.js';
import { checkEndpointOptions, type RelayEndpointOptions } from './endpoint-options.js';
import { dialLink, type Link } from './link.js';
import { METHOD, parseLoginReply, parseServerInfo, type GatewayAddress, type ServerInfo } from './messages.js';
import { decodeRelayOpen } from './relay-open.js';
import { checkPcid } from './store/index.js';

/**
 * Options of a {@link ServerEndpoint}.
 * @public
 */
export interface ServerEndpointOptions extends RelayEndpointOptions {
  /** The server's identity (required: its hash is the server's MSID). */
  identity: Identity;
  /** Ask for this PCID after the first login, if the server has another. */
  pcid?: string;
  /** Refuse connections whose client does not run the end-to-end layer. Default: the value of `endToEnd` (true). */
  requireEndToEnd?: boolean;
  /** Backoff between attempts to get a server session. Default first 250 ms, at most 10 s. */
  backoff?: BackoffOptions;
}

/**
 * What is known about one relayed connection.
 * @public
 */
export interface RelayConnectionInfo {
  /** The connection ID the gateway allocated, unique within the server session. */
  readonly connectionId: number;
  /** The other end's MSID (the client's, at a server; the server's, at a client). */
  readonly peerMsid: string;
  /** Whether the end-to-end layer runs on it. */
  readonly endToEnd: boolean;
  /** Whether the hop to the gateway carries its (end-to-end encrypted) payload as it is: pass-through, negotiated with the gateway. */
  readonly passThrough?: boolean;
  /** The gateway relaying it. */
  readonly gateway: string;
}

/**
 * Events of a {@link ServerEndpoint}.
 * @public
 */
export interface ServerEndpointEvents {
  /** A client connected; `stream` is ready (the inner handshake done). */
  connection: (stream: ByteStream, info: RelayConnectionInfo) => void;
  /** A server session is up on `gateway`. */
  online: (gateway: GatewayAddress, pcid: string) => void;
  /** The server session ended; the endpoint tries again after a backoff. */
  offline: (error?: GatesockError) => void;
  /** A connection could not be set up (failed inner handshake, flag mismatch); other connections are unaffected. */
  connectionError: (error: GatesockError, info: RelayConnectionInfo) => void;
}

/**
 * A server's presence in the gateway system. `socket`'s `serverStart` is
 * built on it.
 * @public
 */
export class ServerEndpoint extends EventEmitter<ServerEndpointEvents> {
  readonly #options: ServerEndpointOptions;
  readonly #stopped = new AbortController();
  readonly #verifyController: (chain: readonly Uint8Array[]) => VerifiedCertificate;
  readonly #verifyClient: (chain: readonly Uint8Array[]) => VerifiedCertificate;
  readonly #requireEndToEnd: boolean;
  #current: { link: Link<VerifiedCertificate>; gateway: GatewayAddress } | undefined;
  #pcid: string | undefined;
  #renamed = false;
  #closed = false;
  readonly #sessions = new Set<Link>();
  #firstOnline: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  readonly #online: Promise<void>;

  constructor(options: ServerEndpointOptions) {
    super();
    checkEndpointOptions(options);
    checkOption(options.identity !== undefined && typeof options.identity.sign === 'function', 'identity', 'a server needs its identity (loadOrCreateServerIdentity)');
    if (options.pcid !== undefined) checkPcid(options.pcid);
    this.#options = options;
    this.#requireEndToEnd = options.requireEndToEnd ?? options.endToEnd ?? true;
    const crypto = options.link?.backend;
    this.#verifyController = certificateVerifier({ roots: options.roots, role: 'controller', crypto });
    this.#verifyClient = certificateVerifier({ role: 'server', allowSelfSignedServer: true, crypto });
    this.#online = new Promise<void>((resolve, reject) => (this.#firstOnline = { resolve, reject }));
    this.#online.catch(() => undefined);
    void this.run();
  }

  /** The server's MSID. */
  get msid(): string {
    return this.#options.identity.msid;
  }

  /** The PCID from the last login or rename; undefined before the first login. */
  get pcid(): string | undefined {
    return this.#pcid;
  }

  /** The gateway holding the server session now, if one does. */
  get gateway(): GatewayAddress | undefined {
    return this.#current?.gateway;
  }

  /** True while a server session is up. */
  get isOnline(): boolean {
    return this.#current !== undefined && !this.#current.link.session.closed;
  }

  /**
   * Resolves when the first server session is up; rejects if the first
   * attempt fails for a reason retrying will not fix, or on `close()` first.
   */
  online(): Promise<void> {
    return this.#online;
  }

  /** The server's record at the controller: MSID, PCID, created, updated. */
  async getLoginInfo(): Promise<ServerInfo> {
    const info = await this.#askController(METHOD.loginInfo, {}, parseServerInfo);
    this.#pcid = info.pcid;
    return info;
  }

  /** Rename the server (1–31 printable ASCII characters); `GS_ERR_PCID_TAKEN` if another server has the name. */
  async renameMachine(pcid: string): Promise<ServerInfo> {
    checkPcid(pcid);
    const info = await this.#askController(METHOD.rename, { pcid }, parseServerInfo);
    this.#pcid = info.pcid;
    return info;
  }

  /** Leave: end the server session and stop reconnecting. Open connections are reset. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopped.abort();
    this.#firstOnline?.reject(new SessionError('GS_ERR_SESSION_CLOSED', 'closed before the server came online'));
    for (const link of this.#sessions) link.session.destroy();
    this.#sessions.clear();
  }

  async #askController<T>(method: string, params: Record<string, string>, parse: (v: never) => T): Promise<T> {
    const link = await dialLink(this.#options.controller, this.#options.identity, this.#verifyController, this.#options.link);
    try {
      return parse((await link.rpc.request(method, params)) as never);
    } finally {
      void link.session.close();
    }
  }

  /** The state machine: login, attach, online, and again after a backoff. */
  private async run(): Promise<void> {
    const backoff = new Backoff(this.#options.backoff);
    let avoid: string | undefined;
    while (!this.#closed) {
      let ended: { error?: GatesockError; move: boolean };
      try {
        const link = await this.#loginAndAttach(avoid);
        avoid = undefined;
        backoff.reset();
        ended = await new Promise((resolve) => {
          link.session.once('close', (error) => resolve({ error, move: false }));
          link.rpc.onNotice(METHOD.move, () => resolve({ move: true }));
        });
        if (ended.move) {
          // Keep the old session for its open connections; the gateway closes it once they end.
          avoid = this.#current?.gateway.msid;
          continue;
        }
        this.#current = undefined;
        if (this.#closed) return;
        this.emit('offline', ended.error);
      } catch (error) {
        if (this.#closed) return;
        if (this.#firstOnline && !isRetryable(error)) {
          this.#firstOnline.reject(error);
          this.#firstOnline = undefined;
          void this.close();
          return;
        }
        this.emit('offline', error instanceof GatesockError ? error : undefined);
      }
      await sleep(backoff.next(), this.#stopped.signal);
    }
  }

  async #loginAndAttach(avoid: string | undefined): Promise<Link<VerifiedCertificate>> {
    const o = this.#options;
    const ctl = await dialLink(o.controller, o.identity, this.#verifyController, o.link);
    let reply;
    try {
      reply = parseLoginReply(await ctl.rpc.request(METHOD.login, avoid ? { avoid } : {}));
      this.#pcid = reply.pcid;
      if (o.pcid !== undefined && !this.#renamed && reply.pcid !== o.pcid) {
        this.#pcid = parseServerInfo(await ctl.rpc.request(METHOD.rename, { pcid: o.pcid })).pcid;
      }
      this.#renamed = true;
    } finally {
      void ctl.session.close();
    }
    const verifyGateway = certificateVerifier({ roots: o.roots, role: 'gateway', expectMsid: reply.gateway.msid, crypto: o.link?.backend });
    const link = await dialLink(reply.gateway.address, o.identity, verifyGateway, o.link, (l) => {
      l.session.on('connection', (conn, metadata) => this.#accept(conn, metadata, reply.gateway.msid));
    });
    if (this.#closed) {
      link.session.destroy();
      throw new SessionError('GS_ERR_SESSION_CLOSED', 'closed');
    }
    this.#sessions.add(link);
    link.session.on('close', () => this.#sessions.delete(link));
    try {
      // Offer pass-through (a gateway that predates it ignores the field).
      await link.rpc.request(METHOD.attach, { token: Buffer.from(reply.token).toString('base64url'), ...(o.passThrough !== false ? { clearPayload: true } : {}) });
    } catch (error) {
      link.session.destroy();
      throw error;
    }
    const previous = this.#current;
    this.#current = { link, gateway: reply.gateway };
    void previous; // a moved-from session stays until the gateway closes it
    this.emit('online', reply.gateway, this.#pcid!);
    this.#firstOnline?.resolve();
    this.#firstOnline = undefined;
    return link;
  }

  #accept(conn: MuxConnection, metadata: Uint8Array, gateway: string): void {
    let open;
    try {
      open = decodeRelayOpen(metadata);
    } catch (error) {
      conn.destroy(error as Error);
      return;
    }
    const info: RelayConnectionInfo = { connectionId: open.connectionId, peerMsid: open.peer, endToEnd: open.endToEnd, passThrough: open.clearPayload, gateway };
    if (open.clearPayload) {
      if (this.#options.passThrough === false) {
        const error = new SessionError('GS_ERR_PROTOCOL', `the gateway opened connection ${open.connectionId} with pass-through, which this server did not offer`);
        conn.destroy(error);
        this.emit('connectionError', error, info);
        return;
      }
      // Before any of its DATA can arrive: the OPEN is being handled.
      conn.enableClearPayload();
    }
    if (!open.endToEnd) {
      if (this.#requireEndToEnd) {
        const error = new SessionError('GS_ERR_PROTOCOL', `client ${open.peer} connected without the end-to-end layer, which this server requires`);
        conn.destroy(error);
        this.emit('connectionError', error, info);
        return;
      }
      this.emit('connection', conn, info);
      return;
    }
    secureAccept(conn, {
      identity: this.#options.identity,
      // The gateway told us who the client is; the inner handshake must prove it.
      verifyPeer: (chain) => {
        const peer = this.#verifyClient(chain);
        if (peer.msid !== open.peer) throw new SessionError('GS_ERR_PROTOCOL', `inner handshake from ${peer.msid}, but the gateway announced ${open.peer}`);
        return peer;
      },
      backend: this.#options.link?.backend,
      handshakeTimeoutMs: this.#options.link?.handshakeTimeoutMs,
    }).then(
      (channel) => {
        // The inner handshake went sealed on the hop; from here on the
        // connection carries only end-to-end transport ciphertext.
        if (open.clearPayload) conn.startClearPayload();
        this.emit('connection', channel, info);
      },
      (error: GatesockError) => this.emit('connectionError', error, info),
    );
  }
}

/** Network trouble and refusals that a later attempt may not meet. */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof GatesockError)) return false;
  return /^GS_ERR_(CONNECT_FAILED|TRANSPORT_CLOSED|SESSION_CLOSED|SESSION_DEAD|TIMEOUT|NO_GATEWAY|GATEWAY_DRAINING|SESSION_REPLACED|TOKEN_EXPIRED|TOKEN_REPLAYED|HANDSHAKE_FAILED|HANDSHAKE_TIMEOUT|CONN_RESET)$/.test(error.code);
}
