/**
 * The gateway (design, system 1): relays bytes between clients and servers.
 *
 * - It registers with the controller, sends a keepalive every T1 and reports
 *   its session table as deltas; if the controller link drops it reconnects
 *   with backoff and sends its full list again, serving everyone meanwhile.
 * - A **server session** starts with `attach {token}`: the redirect token
 *   must be signed by the controller, name this gateway and the MSID the
 *   server proved in the handshake, be unexpired and unused. A newer
 *   session of the same MSID evicts an older one at once (a server that
 *   lost its network without closing its socket is reachable again as soon
 *   as it reconnects), here or — through the controller — on another gateway.
 * - A **client session** carries one connection: `connect {msid, ticket}`;
 *   the gateway allocates a connection ID unique within the server session,
 *   opens the connection on both sessions (OPEN metadata: relay-open.ts) and
 *   relays both ways. Backpressure runs end to end: each direction pauses
 *   its source while the far side's window is full, so a slow reader slows
 *   only its own connection.
 * - Closing: a client session ending resets its connection at the server; a
 *   server session ending closes all its client sessions.
 * - **Draining** ({@link Gateway.drain}, or SIGTERM in the CLI): no new server
 *   sessions, the controller takes it out of the balancing set, every server
 *   is told to move; it finishes when they have moved (their relayed
 *   connections done) or at the drain deadline.
 */
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import { EventEmitter } from 'eventemitter3';
import { GatesockError, RelayError, SessionError } from '../errors/index.js';
import { checkOption } from '../errors/check.js';
import {
  certificateVerifier,
  getCryptoBackend,
  type Certificate,
  type Identity,
  type MuxConnection,
  type VerifiedCertificate,
  type VerifiedPeer,
} from '../session/index.js';
import type { ByteStream } from '../transport/index.js';
import { Backoff, sleep, type BackoffOptions } from './backoff.js';
import { listenAll, type Listeners, type WebSocketListenOptions } from './listen.js';
import { acceptLink, dialLink, type Link, type LinkOptions } from './link.js';
import { silentLogger, type RelayLogger } from './log.js';
import { METHOD, booleanField, msidField, parseRegisterReply } from './messages.js';
import { bytesField } from './params.js';
import { encodeRelayOpen } from './relay-open.js';
import { TokenChecker } from './token.js';

/**
 * Diagnostics channel on which a gateway publishes every chunk it relays,
 * as `{ gateway, connectionId, direction, chunk }`, while someone
 * subscribes (tests use it to show the gateway sees only ciphertext).
 * @public
 */
export const GATEWAY_RELAY_CHANNEL = 'gatesock:gateway:relay';
const relayChannel = diagnosticsChannel(GATEWAY_RELAY_CHANNEL);

/**
 * Options of {@link Gateway.start}.
 * @public
 */
export interface GatewayOptions {
  /** The gateway's identity: a `gateway` certificate under the root, and its key. */
  identity: Identity;
  /** The gateway system's root certificate(s); the controller must chain to one. */
  roots: readonly Certificate[];
  /** The controller's address (`host:port`). */
  controller: string;
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default 0. */
  port?: number;
  /** The address servers and clients are told to use (`host:port` or a `ws://` URL). Default: the address listened on. */
  advertise?: string;
  /** Also listen for WebSocket upgrades. Default: TCP only. */
  websocket?: WebSocketListenOptions;
  /** Without `advertise`, tell servers and clients the WebSocket listener's URL rather than the TCP address. Default false. */
  advertiseWebSocket?: boolean;
  /** Server sessions this gateway can hold, as its operator sets it; the controller balances on it. Default 1000. */
  capacity?: number;
  /** How long a drain waits for servers to move before closing what is left, in ms. Default 30000. */
  drainTimeoutMs?: number;
  /** Allowance for the controller's and this machine's clocks to differ when checking tokens, in ms. Default 5000. */
  clockSkewMs?: number;
  /** How long a new session may take to present its token or ticket, in ms. Default 10000. */
  attachTimeoutMs?: number;
  /** Backoff of reconnecting to the controller. */
  reconnect?: BackoffOptions;
  /**
   * Pass-through: on a relayed connection with the end-to-end layer, the
   * payload (already end-to-end ciphertext) crosses the hops to endpoints
   * that offer it without being opened and sealed again here; only each
   * frame's header is. Default true; false seals every byte on every hop,
   * as before.
   */
  passThrough?: boolean;
  /** Crypto backend, handshake and session tunables of every link. */
  link?: LinkOptions;
  /** Structured logs. Default: none. */
  log?: RelayLogger;
}

