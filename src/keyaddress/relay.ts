/**
 * Key addresses over the relay: the same idea where IPv6 end to end is
 * missing, in the gateway system's namespace instead of the address space.
 *
 * A server registers at the controller under a *secret PCID* drawn from the
 * key-address sequence — position (t, n)'s PCID is
 * `ka-` + base32(first 120 bits of slot(t, n, "relay-pcid")), 27 characters —
 * and renames itself to the next position's PCID after each session, so:
 *
 * - only passphrase holders can name it: the controller answers "unknown
 *   PCID" for everything else, and a lookup reveals nothing about the
 *   sequence;
 * - a used PCID is dead at once (the server has moved on), like a retired
 *   key address.
 *
 * Models as for the listener (listener.ts): `parallel` renames to the next
 * PCID as soon as a session is accepted; `serial` renames to a random PCID
 * nobody knows while the session runs (the server is "not listening") and
 * to the next secret PCID when it ends. A connection that arrives while the
 * server is between names (a client that looked the old PCID up just
 * before the rename) is disconnected at once.
 *
 * The client ({@link KeyAddressRelayClient}) takes the next position from
 * its cursor and connects to its PCID; on "unknown PCID" it tries the next
 * position, up to `lookahead` more times (lookups are free and reveal
 * nothing), which catches it up when the server has moved further than it
 * knows (e.g. another holder of the passphrase used positions). A client
 * *ahead* of the server cannot find it until both enter the next epoch
 * (seed 002, fig. 8). On "server offline" the PCID was right: the client
 * keeps it and tries it first next time instead of moving on.
 *
 * Both ends need the slot computed: make the KeyAddressServer and
 * KeyAddressClient with `slots: [RELAY_PCID_SLOT]`.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import { checkOption } from '../errors/check.js';
import { ConfigError, GatesockError, RelayError } from '../errors/index.js';
import { ServerEndpoint, type RelayConnectionInfo, type ServerEndpointOptions } from '../relay/index.js';
import { clientConnect, SockIo, type ClientConnectOptions, type SockIoOptions } from '../socket/index.js';
import type { ListeningModel } from './listener.js';
import { KEYADDRESS_DEFAULTS, epochOf, epochStart } from './options.js';

/** The slot label whose secret names a position's PCID. @public */
export const RELAY_PCID_SLOT = 'relay-pcid';

/** Every secret PCID starts with this. @public */
export const SECRET_PCID_PREFIX = 'ka-';

/** Default number of further positions a client tries after "unknown PCID". @public */
export const DEFAULT_RELAY_LOOKAHEAD = 4;

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** After a failed rename (controller unreachable), try again this much later, in ms. */
const RENAME_RETRY_MS = 1000;

/**
 * A position as the relay variant needs it: its address (the window's key)
 * and its slot secrets (KeyAddressPosition has both).
 * @public
 */
export interface RelayPosition {
  /** The position's epoch (t of (t, n)); the server registers in its clock's epoch when given. */
  readonly t?: number;
  /** The position's key address: the window admits it when its PCID gets a session. */
  readonly address: string;
  /** Slot secrets by label; the PCID comes from `slots[RELAY_PCID_SLOT]`. */
  readonly slots: Readonly<Record<string, Uint8Array>>;
}

/**
 * The PCID of a slot secret: `ka-` + RFC 4648 base32 (lower case, no
 * padding) of its first 15 bytes (120 bits) — 27 printable characters.
 * @public
 */
export function secretPcid(slot: Uint8Array): string {
  checkOption(slot instanceof Uint8Array && slot.length >= 15, 'slot', 'must be at least 15 bytes');
  let out = SECRET_PCID_PREFIX;
  let bits = 0;
  let acc = 0;
  for (let i = 0; i < 15; i++) {
    acc = (acc << 8) | slot[i]!;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out; // 120 bits = 24 symbols exactly
}

/** The secret PCID of `position` under `slot`. @internal */
export function pcidOf(position: RelayPosition, slot: string): string {
  const secret = position.slots?.[slot];
  if (!(secret instanceof Uint8Array)) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `the key-address position has no slot "${slot}": create the KeyAddressServer / KeyAddressClient with slots: ['${slot}']`);
  }
  return secretPcid(secret);
}

/**
 * The server-side window the relay server moves along (KeyAddressServer).
 * @public
 */
export interface RelayWindow {
  /** Positions accepted now, first the one the server registers under. */
  acceptable(): readonly RelayPosition[];
  /** Consume a position by its address when its PCID gets a session. */
  admit(address: string): boolean | { readonly ok: boolean };
  /** Subscribe to changes of `acceptable()` (epoch roll-over renames the server). */
  on?(event: 'change', listener: () => void): unknown;
  /** Unsubscribe. */
  off?(event: 'change', listener: () => void): unknown;
  /** Start following the clock; returns the stop function (called at close). */
  watch?(): () => void;
}

