/**
 * Key-address listeners: the seed's listening models (paper 002, §2.2 and
 * §4.1) on a real Linux network path.
 *
 * ## What the seed asks, and what a stock kernel gives
 *
 * The seed gives each session its own listening socket bound to a fresh
 * key address ("DAS", Delayed Address Setting) and retires the address as
 * soon as it is used. Two models:
 *
 * - **serial** (シリアル更新型, fig. 5): one session at a time. Listen on
 *   the current address; once a session is established nothing else is
 *   listened on; when it ends, listen on the next address.
 * - **parallel** (パラレル更新型, fig. 6): as soon as a session is
 *   established, listen on the next address, so one listening socket always
 *   exists.
 *
 * Each "multiplexed N ways" (§4.1, last paragraph): N independent sequences
 * side by side. Here that is N *lanes*, one {@link AdmissionWindow} each
 * (e.g. N windows made from the passphrase with N different labels, one
 * per client). Serial with N lanes: listening lanes + lanes holding a
 * session = N, so at most N sessions at once; parallel with N lanes: N
 * addresses are always listened on, and sessions are not limited.
 *
 * Two ways to put it on the wire ({@link ListenerMode}):
 *
 * - `admit` — one TCP listener on `[::]:PORT`, with the whole /64 routed
 *   locally (`ip -6 route add local PREFIX/64 dev lo`), so a connection to
 *   *any* address of the /64 reaches it. `socket.localAddress` is the
 *   address the client dialled; the connection is kept only if a listening
 *   lane's window admits that address, and is reset at once
 *   (`resetAndDestroy()`, an RST) otherwise. The kernel completes the TCP
 *   handshake before user space sees the connection, so in this mode
 *   "refused" means *accepted by the kernel, then reset before a byte is
 *   read or written*: a prober learns that something listens on the port of
 *   the /64, but not which address is valid, and never gets a byte.
 * - `bind` — one listener per acceptable address (`[ADDR]:PORT`), opened
 *   and closed as the windows change, like the seed's per-session sockets.
 *   Needs the same route plus `net.ipv6.ip_nonlocal_bind=1`. A SYN to any
 *   other address of the /64 gets an RST from the kernel: no handshake at
 *   all. The cost is a bind()/listen()/close() per session, and an address
 *   change races the client (a SYN that arrives after the window moved is
 *   reset).
 *
 * In both modes an accepted connection is still checked against the
 * window (`admit()`), which retires its address, so a second connection to
 * a used address is refused.
 *
 * Host requirements and the exact commands: host.ts.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { EventEmitter } from 'eventemitter3';
import { checkOption } from '../errors/check.js';
import { canonicalIpv6, checkKeyAddressHost, listenError, prefix64 } from './host.js';

/**
 * The server side of one key-address sequence, as the listener needs it:
 * which addresses are valid now, and the one-shot admission of one of them.
 * {@link KeyAddressServer} has this shape; so does anything with the same
 * three methods.
 * @public
 */
export interface AdmissionWindow {
  /** The addresses a client may use now (IPv6 text, or positions carrying it). */
  acceptable(): readonly (string | { readonly address: string })[];
  /**
   * Admit a connection to `address`: true (or `{ ok: true }`) consumes it —
   * the address is retired and the window moves on; anything else refuses
   * (a `reason` is passed on in the `refused` event).
   */
  admit(address: string): boolean | { readonly ok: boolean; readonly reason?: string };
  /** Subscribe to changes of `acceptable()` (an EventEmitter's `on('change', …)`). */
  on?(event: 'change', listener: () => void): unknown;
  /** Unsubscribe. */
  off?(event: 'change', listener: () => void): unknown;
  /**
   * Start re-reading the clock (epoch changes); returns the stop function.
   * Mode `bind` calls it at start and stops it at close (mode `admit` asks
   * the window at each connection and needs no timer).
   */
  watch?(): () => void;
}

/**
 * The address text of an `acceptable()` entry, canonical (RFC 5952), looked
 * up in `memo` (the canonical forms of the entries listed last time: the
 * window lists mostly the same addresses again) before parsing it; recorded
 * in `into` when given.
 */