/**
 * Defaults of {@link GatewayOptions}.
 * @public
 */
export const DEFAULT_GATEWAY_OPTIONS = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  capacity: 1000,
  drainTimeoutMs: 30_000,
  clockSkewMs: 5000,
  attachTimeoutMs: 10_000,
  passThrough: true,
});

/**
 * Events of a {@link Gateway}.
 * @public
 */
export interface GatewayEvents {
  /** Registered with the controller (again, after a reconnect). */
  registered: () => void;
  /** A server session attached. */
  serverAttached: (msid: string) => void;
  /** A server session ended; `error` says why. */
  serverDetached: (msid: string, error?: GatesockError) => void;
  /** A token or ticket was refused (also logged). */
  refused: (error: GatesockError, peerMsid: string) => void;
  /** The drain finished and the gateway closed. */
  drained: () => void;
}

/** A server's session here. */
interface ServerSession {
  readonly msid: string;
  readonly link: Link<VerifiedPeer>;
  /** Relayed connections by connection ID → the client link to close with it. */
  /** Made with the first relayed connection: most server sessions sit idle. */
  relays: Map<number, Link<VerifiedPeer>> | undefined;
  nextConnectionId: number;
  /** A newer session of this server exists elsewhere; close this one when its connections are done. */
  moved: boolean;
  /** The server offered pass-through (attach `clearPayload`) and this gateway allows it. */
  readonly clearPayload: boolean;
}

/**
 * A gateway: start it with {@link Gateway.start}.
 * @public
 */
export class Gateway extends EventEmitter<GatewayEvents> {
  private readonly servers = new Map<string, ServerSession>();
  private readonly links = new Set<Link>();
  private readonly controllerKeys: Uint8Array[] = [];
  private readonly tokens: TokenChecker;
  private readonly log: RelayLogger;
  private readonly verifyPeer: (chain: readonly Uint8Array[]) => VerifiedPeer;
  private readonly stopped = new AbortController();
  private controllerLink: Link<VerifiedPeer> | undefined;
  private readonly pendingAdded = new Set<string>();
  private readonly pendingRemoved = new Set<string>();
  private readonly deltaWaiters: Array<() => void> = [];
  private deltaTimer: ReturnType<typeof setTimeout> | undefined;
  private keepaliveTimer: ReturnType<typeof setInterval> | undefined;
  private draining: Promise<void> | undefined;
  private closed = false;
  private relayedBytes = 0;
  private lastLoad = { at: performance.now(), bytes: 0, cpu: process.cpuUsage() };
  private firstRegistration: { resolve: () => void; reject: (e: unknown) => void } | undefined;

  private constructor(
    private readonly options: GatewayOptions,
    private readonly endpoints: Listeners,
  ) {
    super();
    this.log = options.log ?? silentLogger;
    const verify = certificateVerifier({ roots: options.roots, role: 'server', allowSelfSignedServer: true, crypto: options.link?.backend });
    // Keep only what a session needs of its peer: a parsed certificate held
    // for every idle server session would be most of its memory.
    this.verifyPeer = (chain) => {
      const { publicKey, msid, role } = verify(chain);
      return { publicKey, msid, role };
    };
    const crypto = getCryptoBackend(options.link?.backend ?? 'auto');
    this.tokens = new TokenChecker({
      gateway: options.identity.msid,
      controllerKeys: () => this.controllerKeys,
      verify: (sig, msg, key) => crypto.ed25519.verify(sig, msg, key),
      clockSkewMs: options.clockSkewMs ?? DEFAULT_GATEWAY_OPTIONS.clockSkewMs,
    });
  }