/**
 * The client-side cursor (KeyAddressClient): each call the next position.
 * @public
 */
export interface RelayCursor {
  /** The next position to try; never the same one twice. */
  next(): RelayPosition;
}

/**
 * Options of {@link KeyAddressRelayServer.start}: a relay server's options
 * (controller, roots, identity…) plus the window it moves along.
 * @public
 */
export interface KeyAddressRelayServerOptions extends Omit<ServerEndpointOptions, 'pcid'> {
  /** The window (a KeyAddressServer made with `slots: [RELAY_PCID_SLOT]`). */
  readonly window: RelayWindow;
  /** Listening model; default `parallel`. */
  readonly model?: ListeningModel;
  /** Slot label; default {@link RELAY_PCID_SLOT}. */
  readonly slot?: string;
  /** Options of each accepted SockIo. */
  readonly sockIo?: SockIoOptions;
  /**
   * The window's epoch length, origin and clock (give the same as to the
   * KeyAddressServer; defaults: KEYADDRESS_DEFAULTS and Date.now). Around an
   * epoch boundary the window accepts two epochs, but a server has one PCID:
   * it registers under the first position of the epoch its clock is in, and
   * moves at the boundary itself.
   */
  readonly epochMs?: number;
  /** The window's epoch origin, Unix ms (see `epochMs`). */
  readonly originMs?: number;
  /** The window's clock, Unix ms (see `epochMs`). */
  readonly now?: () => number;
}

/**
 * Events of a {@link KeyAddressRelayServer}.
 * @public
 */
export interface KeyAddressRelayServerEvents {
  /** The server now answers to a new secret PCID (`hidden`: a random one, serial model during a session). */
  renamed: (info: { readonly hidden: boolean }) => void;
  /** A connection arrived while the server was between names, and was disconnected. */
  refused: (info: RelayConnectionInfo) => void;
  /** Renaming failed (the controller unreachable); retried at the next change. */
  error: (error: unknown) => void;
}

type RelayServerState = 'listening' | 'moving' | 'busy' | 'closed';

/**
 * A relay server found only by passphrase holders: it registers under the
 * current position's secret PCID and moves on after each session (see the
 * module comment). Connections arrive at `onAccept` as SockIo, as with
 * `serverStart`.
 *
 * @example
 * ```ts
 * const window = await KeyAddressServer.fromPassphrase({ passphrase }, { prefix: '2001:db8:1:2::/64', slots: [RELAY_PCID_SLOT] });
 * const server = await KeyAddressRelayServer.start({ controller, roots: [root], identity, window }, async (sock) => {
 *   for await (const chunk of sock) await sock.send(chunk);
 * });
 * ```
 * @public
 */
export class KeyAddressRelayServer extends EventEmitter<KeyAddressRelayServerEvents> {
  readonly #o: KeyAddressRelayServerOptions & { readonly model: ListeningModel; readonly slot: string };
  readonly #endpoint: ServerEndpoint;
  readonly #onAccept: (sock: SockIo, info: RelayConnectionInfo) => void | Promise<void>;
  #state: RelayServerState = 'moving';
  /** The position whose PCID the server is registered under (undefined while hidden). */
  #current: RelayPosition | undefined;
  #sessions = 0;
  #accepted = 0;
  #refused = 0;
  #moving: Promise<void> = Promise.resolve();
  #retry: ReturnType<typeof setTimeout> | undefined;
  #boundary: ReturnType<typeof setTimeout> | undefined;
  readonly #stop: (() => void)[] = [];

  private constructor(options: KeyAddressRelayServerOptions, onAccept: (sock: SockIo, info: RelayConnectionInfo) => void | Promise<void>) {
    super();
    checkOption(typeof options.window?.acceptable === 'function' && typeof options.window.admit === 'function', 'window', 'must have acceptable() and admit()');
    checkOption(options.model === undefined || options.model === 'serial' || options.model === 'parallel', 'model', "must be 'serial' or 'parallel'");
    checkOption(typeof onAccept === 'function', 'onAccept', 'must be a function');
    this.#o = { ...options, model: options.model ?? 'parallel', slot: options.slot ?? RELAY_PCID_SLOT };
    this.#onAccept = onAccept;
    const first = this.#first();
    this.#current = first;
    this.#endpoint = new ServerEndpoint({ ...options, pcid: first ? pcidOf(first, this.#o.slot) : hiddenPcid() });
    this.#endpoint.on('connection', (stream, info) => this.#onConnection(stream, info));
  }