function addressOf(entry: string | { readonly address: string }, memo?: ReadonlyMap<string, string>, into?: Map<string, string>): string {
  const text = typeof entry === 'string' ? entry : entry.address;
  const c = memo?.get(text) ?? canonicalIpv6(text) ?? text;
  into?.set(text, c);
  return c;
}

/**
 * The seed's listening models (§4.1): `serial` holds at most one session
 * per lane and listens on nothing in that lane meanwhile; `parallel`
 * listens on the lane's next address as soon as a session is established.
 * @public
 */
export type ListeningModel = 'serial' | 'parallel';

/**
 * How the listener meets the network: `admit` (one socket on `[::]:PORT`,
 * admission by destination address, refused = reset after accept) or
 * `bind` (one socket per acceptable address; other addresses get a kernel
 * RST). See the module comment.
 * @public
 */
export type ListenerMode = 'admit' | 'bind';

/**
 * Options of {@link KeyAddressListener.listen}.
 * @public
 */
export interface KeyAddressListenerOptions {
  /** The /64 the key addresses are in (`2001:db8:1:2::/64`); the host must route it locally. */
  readonly prefix: string;
  /** TCP port (1–65535; below 1024 needs privilege). */
  readonly port: number;
  /** One window per multiplexed sequence ("lane"); N windows = N-way multiplexing. At least one. */
  readonly windows: readonly AdmissionWindow[];
  /** Listening model; default `parallel`. */
  readonly model?: ListeningModel;
  /** Network mode; default `admit`. */
  readonly mode?: ListenerMode;
  /** Mode `admit`: the address to bind (default `::`; the prefix's own address also works). */
  readonly host?: string;
  /** Check the local route (and, for `bind`, the sysctl) before listening; default true. */
  readonly checkHost?: boolean;
  /** Mode `bind`, windows without `on('change')`: re-read `acceptable()` this often, in ms (default 1000). */
  readonly refreshMs?: number;
  /** TCP backlog per listening socket (default 511). */
  readonly backlog?: number;
}

/**
 * An admitted connection: which lane, which key address.
 * @public
 */
export interface KeyAddressConnectionInfo {
  /** Index of the lane (window) that admitted it. */
  readonly lane: number;
  /** The key address the client dialled (now retired). */
  readonly address: string;
  /** The client's address (read from the socket on first use: read it while the connection is open). */
  readonly remoteAddress: string;
  /** The client's port (likewise). */
  readonly remotePort: number;
}

/**
 * Why a connection was reset: no listening lane's window admitted its
 * destination (`not-admitted`: a random, used, expired or out-of-window
 * address; the window's own reason is in `detail`), the address is valid in
 * a lane that holds a session in the serial model (`lane-busy`), or the
 * listener is closing (`closing`).
 * @public
 */
export type RefusalReason = 'not-admitted' | 'lane-busy' | 'closing';

/**
 * A reset connection, as the `refused` event reports it.
 * @public
 */
export interface RefusedConnection {
  /** The address the client dialled. */
  readonly address: string;
  /** The client's address. */
  readonly remoteAddress: string;
  /** Why it was reset. */
  readonly reason: RefusalReason;
  /** For `not-admitted`: the first lane's reason, if its window gave one (`unknown`, `retired`, `outside-window`). */
  readonly detail?: string;
}

/**
 * Events of a {@link KeyAddressListener}.
 * @public
 */
export interface KeyAddressListenerEvents {
  /** A connection was admitted; it is the caller's from now on. */
  connection: (socket: Socket, info: KeyAddressConnectionInfo) => void;
  /** A connection was reset. */
  refused: (info: RefusedConnection) => void;
  /** Mode `bind`: the set of listened addresses changed. */
  listening: (addresses: readonly string[]) => void;
  /** A listening socket failed after start (mode `bind`: an address could not be bound). */
  error: (error: unknown) => void;
}

interface Lane {
  readonly window: AdmissionWindow;
  /** Sessions this lane holds now. */
  sessions: number;
  /** The window tells its changes itself (`on('change')`): an admission needs no reconcile of its own. */
  readonly emits: boolean;
}

const DEFAULT_REFRESH_MS = 1000;

