/**
 * The controller (design, system 1): directory and load balancer of the
 * gateway system. It keeps the server database (MSID ↔ PCID) in a
 * {@link ServerStore}, the gateway list and session table in memory
 * ({@link Directory}), and answers, over authenticated secure sessions:
 *
 * - servers: login (record created on first sight, a gateway picked, a
 *   redirect token signed), login info, rename;
 * - anyone with a machine identity: lookup of a PCID (gateway, MSID, ticket);
 * - gateways (certificate of role `gateway` under the root): registration,
 *   keepalives every T1, session-table deltas, draining. A gateway silent
 *   for T2 leaves the balancing set and its sessions leave the table; one
 *   whose link closes leaves at once.
 *
 * Every peer's session is independent: a malformed request is refused to
 * that peer alone.
 */
import { EventEmitter } from 'eventemitter3';
import { GatesockError, RelayError } from '../errors/index.js';
import { checkOption } from '../errors/check.js';
import { certificateVerifier, getCryptoBackend, type Certificate, type Identity, type VerifiedCertificate } from '../session/index.js';
import type { ByteStream } from '../transport/index.js';
import { leastSessionsStrategy, type BalancingStrategy, type GatewayLoad } from './balancing.js';
import { Directory, type GatewayRecord } from './directory.js';
import { listenAll, type Listeners, type WebSocketListenOptions } from './listen.js';
import { acceptLink, type Link, type LinkOptions } from './link.js';
import { silentLogger, type RelayLogger } from './log.js';
import { METHOD, serverInfoParams } from './messages.js';
import { numberField, optionalStringField, stringArrayField, stringField, toBase64Url } from './params.js';
import type { RpcValue } from './rpc.js';
import { checkPcid, type ServerStore } from './store/index.js';
import { encodeToken } from './token.js';

/**
 * Options of {@link Controller.start}.
 * @public
 */
export interface ControllerOptions {
  /** The controller's identity: a `controller` certificate under the root, and its key (it signs tokens). */
  identity: Identity;
  /** The gateway system's root certificate(s); gateways must chain to one. */
  roots: readonly Certificate[];
  /** The server database. */
  store: ServerStore;
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default 0. */
  port?: number;
  /** T1: how often gateways send a keepalive, in ms (told to them at registration). Default 5000. */
  keepaliveIntervalMs?: number;
  /** T2: a gateway silent this long leaves the balancing set, in ms; must be greater than T1. Default 15000. */
  gatewayTimeoutMs?: number;
  /** Lifetime of redirect tokens and client tickets, in ms. Default 60000. */
  tokenLifetimeMs?: number;
  /** How a gateway is picked for a server. Default {@link leastSessionsStrategy}. */
  strategy?: BalancingStrategy;
  /** Crypto backend, handshake and session tunables of every link. */
  link?: LinkOptions;
  /** Also listen for WebSocket upgrades (peers behind web infrastructure dial its `ws://` URL). Default: TCP only. */
  websocket?: WebSocketListenOptions;
  /** Structured logs. Default: none. */
  log?: RelayLogger;
}

/**
 * Defaults of {@link ControllerOptions}.
 * @public
 */
export const DEFAULT_CONTROLLER_OPTIONS = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  keepaliveIntervalMs: 5000,
  gatewayTimeoutMs: 15_000,
  tokenLifetimeMs: 60_000,
});

/**
 * One gateway as the controller sees it (for operators and experiments).
 * @public
 */
export interface GatewayStatus extends GatewayLoad {
  /** Server sessions it reported (without the pending ones). */
  readonly servers: number;
  /** It said it drains. */
  readonly draining: boolean;
  /** Milliseconds since it was last heard from. */
  readonly silentMs: number;
}

/**
 * Events of a {@link Controller}.
 * @public
 */
export interface ControllerEvents {
  /** A gateway registered. */
  gatewayUp: (msid: string, address: string) => void;
  /** A gateway left the balancing set: its link closed, it went silent past T2, or it re-registered. */
  gatewayDown: (msid: string, why: string) => void;
  /** A server logged in and was sent to a gateway. */
  login: (serverMsid: string, pcid: string, gatewayMsid: string) => void;
}

/**
 * The controller: start it with {@link Controller.start}.
 * @public
 */