  /**
   * Register under the current secret PCID and resolve once online.
   * @throws ConfigError for bad options (a window without the slot).
   */
  static async start(options: KeyAddressRelayServerOptions, onAccept: (sock: SockIo, info: RelayConnectionInfo) => void | Promise<void>): Promise<KeyAddressRelayServer> {
    const server = new KeyAddressRelayServer(options, onAccept);
    const w = options.window;
    if (w.watch) server.#stop.push(w.watch());
    if (w.on && w.off) {
      const changed = () => server.#follow();
      w.on('change', changed);
      server.#stop.push(() => w.off!('change', changed));
    }
    try {
      await server.#endpoint.online();
    } catch (error) {
      await server.close();
      throw error;
    }
    server.#state = 'listening';
    server.#armBoundary();
    // The clock may have crossed a boundary while we logged in.
    server.#follow();
    return server;
  }

  /** The relay endpoint underneath (MSID, gateway, `online` / `offline` events). */
  get endpoint(): ServerEndpoint {
    return this.#endpoint;
  }

  /** The PCID it answers to now (secret, or a random one while hidden). */
  get pcid(): string | undefined {
    return this.#endpoint.pcid;
  }

  /** Sessions admitted, connections refused, sessions open. */
  get stats(): { readonly accepted: number; readonly refused: number; readonly sessions: number } {
    return { accepted: this.#accepted, refused: this.#refused, sessions: this.#sessions };
  }

  /** Resolves when any rename under way has finished (tests, tools). */
  settled(): Promise<void> {
    return this.#moving;
  }

  /** Stop: leave the gateway system; open connections are reset. */
  async close(): Promise<void> {
    this.#state = 'closed';
    clearTimeout(this.#retry);
    clearTimeout(this.#boundary);
    for (const s of this.#stop.splice(0)) s();
    await this.#endpoint.close();
  }

  /** The epoch of the server's clock. */
  #epoch(): number {
    return epochOf(this.#now(), this.#o.epochMs ?? KEYADDRESS_DEFAULTS.epochMs, this.#o.originMs ?? KEYADDRESS_DEFAULTS.originMs);
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  /**
   * The position to register under: the first acceptable one of the clock's
   * epoch (clients with a right clock are there), else of a later one, else
   * the first.
   */
  #first(): RelayPosition | undefined {
    const all = this.#o.window.acceptable();
    const tc = this.#epoch();
    return all.find((p) => p.t === tc) ?? all.find((p) => p.t !== undefined && p.t > tc) ?? all[0];
  }

  /** At each epoch boundary, follow the clock into the new epoch (the window itself may not change then). */
  #armBoundary(): void {
    if (this.#closed()) return;
    const next = epochStart(this.#epoch() + 1, this.#o.epochMs ?? KEYADDRESS_DEFAULTS.epochMs, this.#o.originMs ?? KEYADDRESS_DEFAULTS.originMs);
    const delay = Math.min(Math.max(0, next - this.#now()) + 5, 2 ** 31 - 1);
    this.#boundary = setTimeout(() => {
      this.#follow();
      this.#armBoundary();
    }, delay);
    this.#boundary.unref();
  }

  #onConnection(stream: Parameters<typeof SockIo.fromStream>[0], info: RelayConnectionInfo): void {
    const current = this.#current;
    if (this.#state !== 'listening' || current === undefined) {
      this.#refused++;
      stream.destroy();
      this.emit('refused', info);
      return;
    }
    let r: ReturnType<RelayWindow['admit']>;
    try {
      r = this.#o.window.admit(current.address);
    } catch (error) {
      this.emit('error', error);
      r = false;
    }
    if (!(r === true || (typeof r === 'object' && r.ok))) {
      // The window moved under us (an epoch rolled): this PCID is stale.
      this.#refused++;
      stream.destroy();
      this.emit('refused', info);
      this.#move();
      return;
    }
    this.#accepted++;
    this.#sessions++;
    stream.on('close', () => {
      this.#sessions--;
      // Serial: the last session ended — listen on the next PCID. Queued
      // behind a rename still under way (the one that hid the server).
      if (this.#o.model === 'serial' && this.#sessions === 0 && !this.#closed()) this.#move();
    });
    if (this.#o.model === 'parallel') this.#move();
    else this.#hide();
    const sock = SockIo.fromStream(stream, { connectionId: info.connectionId, peerMsid: info.peerMsid, gateway: info.gateway, endToEnd: info.endToEnd }, this.#o.sockIo);
    try {
      Promise.resolve(this.#onAccept(sock, info)).catch(() => void sock.disconnect());
    } catch {
      void sock.disconnect();
    }
  }

  /** The window changed (clock): follow it if the registered position is no longer the first. */
  #follow(): void {
    if (this.#state !== 'listening') return;
    try {
      if (this.#first()?.address !== this.#current?.address) this.#move();
    } catch (error) {
      // From a timer or an event: report (e.g. the clock left the epoch range), never throw.
      this.emit('error', error);
    }
  }

  /** Rename to the first acceptable position's PCID, then listen. */
  #move(): void {
    this.#rename(() => this.#first(), 'listening');
  }

  /** Serial model, a session open: rename to a PCID nobody knows. */
  #hide(): void {
    this.#rename(() => undefined, 'busy');
  }

  /** (A method, so that TypeScript does not narrow the state across awaits.) */
  #closed(): boolean {
    return this.#state === 'closed';
  }

  #rename(target: () => RelayPosition | undefined, then: RelayServerState): void {
    if (this.#state === 'closed') return;
    this.#state = 'moving';
    this.#current = undefined;
    this.#moving = this.#moving.then(async () => {
      if (this.#closed()) return;
      let position: RelayPosition | undefined;
      try {
        position = target();
        await this.#endpoint.renameMachine(position ? pcidOf(position, this.#o.slot) : hiddenPcid());
        if (this.#closed()) return;
        this.#current = position;
        this.#state = then;
        this.emit('renamed', { hidden: position === undefined });
      } catch (error) {
        if (this.#closed()) return;
        // Stay unreachable rather than answer under a stale name, and try
        // again in a while (or at the next window change or session end).
        this.#state = then;
        this.emit('error', error);
        if (then === 'listening') {
          clearTimeout(this.#retry);
          this.#retry = setTimeout(() => {
            if (this.#state === 'listening' && this.#current === undefined) this.#move();
          }, RENAME_RETRY_MS);
          this.#retry.unref();
        }
      }
    }).catch(() => undefined); // a throwing event listener must not break the chain of renames
  }
}

/** A random PCID in the same shape as a secret one: nobody can name it. */
function hiddenPcid(): string {
  return secretPcid(randomBytes(15));
}

/**
 * Options of {@link KeyAddressRelayClient}: `clientConnect`'s options plus
 * the cursor.
 * @public
 */
export interface KeyAddressRelayClientOptions extends ClientConnectOptions {
  /** The cursor (a KeyAddressClient made with `slots: [RELAY_PCID_SLOT]`). */
  readonly cursor: RelayCursor;
  /** Further positions to try after "unknown PCID" (default {@link DEFAULT_RELAY_LOOKAHEAD}; 0 = only one try). */
  readonly lookahead?: number;
  /** Slot label; default {@link RELAY_PCID_SLOT}. */
  readonly slot?: string;
}

/**
 * The client of the relay variant: `connect()` reaches the server through
 * its current secret PCID (see the module comment for lookahead and
 * "server offline").
 * @public
 */
export class KeyAddressRelayClient {
  readonly #o: KeyAddressRelayClientOptions & { readonly lookahead: number; readonly slot: string };
  /** A PCID found but whose server was offline: tried first next time. */
  #pending: string | undefined;

  constructor(options: KeyAddressRelayClientOptions) {
    checkOption(typeof options?.cursor?.next === 'function', 'cursor', 'must have next()');
    const lookahead = options.lookahead ?? DEFAULT_RELAY_LOOKAHEAD;
    checkOption(Number.isInteger(lookahead) && lookahead >= 0 && lookahead <= 64, 'lookahead', 'must be an integer from 0 to 64');
    this.#o = { ...options, lookahead, slot: options.slot ?? RELAY_PCID_SLOT };
  }

  /**
   * Connect to the server. Rejects with `GS_ERR_UNKNOWN_PCID` when none of
   * the positions tried is registered, `GS_ERR_SERVER_OFFLINE`, or any
   * error of `clientConnect`.
   */
  async connect(): Promise<SockIo> {
    const tries = 1 + this.#o.lookahead;
    for (let i = 0; i < tries; i++) {
      const pcid = this.#pending ?? pcidOf(this.#o.cursor.next(), this.#o.slot);
      this.#pending = undefined;
      try {
        return await clientConnect(pcid, this.#o);
      } catch (error) {
        const code = error instanceof GatesockError ? error.code : undefined;
        if (code === 'GS_ERR_SERVER_OFFLINE') this.#pending = pcid;
        if (code !== 'GS_ERR_UNKNOWN_PCID') throw error;
      }
    }
    throw new RelayError('GS_ERR_UNKNOWN_PCID', `no server is registered under the next ${tries} secret PCIDs of this sequence (the server is offline, or ahead/behind by more than the lookahead until the next epoch)`);
  }
}