function admitted(result: boolean | { readonly ok: boolean }): boolean {
  return result === true || (typeof result === 'object' && result !== null && result.ok === true);
}

function reasonOf(result: boolean | { readonly ok: boolean; readonly reason?: string }): string | undefined {
  return typeof result === 'object' && result !== null && typeof result.reason === 'string' ? result.reason : undefined;
}

/** A {@link KeyAddressConnectionInfo} whose peer fields are read (a getpeername call) only when used. */
class ConnectionInfo implements KeyAddressConnectionInfo {
  readonly #socket: Socket;
  constructor(socket: Socket, readonly lane: number, readonly address: string) {
    this.#socket = socket;
  }
  get remoteAddress(): string {
    return this.#socket.remoteAddress ?? '';
  }
  get remotePort(): number {
    return this.#socket.remotePort ?? 0;
  }
}

function refuse(socket: Socket): void {
  socket.on('error', () => undefined);
  // An RST, not a FIN: the prober gets no orderly close and no byte.
  socket.resetAndDestroy();
}

/**
 * A TCP listener that accepts a connection only at a currently valid key
 * address of one of its lanes, retires that address, and moves on (the
 * seed's serial or parallel model, N-way multiplexed). Listen with
 * {@link KeyAddressListener.listen}; admitted connections arrive as
 * `connection` events (and to the optional callback).
 *
 * @example
 * ```ts
 * // as root, once: ip -6 route add local 2001:db8:1:2::/64 dev lo
 * const listener = await KeyAddressListener.listen({ prefix: '2001:db8:1:2::/64', port: 7000, windows: [window] },
 *   (socket, info) => { socket.end(`hello at ${info.address}\n`); });
 * ```
 * @public
 */
export class KeyAddressListener extends EventEmitter<KeyAddressListenerEvents> {
  readonly #options: Required<Omit<KeyAddressListenerOptions, 'windows'>>;
  readonly #lanes: Lane[];
  /** Mode `admit`: the one socket. */
  #server: Server | undefined;
  /** Mode `bind`: one socket per listened address. */
  readonly #bound = new Map<string, Server>();
  #reconciling: Promise<void> | undefined;
  #dirty = false;
  #closed = false;
  readonly #unsubscribe: (() => void)[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #accepted = 0;
  #refused = 0;
  /**
   * Canonical forms of the entries listeningAddresses() saw last (only
   * those: addresses that left the windows are not kept).
   */
  #canonical: ReadonlyMap<string, string> = new Map();

