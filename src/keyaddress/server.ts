/**
 * The server end of key-address synchronisation (seed 002 §4.2, figure 8):
 * a look-ahead window per open epoch, epochs rolled on the clock with a skew
 * allowance either side of a boundary, and every address seen retired at once.
 *
 * ```text
 *  epoch t:   … retired │ pos  pos+1  …  pos+w−1 │ pos+w … pos+w+ahead−1 │ not derived yet
 *                       └──── accepted (window) ──┘└── recognised: refused  ┘
 *                                                     "outside-window" and retired
 *  admit(A(t, m)) with pos ≤ m < pos+w:  accepted; pos ← m + 1 (m and all before it retired)
 *
 *  time ──────────┬───────────────────────────────────┬──────────────►
 *          start(t)                             start(t+1)
 *          │◄ skewMs ►│                     │◄ skewMs ►│
 *   t−1 still accepted                      t+1 already accepted
 * ```
 *
 * Sans-I/O: the clock is the `now` option, and nothing happens between
 * calls except through {@link KeyAddressServer.watch}, which polls at
 * {@link KeyAddressServer.nextDeadline}, and the look-ahead refill an
 * admission leaves for right after it (setImmediate; nothing it does is
 * visible: a decision that could need it runs it first). Listeners (listener*.ts) subscribe
 * to `change` and bind what {@link KeyAddressServer.acceptable} lists.
 */
import { EventEmitter } from 'eventemitter3';
import { KeyAddressError } from '../errors/index.js';
import { formatIpv6, parseIpv6 } from './address.js';
import { keyAddressChannels, publish } from './diagnostics.js';
import {
  EPOCH_COUNT,
  advanceChain,
  withMasterKey,
  withMasterKeySync,
  EpochFrontier,
  openChain,
  type KeyAddressPosition,
  type KeyAddressSecret,
} from './generator.js';
import { epochOf, epochStart, resolveOptions, type KeyAddressServerOptions, type ResolvedOptions } from './options.js';
import { decodeState, encodeState } from './state.js';

/**
 * Why {@link KeyAddressServer.admit} refused an address.
 * @public
 */
export type AdmitRefusal =
  /** Not an address of any epoch the server accepts now (nor one it remembers retiring). */
  | 'unknown'
  /** An address the server has already seen or moved past (used or not). */
  | 'retired'
  /** An address of an accepted epoch, but beyond the window: refused, and retired. */
  | 'outside-window';

/**
 * What {@link KeyAddressServer.admit} answered.
 * @public
 */
export type AdmitResult =
  | { readonly ok: true; readonly position: KeyAddressPosition }
  | { readonly ok: false; readonly reason: AdmitRefusal; readonly t?: number; readonly n?: number };

/**
 * The set of acceptable addresses changed: listeners bind `added` and release `removed`.
 * @public
 */
export interface KeyAddressChange {
  /** Positions accepted now that were not before, increasing (t, n). */
  readonly added: readonly KeyAddressPosition[];
  /** Positions no longer accepted (admitted, passed over, or their epoch closed). */
  readonly removed: readonly KeyAddressPosition[];
  /** `admit`: the window moved past an accepted address; `clock`: an epoch opened or closed. */
  readonly cause: 'admit' | 'clock';
}

/**
 * Events of {@link KeyAddressServer}.
 * @public
 */
export interface KeyAddressServerEvents {
  /** The acceptable set changed (never emitted with both lists empty). */
  change: [KeyAddressChange];
  /** {@link KeyAddressServer.watch}'s timer could not poll (e.g. the clock left the epoch range). */
  error: [Error];
}

/**
 * The deferred look-ahead refill runs once this many positions are missing:
 * a few chain steps in a row cost less each than one step per admission
 * (code and data still in cache). Decisions never wait for it (see #decide).
 */
const REFILL_BATCH = 8;

