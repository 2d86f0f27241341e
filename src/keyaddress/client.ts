/**
 * The client end of key-address synchronisation (seed 002 §4.2): a cursor
 * over the sequence that hands out the next address to try and moves past it
 * at once, so no address is ever tried twice (a failed attempt simply moves
 * on), and that jumps to n = 0 of a new epoch when its own clock enters one.
 */
import { advanceChain, withMasterKey, withMasterKeySync, EpochFrontier, openChain, type KeyAddressPosition, type KeyAddressSecret } from './generator.js';
import { epochOf, resolveOptions, type KeyAddressOptions, type ResolvedOptions } from './options.js';
import { decodeState, encodeState } from './state.js';
import { KeyAddressError } from '../errors/index.js';
import { keyAddressChannels, publish } from './diagnostics.js';

/**
 * A client's ratchet: the frontier of future epochs and the chain key of the
 * next position of its current epoch. Holds no passphrase and nothing from
 * which a position it has already handed out could be recomputed.
 *
 * @example
 * ```ts
 * const client = await KeyAddressClient.fromPassphrase({ passphrase: 'correct horse' }, { prefix: '2001:db8:1:2::/64' });
 * const { address } = client.next();   // connect to [address]:port; on failure call next() again
 * saveSomewhere(client.exportState()); // resume later with KeyAddressClient.fromState(bytes, options)
 * ```
 * @public
 */
export class KeyAddressClient {
  readonly #o: ResolvedOptions;
  readonly #frontier: EpochFrontier;
  #t: number;
  #n: number;
  #key: Uint8Array;

  private constructor(o: ResolvedOptions, frontier: EpochFrontier, t: number, n: number, key: Uint8Array) {
    this.#o = o;
    this.#frontier = frontier;
    this.#t = t;
    this.#n = n;
    this.#key = key;
  }

  /**
   * Build a client from a master key (see {@link deriveMasterKey}), starting
   * at n = 0 of the clock's epoch. Does not keep `master`; the caller wipes it.
   */
  static fromMasterKey(master: Uint8Array, options: KeyAddressOptions): KeyAddressClient {
    const o = resolveOptions(options);
    const t = epochOf(o.now(), o.epochMs, o.originMs);
    const frontier = EpochFrontier.fromMaster(master, t);
    const e = frontier.open(t);
    const key = openChain(e);
    e.fill(0);
    return new KeyAddressClient(o, frontier, t, 0, key);
  }

  /** Derive the master key (scrypt, off the event loop in slices), build the client, wipe the master key. */
  static async fromPassphrase(secret: KeyAddressSecret, options: KeyAddressOptions): Promise<KeyAddressClient> {
    resolveOptions(options); // fail on bad options before the slow KDF
    return withMasterKey(secret, (master) => KeyAddressClient.fromMasterKey(master, options));
  }

  /** As {@link KeyAddressClient.fromPassphrase}, blocking the thread for the KDF. */
  static fromPassphraseSync(secret: KeyAddressSecret, options: KeyAddressOptions): KeyAddressClient {
    resolveOptions(options);
    return withMasterKeySync(secret, (master) => KeyAddressClient.fromMasterKey(master, options));
  }

  /**
   * Resume from {@link KeyAddressClient.exportState}'s bytes. `options` must
   * name the same prefix, epochMs and originMs.
   * @throws KeyAddressError `GS_ERR_KEYADDR_STATE` for a damaged or mismatched state.
   */
  static fromState(state: Uint8Array, options: KeyAddressOptions): KeyAddressClient {
    const o = resolveOptions(options);
    const s = decodeState(state, 'client', o.fingerprint);
    const e = s.epochs[0]!;
    return new KeyAddressClient(o, s.frontier, e.t, e.pos, e.key);
  }

  /** The position the next call to {@link KeyAddressClient.next} hands out, before any epoch change the clock may bring. */
  get position(): { readonly t: number; readonly n: number } {
    return { t: this.#t, n: this.#n };
  }

  /**
   * The address to try now. Moves past it at once: call again after a
   * failed attempt; after a session (successful or not) nothing more is
   * needed. Enters the clock's epoch at n = 0 if the clock has moved into a
   * later one. If the clock has gone back to an earlier epoch, stays in the
   * current one (the ratchet cannot go back); the server still accepts it
   * while its own clock is within its skew allowance.
   * @throws KeyAddressError `GS_ERR_KEYADDR_STATE` after {@link KeyAddressClient.wipe}, or past the last epoch.
   */
  next(): KeyAddressPosition {
    if (this.#key.length === 0) throw new KeyAddressError('GS_ERR_KEYADDR_STATE', 'this key-address client was wiped');
    const now = epochOf(this.#o.now(), this.#o.epochMs, this.#o.originMs);
    if (now > this.#t) {
      const e = this.#frontier.open(now);
      this.#key.fill(0);
      this.#key = openChain(e);
      e.fill(0);
      this.#t = now;
      this.#n = 0;
    }
    if (this.#n >= 0xffff_ffff) throw new KeyAddressError('GS_ERR_KEYADDR_STATE', `epoch ${this.#t} has no positions left`);
    const { position: pos, next } = advanceChain(this.#key, this.#o.prefix.bytes, this.#t, this.#n, this.#o.slots);
    this.#key.fill(0);
    this.#key = next;
    this.#n++;
    publish(keyAddressChannels.next, () => ({ t: pos.t, n: pos.n }));
    return pos;
  }

  /**
   * The ratchet state as bytes (format in state.ts and docs/keyaddress.md):
   * the frontier and the chain key of {@link KeyAddressClient.position}. Store it where only
   * this client can read it: it computes every future address.
   */
  exportState(): Uint8Array {
    if (this.#key.length === 0) throw new KeyAddressError('GS_ERR_KEYADDR_STATE', 'this key-address client was wiped');
    return encodeState('client', this.#o.fingerprint, this.#frontier.from, this.#frontier.nodes(), [{ t: this.#t, pos: this.#n, key: this.#key, retired: [] }]);
  }

  /** Fill every key with zeros; the client hands out nothing afterwards. */
  wipe(): void {
    this.#frontier.wipe();
    this.#key.fill(0);
    this.#key = new Uint8Array(0);
  }
}