  /**
   * Check the options, listen, register with the controller (resolves once
   * registered), and keep the controller link up until closed.
   */
  static async start(options: GatewayOptions): Promise<Gateway> {
    checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
    checkOption(options.identity?.certificate?.role === 'gateway', 'identity', "must hold a certificate of role 'gateway'");
    checkOption(Array.isArray(options.roots) && options.roots.length > 0, 'roots', 'must list the root certificate');
    checkOption(typeof options.controller === 'string' && options.controller.length > 0, 'controller', 'must be the controller address');
    const capacity = options.capacity ?? DEFAULT_GATEWAY_OPTIONS.capacity;
    checkOption(Number.isInteger(capacity) && capacity >= 1, 'capacity', 'must be a positive integer');
    checkOption(options.passThrough === undefined || typeof options.passThrough === 'boolean', 'passThrough', 'must be true or false');
    const { listeners, ready } = await listenAll(
      { host: options.host ?? DEFAULT_GATEWAY_OPTIONS.host, port: options.port ?? DEFAULT_GATEWAY_OPTIONS.port },
      options.websocket,
    );
    const gateway = new Gateway(options, listeners);
    ready((stream) => gateway.accept(stream));
    const registered = new Promise<void>((resolve, reject) => (gateway.firstRegistration = { resolve, reject }));
    void gateway.controllerLoop();
    try {
      await registered;
    } catch (error) {
      await gateway.close();
      throw error;
    }
    return gateway;
  }

  /** Whether this gateway offers pass-through to its servers and clients ({@link GatewayOptions.passThrough}). */
  get passThrough(): boolean {
    return this.options.passThrough ?? DEFAULT_GATEWAY_OPTIONS.passThrough;
  }

  /** This gateway's MSID. */
  get msid(): string {
    return this.options.identity.msid;
  }

  /** The address listened on. */
  get address(): string {
    return this.endpoints.tcp.address;
  }

  /** The `ws://` URL of the WebSocket listener, when there is one. */
  get websocketUrl(): string | undefined {
    return this.endpoints.ws?.url;
  }

  /** What servers and clients are told to use: `advertise`, else the WebSocket URL if `advertiseWebSocket`, else the TCP address. */
  get advertisedAddress(): string {
    return this.options.advertise ?? (this.options.advertiseWebSocket ? this.endpoints.ws?.url : undefined) ?? this.endpoints.tcp.address;
  }

  /** Server sessions held now. */
  get serverCount(): number {
    return this.servers.size;
  }

  /** Relayed connections open now. */
  get connectionCount(): number {
    let n = 0;
    for (const s of this.servers.values()) n += s.relays?.size ?? 0;
    return n;
  }

  /** True while draining. */
  get isDraining(): boolean {
    return this.draining !== undefined;
  }

  /**
   * Drain: take no new server sessions, leave the balancing set, tell every
   * server to move, and close once they have (or at `drainTimeoutMs`).
   * Resolves when the gateway is closed.
   */
  drain(): Promise<void> {
    if (this.draining) return this.draining;
    this.draining = (async () => {
      this.log.info({ servers: this.servers.size }, 'draining');
      this.controllerLink?.rpc.notify(METHOD.draining);
      for (const s of this.servers.values()) s.link.rpc.notify(METHOD.move);
      const deadline = performance.now() + (this.options.drainTimeoutMs ?? DEFAULT_GATEWAY_OPTIONS.drainTimeoutMs);
      while (this.servers.size > 0 && performance.now() < deadline && !this.closed) await sleep(50);
      await this.close();
      this.emit('drained');
    })();
    return this.draining;
  }