interface Entry {
  readonly position: KeyAddressPosition;
  /** C(t, n) of this entry. */
  readonly key: Uint8Array;
}

/**
 * One open epoch: the derived positions pos … pos + entries.length − 1, with
 * their chain keys, oldest first, and a map from address text to position.
 *
 * ```text
 *  entries:  [pos … pos+w−1 │ pos+w … pos+w+ahead−1]   want = w + ahead
 *             window          recognised look-ahead
 *  after admit(A(t, m)):   pos ← m+1; the j = m+1−pos entries before it are
 *  wiped and dropped; the tail is j short until fill() derives j positions
 *  (the window part at once, the rest right after the admission, or before
 *  any decision that could need it)
 * ```
 */
class EpochWindow {
  readonly t: number;
  pos: number;
  entries: Entry[] = [];
  /** Positions ≥ pos seen out of order (beyond the window): retired individually. */
  readonly retired = new Set<number>();
  readonly byAddress = new Map<string, number>();
  /** C(t, pos + entries.length), the key of the next position to derive. */
  #head: Uint8Array;

  constructor(t: number, pos: number, key: Uint8Array, retired: readonly number[], private readonly o: ResolvedOptions) {
    this.t = t;
    this.pos = pos;
    this.#head = key;
    for (const n of retired) this.retired.add(n);
    this.fill();
  }

  /** Positions of the recognised look-ahead not derived yet (0 when it is complete or the epoch has no more). */
  get short(): number {
    const remaining = 0x1_0000_0000 - this.pos - this.entries.length;
    return Math.max(0, Math.min(this.o.window + this.o.recognizeAhead - this.entries.length, remaining));
  }