  private constructor(options: KeyAddressListenerOptions) {
    super();
    checkOption(Number.isInteger(options.port) && options.port > 0 && options.port < 65536, 'port', 'must be an integer in 1..65535');
    checkOption(Array.isArray(options.windows) && options.windows.length > 0, 'windows', 'must hold at least one window');
    checkOption(
      options.windows.every((w) => typeof w?.acceptable === 'function' && typeof w.admit === 'function'),
      'windows',
      'must each have acceptable() and admit() (a KeyAddressServer)',
    );
    checkOption(options.backlog === undefined || (Number.isInteger(options.backlog) && options.backlog > 0), 'backlog', 'must be a positive integer');
    checkOption(options.model === undefined || options.model === 'serial' || options.model === 'parallel', 'model', "must be 'serial' or 'parallel'");
    checkOption(options.mode === undefined || options.mode === 'admit' || options.mode === 'bind', 'mode', "must be 'admit' or 'bind'");
    checkOption(options.refreshMs === undefined || (Number.isFinite(options.refreshMs) && options.refreshMs > 0), 'refreshMs', 'must be > 0');
    prefix64(options.prefix);
    this.#options = {
      prefix: options.prefix,
      port: options.port,
      model: options.model ?? 'parallel',
      mode: options.mode ?? 'admit',
      host: options.host ?? '::',
      checkHost: options.checkHost ?? true,
      refreshMs: options.refreshMs ?? DEFAULT_REFRESH_MS,
      backlog: options.backlog ?? 511,
    };
    this.#lanes = options.windows.map((window) => ({ window, sessions: 0, emits: typeof window.on === 'function' && typeof window.off === 'function' }));
  }

  /**
   * Check the host, start listening, and resolve once listening.
   *
   * @throws KeyAddressError `GS_ERR_KEYADDR_NO_ROUTE` / `GS_ERR_KEYADDR_NOT_PERMITTED`
   *   with the command that fixes the host; ConfigError for bad options.
   */
  static async listen(options: KeyAddressListenerOptions, onConnection?: (socket: Socket, info: KeyAddressConnectionInfo) => void): Promise<KeyAddressListener> {
    const listener = new KeyAddressListener(options);
    if (onConnection) listener.on('connection', onConnection);
    await listener.#start();
    return listener;
  }

  /** Listening model in force. */
  get model(): ListeningModel {
    return this.#options.model;
  }

  /** Network mode in force. */
  get mode(): ListenerMode {
    return this.#options.mode;
  }

  /** The TCP port. */
  get port(): number {
    return this.#options.port;
  }

  /** Connections admitted and reset so far. */
  get stats(): { readonly accepted: number; readonly refused: number; readonly sessions: number } {
    return { accepted: this.#accepted, refused: this.#refused, sessions: this.#lanes.reduce((n, l) => n + l.sessions, 0) };
  }

  /** The addresses a connection is admitted at now (union over the lanes that listen). */
  listeningAddresses(): string[] {
    const out = new Set<string>();
    const seen = new Map<string, string>();
    this.#lanes.forEach((lane) => {
      if (this.#laneListens(lane)) for (const a of lane.window.acceptable()) out.add(addressOf(a, this.#canonical, seen));
    });
    this.#canonical = seen;
    return [...out];
  }

  /**
   * Stop listening. Sessions already admitted are left to their owners;
   * connections still arriving are reset.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const u of this.#unsubscribe.splice(0)) u();
    await this.#reconciling;
    const servers = [...this.#bound.values(), ...(this.#server ? [this.#server] : [])];
    this.#bound.clear();
    this.#server = undefined;
    // Stops listening at once; close()'s callback would wait for the
    // admitted sessions, which belong to their owners.
    for (const s of servers) s.close();
  }

  #laneListens(lane: Lane): boolean {
    return this.#options.model === 'parallel' || lane.sessions === 0;
  }

  async #start(): Promise<void> {
    const o = this.#options;
    if (o.checkHost) checkKeyAddressHost(o.prefix, o.mode);
    if (o.mode === 'admit') {
      this.#server = await this.#open(o.host);
      return;
    }
    const onChange = () => this.#changed();
    let polled = false;
    for (const { window, emits } of this.#lanes) {
      if (window.watch) this.#unsubscribe.push(window.watch());
      if (emits && window.on && window.off) {
        window.on('change', onChange);
        this.#unsubscribe.push(() => window.off!('change', onChange));
      } else polled = true;
    }
    if (polled) {
      this.#timer = setInterval(onChange, o.refreshMs);
      this.#timer.unref();
    }
    try {
      await this.#reconcile(true);
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** Listen on `[host]:port`; connections go through admission. */
  #open(host: string): Promise<Server> {
    const o = this.#options;
    const server = createServer({ noDelay: true }, (socket) => this.#onSocket(socket));
    return new Promise((resolve, reject) => {
      server.once('error', (error) => reject(listenError(error, o.prefix, o.port, host)));
      server.listen({ host, port: o.port, backlog: o.backlog, ipv6Only: false }, () => {
        server.removeAllListeners('error');
        server.on('error', (error) => this.emit('error', error));
        resolve(server);
      });
    });
  }

  #onSocket(socket: Socket): void {
    // Node prints a local IPv6 address in RFC 5952 form already (libuv's
    // inet_ntop); only an IPv4-mapped one (`::ffff:1.2.3.4`) needs rewriting.
    const local = socket.localAddress ?? '';
    const address = local.includes('.') ? (canonicalIpv6(local) ?? local) : local;
    if (this.#closed) return this.#reject(socket, address, 'closing');
    // Every listening lane's window is asked (the one that knows the
    // address admits it; the others answer "unknown" and keep nothing).
    // A window that recognises a used or out-of-window address retires it.
    let detail: string | undefined;
    let index = -1;
    for (let i = 0; i < this.#lanes.length; i++) {
      const lane = this.#lanes[i]!;
      if (!this.#laneListens(lane)) continue;
      let result: ReturnType<AdmissionWindow['admit']>;
      try {
        result = lane.window.admit(address);
      } catch (error) {
        // A window that throws (e.g. wiped) refuses; the listener lives on.
        this.emit('error', error);
        result = { ok: false, reason: 'error' };
      }
      if (admitted(result)) {
        index = i;
        break;
      }
      const why = reasonOf(result);
      if (detail === undefined || detail === 'unknown') detail = why;
    }
    if (index < 0) {
      // Serial model: the address may be valid in a lane that is busy; it
      // stays valid there (not consumed) for when the lane listens again.
      let busy = false;
      try {
        busy = this.#lanes.some((l) => !this.#laneListens(l) && l.window.acceptable().some((a) => addressOf(a, this.#canonical) === address));
      } catch (error) {
        this.emit('error', error);
      }
      return busy ? this.#reject(socket, address, 'lane-busy') : this.#reject(socket, address, 'not-admitted', detail);
    }
    const lane = this.#lanes[index]!;
    this.#accepted++;
    lane.sessions++;
    // Mode bind: the serial model stops listening in a busy lane and starts
    // again when its session ends; in the parallel model only the window
    // changes, and a window with `change` events has already said so.
    const serial = this.#options.model === 'serial';
    // 'close' comes once per socket: `on` spares once()'s wrapper.
    socket.on('close', () => {
      lane.sessions--;
      if (serial) this.#changed();
    });
    if (serial || !lane.emits) this.#changed();
    this.emit('connection', socket, new ConnectionInfo(socket, index, address));
  }

  #reject(socket: Socket, address: string, reason: RefusalReason, detail?: string): void {
    this.#refused++;
    // The peer's address (a getpeername call) and the event only when
    // someone listens: a scan of the /64 costs a reset, not more.
    if (this.listenerCount('refused') === 0) return refuse(socket);
    const remoteAddress = socket.remoteAddress ?? '';
    refuse(socket);
    this.emit('refused', detail === undefined ? { address, remoteAddress, reason } : { address, remoteAddress, reason, detail });
  }

  /** Something the bound set depends on changed (mode `bind` only). */
  #changed(): void {
    if (this.#options.mode !== 'bind' || this.#closed) return;
    if (this.#reconciling) {
      this.#dirty = true;
      return;
    }
    this.#reconcile(false).catch((error: unknown) => this.emit('error', error));
  }

  /**
   * Mode `bind`: make the bound set equal to the listening addresses —
   * close the listening sockets of retired addresses first (so a used
   * address stops answering before anything else happens), then open the
   * new ones: only the difference. Runs once per change of the windows, one
   * at a time; a change meanwhile runs it again.
   */
  #reconcile(first: boolean): Promise<void> {
    const run = async () => {
      do {
        this.#dirty = false;
        if (this.#closed) return;
        const want = new Set(this.listeningAddresses());
        // close() stops listening at once (the listening socket is closed
        // synchronously); its callback waits for the connections that
        // socket accepted, i.e. for admitted sessions, which are not waited
        // for here (the parallel model listens on the next address while
        // they last).
        let closing = 0;
        for (const [address, server] of this.#bound) {
          if (want.has(address)) continue;
          this.#bound.delete(address);
          server.close();
          closing++;
        }
        const opening = [...want].filter((a) => !this.#bound.has(a));
        const results = await Promise.allSettled(opening.map((a) => this.#open(a)));
        let failure: unknown;
        results.forEach((r, i) => {
          if (r.status === 'fulfilled') {
            if (this.#closed) r.value.close();
            else this.#bound.set(opening[i]!, r.value);
          } else failure ??= r.reason;
        });
        if (failure !== undefined) {
          if (first) throw failure;
          this.emit('error', failure);
        }
        if (closing > 0 || opening.length > 0) this.emit('listening', [...this.#bound.keys()]);
      } while (this.#dirty);
    };
    const p = run().finally(() => {
      this.#reconciling = undefined;
    });
    this.#reconciling = p;
    return p;
  }
}