  /** Close at once: every session, the controller link, the listener. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopped.abort();
    clearTimeout(this.deltaTimer);
    clearInterval(this.keepaliveTimer);
    this.firstRegistration?.reject(new RelayError('GS_ERR_GATEWAY_DRAINING', 'gateway closed before it registered'));
    await this.endpoints.close();
    for (const link of this.links) link.session.destroy(new RelayError('GS_ERR_GATEWAY_DRAINING', 'the gateway closed'));
    this.links.clear();
    this.controllerLink?.session.destroy();
  }

  // ---------------------------------------------------------------------------
  // The controller link

  private async controllerLoop(): Promise<void> {
    const backoff = new Backoff(this.options.reconnect);
    const verifyController = certificateVerifier({ roots: this.options.roots, role: 'controller', crypto: this.options.link?.backend });
    while (!this.closed) {
      try {
        const link = await dialLink(this.options.controller, this.options.identity, verifyController, this.options.link, (l) => {
          l.rpc.onNotice(METHOD.evict, (p) => this.evict(msidField(p, 'msid')));
          l.rpc.on('problem', (e) => this.log.warn({ code: e.code, error: e.message }, 'bad message from the controller'));
        });
        if (this.closed) {
          link.session.destroy();
          return;
        }
        if (!this.controllerKeys.some((k) => Buffer.compare(k, link.peer.publicKey) === 0)) this.controllerKeys.push(link.peer.publicKey);
        const reply = parseRegisterReply(
          await link.rpc.request(METHOD.register, {
            address: this.advertisedAddress,
            capacity: this.options.capacity ?? DEFAULT_GATEWAY_OPTIONS.capacity,
            servers: [...this.servers.keys()],
          }),
        );
        this.controllerLink = link;
        this.pendingAdded.clear();
        this.pendingRemoved.clear();
        this.flushDeltas();
        if (this.draining) link.rpc.notify(METHOD.draining);
        backoff.reset();
        this.log.info({ controller: this.options.controller, keepaliveMs: reply.keepaliveMs }, 'registered with the controller');
        this.emit('registered');
        this.firstRegistration?.resolve();
        this.firstRegistration = undefined;
        clearInterval(this.keepaliveTimer);
        this.keepaliveTimer = setInterval(() => this.sendKeepalive(), reply.keepaliveMs);
        this.keepaliveTimer.unref?.();
        const error = await new Promise<GatesockError | undefined>((resolve) => link.session.once('close', resolve));
        clearInterval(this.keepaliveTimer);
        this.controllerLink = undefined;
        if (this.closed) return;
        this.log.warn({ code: error?.code, error: error?.message }, 'controller link lost: reconnecting');
      } catch (error) {
        const e = error as GatesockError;
        if (this.firstRegistration && !(e instanceof GatesockError && /^GS_ERR_(CONNECT_FAILED|TRANSPORT_CLOSED|SESSION_CLOSED|TIMEOUT)$/.test(e.code))) {
          // Not a network hiccup (a certificate or config problem): say so to whoever started us.
          this.firstRegistration.reject(error);
          this.firstRegistration = undefined;
          return;
        }
        this.log.warn({ code: e?.code, error: e?.message }, 'cannot reach the controller');
      }
      await sleep(backoff.next(), this.stopped.signal);
    }
  }

  private sendKeepalive(): void {
    const now = performance.now();
    const cpu = process.cpuUsage(this.lastLoad.cpu);
    const seconds = Math.max((now - this.lastLoad.at) / 1000, 1e-3);
    const load = {
      connections: this.connectionCount,
      bytesPerSecond: Math.round((this.relayedBytes - this.lastLoad.bytes) / seconds),
      cpu: (cpu.user + cpu.system) / 1e6 / seconds,
    };
    this.lastLoad = { at: now, bytes: this.relayedBytes, cpu: process.cpuUsage() };
    this.controllerLink?.rpc.notify(METHOD.keepalive, load);
  }

  /**
   * Tell the controller a session came or went. Deltas are batched (a
   * thousand attaches in a burst make a handful of messages); the promise
   * resolves once the controller has the batch, so a server told it is
   * attached can be found by clients at once. Without a controller link it
   * resolves at once: the full list goes with the next registration.
   */
  private reportSession(msid: string, added: boolean): Promise<void> {
    (added ? this.pendingRemoved : this.pendingAdded).delete(msid);
    (added ? this.pendingAdded : this.pendingRemoved).add(msid);
    this.deltaTimer ??= setTimeout(() => this.flushDeltas(), 5);
    return new Promise((resolve) => this.deltaWaiters.push(resolve));
  }

  private flushDeltas(): void {
    this.deltaTimer = undefined;
    const waiters = this.deltaWaiters.splice(0);
    const release = (): void => waiters.forEach((w) => w());
    const link = this.controllerLink;
    if (!link) return release();
    const delta = { added: [...this.pendingAdded], removed: [...this.pendingRemoved] };
    this.pendingAdded.clear();
    this.pendingRemoved.clear();
    link.rpc.request(METHOD.sessions, delta).then(release, (error: GatesockError) => {
      this.log.warn({ code: error.code, error: error.message }, 'session deltas not acknowledged (the next registration resends the full list)');
      release();
    });
  }