  /**
   * Derive positions until `want` are held (default: the window and the
   * recognised look-ahead). Each step replaces the head key with the next.
   */
  fill(want = this.o.window + this.o.recognizeAhead): void {
    while (this.entries.length < want && this.pos + this.entries.length <= 0xffff_ffff) {
      const n = this.pos + this.entries.length;
      const { position, next } = advanceChain(this.#head, this.o.prefix.bytes, this.t, n, this.o.slots);
      this.entries.push({ position, key: this.#head });
      this.byAddress.set(position.address, n);
      this.#head = next;
    }
  }

  /**
   * Retire every position before m: wipe their keys, forget their addresses;
   * returns them. Derives at once only what the window itself lacks; the
   * look-ahead tail is left for fill().
   */
  moveTo(m: number): KeyAddressPosition[] {
    const gone = this.entries.splice(0, m - this.pos);
    const out: KeyAddressPosition[] = [];
    for (const e of gone) {
      e.key.fill(0);
      this.byAddress.delete(e.position.address);
      this.retired.delete(e.position.n);
      out.push(e.position);
    }
    this.pos = m;
    this.fill(this.o.window);
    return out;
  }

  /** Positions accepted now: the window minus those retired out of order. */
  accepted(): KeyAddressPosition[] {
    const out: KeyAddressPosition[] = [];
    const end = Math.min(this.o.window, this.entries.length);
    for (let i = 0; i < end; i++) {
      const p = this.entries[i]!.position;
      if (!this.retired.has(p.n)) out.push(p);
    }
    return out;
  }

  /** Accepted positions with from ≤ n < to (within the window). */
  acceptedIn(from: number, to: number): KeyAddressPosition[] {
    const out: KeyAddressPosition[] = [];
    const end = Math.min(to - this.pos, this.o.window, this.entries.length);
    for (let i = Math.max(0, from - this.pos); i < end; i++) {
      const p = this.entries[i]!.position;
      if (!this.retired.has(p.n)) out.push(p);
    }
    return out;
  }

  get key(): Uint8Array {
    return this.entries[0]?.key ?? this.#head;
  }

  wipe(): void {
    for (const e of this.entries) e.key.fill(0);
    this.#head.fill(0);
    this.entries = [];
    this.byAddress.clear();
  }
}

/**
 * A server's ratchet and acceptance window. Holds no passphrase and nothing
 * from which an address before its windows could be recomputed (apart from
 * up to `retiredMemory` recently retired addresses, in memory only).
 *
 * @example
 * ```ts
 * const server = await KeyAddressServer.fromPassphrase({ passphrase: 'correct horse' }, { prefix: '2001:db8:1:2::/64' });
 * server.on('change', ({ added, removed }) => rebind(added, removed));
 * const stop = server.watch();                 // roll epochs on time
 * const r = server.admit(socket.localAddress!); // on each incoming connection
 * if (!r.ok) socket.destroy();
 * ```
 * @public
 */
export class KeyAddressServer extends EventEmitter<KeyAddressServerEvents> {
  readonly #o: ResolvedOptions;
  readonly #frontier: EpochFrontier;
  /** Open epochs by t (some may be in the future and not yet accepted after a clock step back). */
  readonly #windows = new Map<number, EpochWindow>();
  /** Recently retired addresses, oldest first (in memory only). */
  readonly #recent = new Map<string, { t: number; n: number }>();
  /** The epochs accepted at the last sync (what listeners were last told). */
  #active: number[] = [];
  /** Clock times [from, until) over which #active stays what it is (no sync work needed). */
  #activeFrom = 0;
  #activeUntil = -Infinity;
  /** The pending look-ahead refill after an admission (see #scheduleFill). */
  #fillTask: ReturnType<typeof setImmediate> | undefined;
  #wiped = false;

  private constructor(o: ResolvedOptions, frontier: EpochFrontier) {
    super();
    this.#o = o;
    this.#frontier = frontier;
  }

  /**
   * Build a server from a master key (see {@link deriveMasterKey}), starting
   * at n = 0 of every epoch the clock makes acceptable. Does not keep
   * `master`; the caller wipes it.
   */
  static fromMasterKey(master: Uint8Array, options: KeyAddressServerOptions): KeyAddressServer {
    const o = resolveOptions(options);
    const now = o.now();
    const tc = epochOf(now, o.epochMs, o.originMs);
    const first = tc > 0 && now < epochStart(tc, o.epochMs, o.originMs) + o.skewMs ? tc - 1 : tc;
    const s = new KeyAddressServer(o, EpochFrontier.fromMaster(master, first));
    s.#sync(false);
    return s;
  }

  /** Derive the master key (scrypt, yielding to the event loop), build the server, wipe the master key. */
  static async fromPassphrase(secret: KeyAddressSecret, options: KeyAddressServerOptions): Promise<KeyAddressServer> {
    resolveOptions(options); // fail on bad options before the slow KDF
    return withMasterKey(secret, (master) => KeyAddressServer.fromMasterKey(master, options));
  }

  /** As {@link KeyAddressServer.fromPassphrase}, blocking the thread for the KDF. */
  static fromPassphraseSync(secret: KeyAddressSecret, options: KeyAddressServerOptions): KeyAddressServer {
    resolveOptions(options);
    return withMasterKeySync(secret, (master) => KeyAddressServer.fromMasterKey(master, options));
  }

  /**
   * Resume from {@link KeyAddressServer.exportState}'s bytes, then catch up
   * with the clock. `options` must name the same prefix, epochMs and originMs.
   * @throws KeyAddressError `GS_ERR_KEYADDR_STATE` for a damaged or mismatched state.
   */
  static fromState(state: Uint8Array, options: KeyAddressServerOptions): KeyAddressServer {
    const o = resolveOptions(options);
    const st = decodeState(state, 'server', o.fingerprint);
    const s = new KeyAddressServer(o, st.frontier);
    for (const e of st.epochs) s.#windows.set(e.t, new EpochWindow(e.t, e.pos, e.key, e.retired, o));
    s.#sync(false);
    return s;
  }

  /** The look-ahead window length in positions. */
  get window(): number {
    return this.#o.window;
  }

  /** The skew allowance at epoch boundaries, ms. */
  get skewMs(): number {
    return this.#o.skewMs;
  }

  /** The epochs accepted at Unix time `now`, increasing. */
  #activeEpochs(now: number): number[] {
    const { epochMs, originMs, skewMs } = this.#o;
    const tc = epochOf(now, epochMs, originMs);
    const out: number[] = [];
    if (tc > 0 && now < epochStart(tc, epochMs, originMs) + skewMs) out.push(tc - 1);
    out.push(tc);
    if (tc + 1 < EPOCH_COUNT && now >= epochStart(tc + 1, epochMs, originMs) - skewMs) out.push(tc + 1);
    return out;
  }

  #accepted(active: readonly number[]): KeyAddressPosition[] {
    return active.flatMap((t) => this.#windows.get(t)?.accepted() ?? []);
  }

  #remember(positions: readonly KeyAddressPosition[]): void {
    if (this.#o.retiredMemory === 0) return;
    for (const p of positions) {
      this.#recent.delete(p.address);
      this.#recent.set(p.address, { t: p.t, n: p.n });
    }
    // Oldest first out; no iterator at all while within the limit (every admission passes here).
    if (this.#recent.size <= this.#o.retiredMemory) return;
    for (const k of this.#recent.keys()) {
      if (this.#recent.size <= this.#o.retiredMemory) break;
      this.#recent.delete(k);
    }
  }

  /**
   * The span of clock times around `now` over which {@link #activeEpochs}
   * gives the same answer: between consecutive instants of start(t),
   * start(t)+skew, start(t+1)−skew, start(t+1).
   */
  #stableSpan(now: number): [number, number] {
    const { epochMs, originMs, skewMs } = this.#o;
    const start = epochStart(epochOf(now, epochMs, originMs), epochMs, originMs);
    let from = start;
    let until = start + epochMs;
    for (const x of [start + skewMs, start + epochMs - skewMs]) {
      if (x <= now && x > from) from = x;
      if (x > now && x < until) until = x;
    }
    return [from, until];
  }

  /** Open and close epochs for the clock; returns the epochs accepted now. */
  #sync(emit: boolean): number[] {
    if (this.#wiped) throw new KeyAddressError('GS_ERR_KEYADDR_STATE', 'this key-address server was wiped');
    const now = this.#o.now();
    // Within the span of the last sync nothing can open or close: the common case, one comparison.
    if (now >= this.#activeFrom && now < this.#activeUntil) return this.#active;
    const active = this.#activeEpochs(now);
    const before = emit ? this.#accepted(this.#active) : undefined;
    for (const [t, w] of this.#windows) {
      if (t < active[0]!) {
        // Past every accepted epoch: its keys and memory go.
        w.wipe();
        this.#windows.delete(t);
        publish(keyAddressChannels.epoch, () => ({ t, event: 'close' }));
        for (const [a, p] of this.#recent) if (p.t === t) this.#recent.delete(a);
      }
    }
    for (const t of active) {
      if (this.#windows.has(t) || t < this.#frontier.from) continue;
      const e = this.#frontier.open(t);
      const key = openChain(e);
      e.fill(0);
      this.#windows.set(t, new EpochWindow(t, 0, key, [], this.#o));
      publish(keyAddressChannels.epoch, () => ({ t, event: 'open' }));
    }
    this.#active = active;
    [this.#activeFrom, this.#activeUntil] = this.#stableSpan(now);
    if (before !== undefined) this.#emitDiff(before, this.#accepted(active), 'clock');
    return active;
  }

  /**
   * Derive the look-ahead positions admissions consumed once the caller is
   * done with the connection (setImmediate), so the chain steps do not
   * delay it; #decide calls it when REFILL_BATCH are missing. A decision
   * that could need them derives them first ({@link #fillNow}).
   */
  #scheduleFill(): void {
    if (this.#fillTask !== undefined) return;
    this.#fillTask = setImmediate(() => {
      this.#fillTask = undefined;
      if (!this.#wiped) this.#fillNow();
    });
    this.#fillTask.unref?.();
  }

  /** Derive every open epoch's look-ahead in full; true if anything was missing. */
  #fillNow(): boolean {
    if (this.#fillTask !== undefined) {
      clearImmediate(this.#fillTask);
      this.#fillTask = undefined;
    }
    let filled = false;
    for (const w of this.#windows.values()) {
      if (!w.short) continue;
      w.fill();
      filled = true;
    }
    return filled;
  }

  #emitDiff(before: readonly KeyAddressPosition[], after: readonly KeyAddressPosition[], cause: KeyAddressChange['cause']): void {
    const a = new Set(after.map((p) => p.address));
    const b = new Set(before.map((p) => p.address));
    const removed = before.filter((p) => !a.has(p.address));
    const added = after.filter((p) => !b.has(p.address));
    if (added.length > 0 || removed.length > 0) this.emit('change', { added, removed, cause });
  }

  /**
   * Bring the windows up to the clock (open a new epoch at n = 0, close one
   * whose skew allowance has passed), emitting `change` if the acceptable set
   * changed. {@link KeyAddressServer.admit} and {@link KeyAddressServer.acceptable} call it themselves.
   */
  poll(): void {
    this.#sync(true);
  }

  /** Unix ms of the next time the acceptable set changes by the clock alone. */
  nextDeadline(): number {
    const { epochMs, originMs, skewMs } = this.#o;
    const now = this.#o.now();
    const tc = epochOf(now, epochMs, originMs);
    const start = epochStart(tc, epochMs, originMs);
    return Math.min(...[start + skewMs, start + epochMs - skewMs, start + epochMs].filter((x) => x > now));
  }

  /**
   * Poll at every {@link KeyAddressServer.nextDeadline} with a timer (unref'd, so it does not
   * keep the process alive). Returns a function that stops it.
   */
  watch(): () => void {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const arm = () => {
      if (stopped) return;
      const delay = Math.min(Math.max(0, this.nextDeadline() - this.#o.now()), 2 ** 31 - 1);
      timer = setTimeout(() => {
        try {
          this.poll();
        } catch (err) {
          this.emit('error', err as Error);
        }
        arm();
      }, delay);
      timer.unref?.();
    };
    arm();
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    };
  }

  /**
   * Every address accepted right now, by increasing (t, n): the window of
   * each accepted epoch, minus addresses retired out of order. For
   * bind-per-address listeners.
   */
  acceptable(): KeyAddressPosition[] {
    return this.#accepted(this.#sync(true));
  }

  /**
   * Decide on an incoming connection's local address (text or 16 bytes).
   * Accepted when it is in the window of an accepted epoch; then it and every
   * earlier position of its epoch are retired and the window moves past it
   * (emitting `change`). Retired whether or not the session then succeeds:
   * never admitted twice. An address of an accepted epoch beyond the window
   * is refused and retired too.
   */
  admit(address: string | Uint8Array): AdmitResult {
    const r = this.#decide(address);
    // Checked here rather than through publish(): no closure per admission when nobody subscribes.
    const channel = keyAddressChannels.admit;
    if (channel.hasSubscribers) channel.publish(r.ok ? { ok: true, t: r.position.t, n: r.position.n } : { ...r });
    return r;
  }

  /** The open window of an accepted epoch that derived `text`, and its position there. */
  #find(text: string, active: readonly number[]): { w: EpochWindow; n: number } | undefined {
    for (const t of active) {
      const w = this.#windows.get(t);
      const n = w?.byAddress.get(text);
      if (w !== undefined && n !== undefined) return { w, n };
    }
    return undefined;
  }

  #decide(address: string | Uint8Array): AdmitResult {
    if (typeof address !== 'string' && !(address instanceof Uint8Array && address.length === 16)) {
      throw new TypeError('admit() takes an IPv6 address as text or 16 bytes');
    }
    const active = this.#sync(true);
    // Canonical text (what Node reports as a socket's local address) is
    // looked up as given; anything else is parsed and printed canonically.
    let text: string | undefined = typeof address === 'string' ? address : formatIpv6(address);
    let hit = this.#find(text, active);
    if (hit === undefined && typeof address === 'string') {
      const bytes = parseIpv6(address);
      text = bytes === undefined ? undefined : formatIpv6(bytes);
      if (text !== undefined && text !== address) hit = this.#find(text, active);
    }
    if (text === undefined) return { ok: false, reason: 'unknown' };
    // The look-ahead may be short after an admission (its refill is
    // deferred): an address not found may be one of the positions not yet
    // derived, so derive them before deciding.
    if (hit === undefined && this.#fillNow()) hit = this.#find(text, active);
    if (hit !== undefined) {
      const { w, n } = hit;
      const t = w.t;
      if (w.retired.has(n)) return { ok: false, reason: 'retired', t, n };
      if (n >= w.pos + this.#o.window) {
        w.retired.add(n);
        return { ok: false, reason: 'outside-window', t, n };
      }
      const oldEnd = w.pos + this.#o.window;
      // Positions leaving the accepted set: those moved past, unless retired out of order.
      const removed = this.listenerCount('change') > 0 ? w.acceptedIn(w.pos, n + 1) : undefined;
      const gone = w.moveTo(n + 1);
      this.#remember(gone);
      if (removed !== undefined) {
        // Positions entering it: the window's new end, unless retired out of order.
        const added = w.acceptedIn(oldEnd, w.pos + this.#o.window);
        if (added.length > 0 || removed.length > 0) this.emit('change', { added, removed, cause: 'admit' });
      }
      // The refill runs once REFILL_BATCH positions are missing (or the
      // whole look-ahead, if shorter): chain steps in a row cost less each.
      const short = w.short;
      if (short >= Math.min(REFILL_BATCH, this.#o.recognizeAhead) && short > 0) this.#scheduleFill();
      return { ok: true, position: gone[gone.length - 1]! };
    }
    const seen = this.#recent.get(text);
    if (seen !== undefined) return { ok: false, reason: 'retired', t: seen.t, n: seen.n };
    return { ok: false, reason: 'unknown' };
  }

  /** Each open epoch's next acceptable position, increasing t (for diagnostics and tests). */
  positions(): { readonly t: number; readonly pos: number }[] {
    return [...this.#windows.values()].sort((a, b) => a.t - b.t).map((w) => ({ t: w.t, pos: w.pos }));
  }

  /**
   * The ratchet state as bytes (format in state.ts and docs/keyaddress.md):
   * the frontier, and for each open epoch its position, chain key and
   * out-of-order retired positions. No addresses, no past keys.
   */
  exportState(): Uint8Array {
    if (this.#wiped) throw new KeyAddressError('GS_ERR_KEYADDR_STATE', 'this key-address server was wiped');
    const epochs = [...this.#windows.values()]
      .sort((a, b) => a.t - b.t)
      .map((w) => ({ t: w.t, pos: w.pos, key: w.key, retired: [...w.retired].sort((a, b) => a - b) }));
    return encodeState('server', this.#o.fingerprint, this.#frontier.from, this.#frontier.nodes(), epochs);
  }

  /** Fill every key with zeros and forget retired addresses; the server accepts nothing afterwards. */
  wipe(): void {
    if (this.#fillTask !== undefined) clearImmediate(this.#fillTask);
    this.#fillTask = undefined;
    this.#frontier.wipe();
    for (const w of this.#windows.values()) w.wipe();
    this.#windows.clear();
    this.#recent.clear();
    this.#wiped = true;
  }
}