export class Controller extends EventEmitter<ControllerEvents> {
  private readonly directory = new Directory();
  private readonly links = new Set<Link>();
  private readonly sweepTimer: ReturnType<typeof setInterval>;
  private readonly log: RelayLogger;
  private readonly t1: number;
  private readonly t2: number;
  private readonly tokenLifetime: number;
  private readonly strategy: BalancingStrategy;
  private readonly verifyPeer: (chain: readonly Uint8Array[]) => VerifiedCertificate;
  private closing = false;
  private logins = 0;

  private constructor(
    private readonly options: ControllerOptions,
    private readonly endpoints: Listeners,
  ) {
    super();
    this.log = options.log ?? silentLogger;
    this.t1 = options.keepaliveIntervalMs ?? DEFAULT_CONTROLLER_OPTIONS.keepaliveIntervalMs;
    this.t2 = options.gatewayTimeoutMs ?? DEFAULT_CONTROLLER_OPTIONS.gatewayTimeoutMs;
    this.tokenLifetime = options.tokenLifetimeMs ?? DEFAULT_CONTROLLER_OPTIONS.tokenLifetimeMs;
    this.strategy = options.strategy ?? leastSessionsStrategy;
    // Gateways chain to the root; servers and clients present their own self-signed machine certificate.
    this.verifyPeer = certificateVerifier({ roots: options.roots, role: ['gateway', 'server'], allowSelfSignedServer: true, crypto: options.link?.backend });
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(10, Math.min(this.t1, this.t2 / 3)));
    this.sweepTimer.unref?.();
  }

  /** Check the options, listen, and serve. */
  static async start(options: ControllerOptions): Promise<Controller> {
    checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
    checkOption(options.identity?.certificate?.role === 'controller', 'identity', "must hold a certificate of role 'controller'");
    checkOption(Array.isArray(options.roots) && options.roots.length > 0, 'roots', 'must list the root certificate');
    checkOption(typeof options.store?.login === 'function', 'store', 'must be a ServerStore');
    const t1 = options.keepaliveIntervalMs ?? DEFAULT_CONTROLLER_OPTIONS.keepaliveIntervalMs;
    const t2 = options.gatewayTimeoutMs ?? DEFAULT_CONTROLLER_OPTIONS.gatewayTimeoutMs;
    checkOption(Number.isFinite(t1) && t1 >= 10, 'keepaliveIntervalMs', 'must be at least 10');
    checkOption(Number.isFinite(t2) && t2 > t1, 'gatewayTimeoutMs', 'must be greater than keepaliveIntervalMs');
    const lifetime = options.tokenLifetimeMs ?? DEFAULT_CONTROLLER_OPTIONS.tokenLifetimeMs;
    checkOption(Number.isFinite(lifetime) && lifetime >= 1000, 'tokenLifetimeMs', 'must be at least 1000');
    const { listeners, ready } = await listenAll(
      { host: options.host ?? DEFAULT_CONTROLLER_OPTIONS.host, port: options.port ?? DEFAULT_CONTROLLER_OPTIONS.port },
      options.websocket,
    );
    const controller = new Controller(options, listeners);
    ready((stream) => controller.accept(stream));
    options.log?.info({ address: listeners.tcp.address, websocket: listeners.ws?.url, strategy: controller.strategy.name }, 'controller listening');
    return controller;
  }

  /** The address gateways, servers and clients connect to. */
  get address(): string {
    return this.endpoints.tcp.address;
  }

  /** The port listened on. */
  get port(): number {
    return this.endpoints.tcp.port;
  }

  /** The `ws://` URL of the WebSocket listener, when there is one. */
  get websocketUrl(): string | undefined {
    return this.endpoints.ws?.url;
  }

  /** Server logins answered since start. */
  get loginCount(): number {
    return this.logins;
  }

  /** Server sessions in the session table. */
  get sessionCount(): number {
    return this.directory.sessionCount;
  }

  /** The gateways registered now. */
  gateways(): GatewayStatus[] {
    const now = performance.now();
    return [...this.directory.gateways.values()].map((g) => ({
      msid: g.msid,
      address: g.address,
      capacity: g.capacity,
      servers: g.servers.size,
      sessions: g.servers.size + g.pending.size,
      connections: g.connections,
      bytesPerSecond: g.bytesPerSecond,
      cpu: g.cpu,
      draining: g.draining,
      silentMs: now - g.lastSeen,
    }));
  }

  /** The MSID of the gateway holding `serverMsid`'s session, if any. */
  gatewayOf(serverMsid: string): string | undefined {
    return this.directory.gatewayOf(serverMsid)?.msid;
  }

  /** Stop listening, close every link, close the store. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.sweepTimer);
    await this.endpoints.close();
    for (const link of this.links) link.session.destroy();
    this.links.clear();
    await this.options.store.close();
  }

  private accept(stream: ByteStream): void {
    if (this.closing) return stream.destroy();
    acceptLink(stream, this.options.identity, this.verifyPeer, this.options.link, (link) => this.serve(link)).then(
      () => undefined,
      (error: GatesockError) => this.log.debug({ remote: stream.info.remote, code: error.code, error: error.message }, 'handshake refused'),
    );
  }

  private serve(link: Link<VerifiedCertificate>): void {
    if (this.closing) return link.session.destroy();
    this.links.add(link);
    link.session.on('close', () => this.links.delete(link));
    link.rpc.on('problem', (error) => this.log.warn({ peer: link.peer.msid, code: error.code, error: error.message }, 'bad message'));
    if (link.peer.role === 'gateway') this.serveGateway(link);
    else this.serveMachine(link);
  }

  // ---------------------------------------------------------------------------
  // Servers and clients

  private serveMachine(link: Link<VerifiedCertificate>): void {
    const msid = link.peer.msid;
    const rpc = link.rpc;
    rpc.handle(METHOD.login, async (p) => this.login(msid, link.peer.certificate, optionalStringField(p, 'avoid', 69)));
    rpc.handle(METHOD.lookup, async (p) => this.lookup(msid, stringField(p, 'pcid', 64)));
    rpc.handle(METHOD.loginInfo, async () => {
      const record = await this.options.store.findByMsid(msid);
      if (!record) throw new RelayError('GS_ERR_RELAY_FORBIDDEN', `${msid} has never logged in`);
      return serverInfoParams(record);
    });
    rpc.handle(METHOD.rename, async (p) => {
      const pcid = stringField(p, 'pcid', 64);
      checkPcid(pcid);
      const record = await this.options.store.rename(msid, pcid);
      this.log.info({ msid, pcid }, 'server renamed');
      return serverInfoParams(record);
    });
  }

  private async login(msid: string, certificate: Certificate, avoid: string | undefined): Promise<RpcValue> {
    const digest = Buffer.from(msid.slice(5), 'hex').toString('hex');
    const { record, created } = await this.options.store.login(msid, digest);
    const now = performance.now();
    let candidates = this.directory.candidates(now, this.t2);
    // A server moving off a draining gateway asks not to be sent back; if it is the only one, so be it.
    if (avoid !== undefined && candidates.length > 1) candidates = candidates.filter((g) => g.msid !== avoid);
    const picked = candidates.length > 0 ? this.strategy.pick(candidates, msid) : undefined;
    const gateway = picked && this.directory.gateways.get(picked.msid);
    if (!gateway) throw new RelayError('GS_ERR_NO_GATEWAY', 'no gateway is available: none registered, alive and not draining');
    this.directory.expect(gateway, msid, now + this.tokenLifetime);
    const token = this.sign('redirect', gateway.msid, msid, msid);
    this.logins++;
    this.log.info({ msid, pcid: record.pcid, gateway: gateway.msid, created, subject: certificate.subject }, 'server login');
    this.emit('login', msid, record.pcid, gateway.msid);
    return { msid, pcid: record.pcid, gateway: { msid: gateway.msid, address: gateway.address }, token: toBase64Url(token) };
  }

  private async lookup(client: string, pcid: string): Promise<RpcValue> {
    checkPcid(pcid);
    const record = await this.options.store.findByPcid(pcid);
    if (!record) throw new RelayError('GS_ERR_UNKNOWN_PCID', `no server is named "${pcid}"`);
    const gateway = this.directory.gatewayOf(record.msid);
    if (!gateway || performance.now() - gateway.lastSeen > this.t2) {
      throw new RelayError('GS_ERR_SERVER_OFFLINE', `server "${pcid}" (${record.msid}) has no session on any gateway now`);
    }
    const ticket = this.sign('ticket', gateway.msid, client, record.msid);
    return { msid: record.msid, gateway: { msid: gateway.msid, address: gateway.address }, ticket: toBase64Url(ticket) };
  }

  private sign(kind: 'redirect' | 'ticket', gateway: string, holder: string, target: string): Uint8Array {
    const issuedAt = Date.now();
    const nonce = getCryptoBackend(this.options.link?.backend ?? 'auto').randomBytes(16);
    return encodeToken({ kind, issuedAt, expiresAt: issuedAt + this.tokenLifetime, nonce, gateway, holder, target }, (m) => this.options.identity.sign(m));
  }

  // ---------------------------------------------------------------------------
  // Gateways

  private serveGateway(link: Link<VerifiedCertificate>): void {
    const msid = link.peer.msid;
    let record: GatewayRecord | undefined;
    const rpc = link.rpc;
    rpc.handle(METHOD.register, (p) => {
      const address = stringField(p, 'address', 300);
      const capacity = numberField(p, 'capacity', 1, 10_000_000);
      const servers = stringArrayField(p, 'servers', 69, 10_000_000);
      const previous = this.directory.gateways.get(msid);
      // The same gateway on a new link (it reconnected): the old link is stale.
      if (previous && previous !== record) this.dropGateway(previous, 're-registered on a new link');
      else if (previous) this.directory.removeGateway(msid);
      record = {
        msid,
        address,
        capacity,
        servers: new Set(),
        pending: new Map(),
        connections: 0,
        bytesPerSecond: 0,
        cpu: 0,
        lastSeen: performance.now(),
        draining: false,
        drop: (why) => link.session.destroy(new RelayError('GS_ERR_RELAY_FORBIDDEN', `dropped by the controller: ${why}`)),
        evict: (server) => link.rpc.notify(METHOD.evict, { msid: server }),
      };
      this.directory.addGateway(record);
      this.evictMoved(this.directory.replaceSessions(record, servers));
      this.log.info({ gateway: msid, address, capacity, servers: servers.length }, 'gateway registered');
      this.emit('gatewayUp', msid, address);
      return { keepaliveMs: this.t1, timeoutMs: this.t2 };
    });
    const current = (): GatewayRecord | undefined => (record && this.directory.gateways.get(msid) === record ? record : undefined);
    rpc.onNotice(METHOD.keepalive, (p) => {
      const g = current();
      if (!g) return;
      g.lastSeen = performance.now();
      g.connections = numberField(p, 'connections');
      g.bytesPerSecond = numberField(p, 'bytesPerSecond');
      g.cpu = numberField(p, 'cpu', 0, 1024);
    });
    rpc.handle(METHOD.sessions, (p) => {
      const g = current();
      if (!g) throw new RelayError('GS_ERR_RELAY_FORBIDDEN', 'register first');
      g.lastSeen = performance.now();
      this.directory.sessionsRemoved(g, stringArrayField(p, 'removed', 69));
      this.evictMoved(this.directory.sessionsAdded(g, stringArrayField(p, 'added', 69)));
      return {};
    });
    rpc.onNotice(METHOD.draining, () => {
      const g = current();
      if (!g) return;
      g.draining = true;
      this.log.info({ gateway: msid }, 'gateway draining: out of the balancing set');
      this.emit('gatewayDown', msid, 'draining');
    });
    link.session.on('close', () => {
      const g = current();
      if (g) this.dropGateway(g, 'its link closed');
    });
  }

  private evictMoved(moved: ReturnType<Directory['sessionsAdded']>): void {
    for (const { server, from } of moved) {
      this.log.info({ msid: server, from: from.msid }, 'server session moved: evicting the old one');
      from.evict(server);
    }
  }

  private dropGateway(g: GatewayRecord, why: string): void {
    if (this.directory.gateways.get(g.msid) !== g) return;
    const lost = this.directory.removeGateway(g.msid);
    this.log.warn({ gateway: g.msid, why, servers: lost.length }, 'gateway left the balancing set');
    this.emit('gatewayDown', g.msid, why);
    g.drop(why);
  }

  private sweep(): void {
    for (const g of this.directory.silent(performance.now(), this.t2)) this.dropGateway(g, `silent for more than ${this.t2} ms`);
  }
}