  /** The controller says a newer session of `msid` is elsewhere. */
  private evict(msid: string): void {
    const s = this.servers.get(msid);
    if (!s) return;
    if (this.draining) {
      // It moved on our request: let its open connections finish, take no new ones.
      s.moved = true;
      this.closeIfIdle(s);
      return;
    }
    this.log.info({ msid }, 'evicting a stale server session (a newer one is on another gateway)');
    s.link.session.destroy(new RelayError('GS_ERR_SESSION_REPLACED', 'a newer session of this server is on another gateway'));
  }

  private closeIfIdle(s: ServerSession): void {
    if (s.moved && !s.relays?.size) void s.link.session.close();
  }

  // ---------------------------------------------------------------------------
  // Servers and clients

  private accept(stream: ByteStream): void {
    if (this.closed) return stream.destroy();
    acceptLink(stream, this.options.identity, this.verifyPeer, this.options.link, (link) => this.serve(link)).then(
      () => undefined,
      (error: GatesockError) => this.log.debug({ remote: stream.info.remote, code: error.code, error: error.message }, 'handshake refused'),
    );
  }

  private serve(link: Link<VerifiedPeer>): void {
    if (this.closed) return link.session.destroy();
    this.links.add(link);
    const peer = link.peer.msid;
    // A session that never says what it is for does not get to sit here.
    let idle: ReturnType<typeof setTimeout> | undefined = setTimeout(
      () => link.session.destroy(new RelayError('GS_ERR_RELAY_FORBIDDEN', 'no attach or connect in time')),
      this.options.attachTimeoutMs ?? DEFAULT_GATEWAY_OPTIONS.attachTimeoutMs,
    );
    idle.unref?.();
    // Cleared and dropped once the session says what it is for (an idle session keeps no timer).
    const settled = (): void => {
      clearTimeout(idle);
      idle = undefined;
    };
    link.session.on('close', () => {
      settled();
      this.links.delete(link);
    });
    link.rpc.on('problem', (e) => this.log.warn({ peer, code: e.code, error: e.message }, 'bad message'));
    let used = false;
    const once = (): void => {
      if (used) throw new RelayError('GS_ERR_RELAY_FORBIDDEN', 'this session is already attached or connected');
    };
    // A session is for one thing: once it is, both requests go (and their closures with them).
    const decided = (): void => {
      used = true;
      settled();
      link.rpc.unhandle(METHOD.attach).unhandle(METHOD.connect);
    };
    link.rpc.handle(METHOD.attach, async (p) => {
      once();
      if (this.draining) throw new RelayError('GS_ERR_GATEWAY_DRAINING', 'this gateway is draining');
      this.checkToken(() => this.tokens.check(bytesField(p, 'token', 512), { kind: 'redirect', holder: peer, target: peer }), peer);
      decided();
      await this.attachServer(link, this.passThrough && booleanField(p, 'clearPayload', false));
      return { ok: true };
    });
    link.rpc.handle(METHOD.connect, (p) => {
      once();
      const target = msidField(p, 'msid');
      const endToEnd = booleanField(p, 'endToEnd', true);
      this.checkToken(() => this.tokens.check(bytesField(p, 'ticket', 512), { kind: 'ticket', holder: peer, target }), peer);
      const server = this.servers.get(target);
      if (!server || server.moved) throw new RelayError('GS_ERR_SERVER_OFFLINE', `${target} has no session on this gateway`);
      decided();
      const clearPayload = endToEnd && this.passThrough && booleanField(p, 'clearPayload', false);
      return { connectionId: this.relay(server, link, endToEnd, clearPayload) };
    });
  }

  private checkToken(check: () => unknown, peer: string): void {
    try {
      check();
    } catch (error) {
      if (error instanceof GatesockError) {
        this.log.warn({ peer, code: error.code, error: error.message }, 'token refused');
        this.emit('refused', error, peer);
      }
      throw error;
    }
  }

  private attachServer(link: Link<VerifiedPeer>, clearPayload: boolean): Promise<void> {
    const msid = link.peer.msid;
    const old = this.servers.get(msid);
    const session: ServerSession = { msid, link, relays: undefined, nextConnectionId: 1, moved: false, clearPayload };
    this.servers.set(msid, session);
    if (old) {
      this.log.info({ msid }, 'a newer session of this server replaces the old one');
      old.link.session.destroy(new RelayError('GS_ERR_SESSION_REPLACED', 'a newer session of this server attached'));
    }
    const reported = this.reportSession(msid, true);
    this.log.info({ msid, remote: link.channel.info.remote }, 'server attached');
    this.emit('serverAttached', msid);
    // Servers open nothing towards us; refuse if they try.
    link.session.on('close', (error) => {
      for (const client of session.relays?.values() ?? []) client.session.destroy(error ?? new SessionError('GS_ERR_SESSION_CLOSED', 'the server session ended'));
      session.relays = undefined;
      if (this.servers.get(msid) === session) {
        this.servers.delete(msid);
        this.reportSession(msid, false);
      }
      this.log.info({ msid, code: error?.code }, 'server detached');
      this.emit('serverDetached', msid, error);
    });
    return reported;
  }

  /**
   * Open the connection on both sessions and relay it; returns its
   * connection ID. With the end-to-end layer, each hop whose endpoint
   * offered pass-through carries the payload outside its encryption; a
   * connection without the layer never does, whatever was offered.
   */
  private relay(server: ServerSession, client: Link<VerifiedPeer>, endToEnd: boolean, clientClear: boolean): number {
    let id = server.nextConnectionId;
    const relays = (server.relays ??= new Map());
    while (relays.has(id) || id === 0) id = (id + 1) >>> 0;
    server.nextConnectionId = (id + 1) >>> 0;
    const serverClear = endToEnd && server.clearPayload;
    clientClear &&= endToEnd;
    const toServer = server.link.session.open(encodeRelayOpen({ connectionId: id, endToEnd, clearPayload: serverClear, peer: client.peer.msid }));
    if (serverClear) toServer.enableClearPayload();
    let toClient: MuxConnection;
    try {
      toClient = client.session.open(encodeRelayOpen({ connectionId: id, endToEnd, clearPayload: clientClear, peer: server.msid }));
    } catch (error) {
      toServer.destroy();
      throw error;
    }
    if (clientClear) toClient.enableClearPayload();
    relays.set(id, client);
    let open = 2;
    const finished = (): void => {
      if (--open > 0) return;
      relays.delete(id);
      void client.session.close();
      this.closeIfIdle(server);
    };
    this.pipe(toClient, toServer, id, 'client-to-server', finished);
    this.pipe(toServer, toClient, id, 'server-to-client', finished);
    client.session.on('close', (error) => {
      toClient.destroy(error);
      toServer.destroy(error);
    });
    return id;
  }

  /**
   * One direction, with backpressure; a reset on either side resets the
   * other. Pass-through follows the source: bytes that arrived outside the
   * hop encryption (the endpoint switched once its end-to-end handshake was
   * done) leave so too where the far hop agreed to it; bytes that arrived
   * sealed always leave sealed.
   */
  private pipe(from: MuxConnection, to: MuxConnection, connectionId: number, direction: string, finished: () => void): void {
    let done = false;
    let forwarded = 0;
    let clear = false;
    const finish = (): void => {
      if (!done) {
        done = true;
        finished();
      }
    };
    from.on('data', (chunk) => {
      this.relayedBytes += chunk.length;
      if (relayChannel.hasSubscribers) relayChannel.publish({ gateway: this.msid, connectionId, direction, chunk });
      if (!clear && forwarded >= from.clearReceivedFrom) {
        clear = true;
        to.startClearPayload();
      }
      forwarded += chunk.length;
      if (to.closed) return;
      // A data listener owns its chunk: hand it on without a copy.
      if (!to.writeOwned(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    from.on('end', () => {
      if (!to.closed) to.end();
    });
    from.on('close', (error) => {
      if (error && !to.closed) to.destroy(error);
      finish();
    });
    from.resume();
  }
}
