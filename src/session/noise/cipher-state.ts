/**
 * Noise CipherState (spec §5.1) for ChaChaPoly: a key and a 64-bit nonce.
 *
 * The nonce is kept as two 32-bit halves so it counts the full 2^64 range
 * without BigInt on the hot path. Per §5.1 the value 2^64−1 is reserved (it
 * is what Rekey() uses), so encrypting or decrypting with it throws
 * `GS_ERR_NONCE_EXHAUSTED` instead of wrapping; the secure channel rekeys
 * long before that.
 */
import { CryptoError } from '../../errors/index.js';
import type { Aead, CryptoBackend } from '../crypto/backend.js';

const EMPTY = new Uint8Array(0);
const MAX = 0xffffffff;
// ChaChaPoly nonce (spec §12.3): 32 bits of zeros, then the 64-bit counter
// little-endian. One scratch for every CipherState: each call writes it and
// the AEAD reads it before returning, and a gateway holds thousands of idle
// channels (two CipherStates each) that need no nonce of their own.
const NONCE = new Uint8Array(12);
const NONCE_VIEW = new DataView(NONCE.buffer);

/**
 * The first nonce of a run taken by {@link CipherState.reserve}, as the low
 * and high 32 bits of the 64-bit counter.
 */
export interface NonceRun {
  readonly lo: number;
  readonly hi: number;
}

/** A Noise CipherState. */
export class CipherState {
  // Only the AEAD holds the key (a copy kept here would be one more copy in
  // memory, and two more arrays per idle channel); it wipes its own. The one
  // exception is `key` below.
  private aead: Aead | undefined;
  /**
   * The key itself, kept only for the noble backend, so that
   * {@link CipherState.reserve} can hand it to threads that seal in
   * parallel. noble's AEAD holds its key in JavaScript memory anyway, so
   * this adds a copy of the same kind, wiped at the same moments; the native
   * backend (whose key lives in OpenSSL, and which gateways run by the
   * thousand) keeps none.
   */
  private key: Uint8Array | undefined;
  private lo = 0;
  private hi = 0;

  constructor(private readonly backend: CryptoBackend) {}

  /** InitializeKey(key): set k and reset n to 0. */
  initializeKey(key: Uint8Array | undefined): void {
    this.aead?.wipe?.();
    this.key?.fill(0);
    this.aead = key ? this.backend.aead(key) : undefined;
    this.key = key && this.backend.name === 'noble' ? key.slice() : undefined;
    this.lo = 0;
    this.hi = 0;
  }

  /**
   * Take `count` consecutive nonces under the current key without
   * encrypting: write the key into `keyOut` (32 bytes) and return the first
   * nonce; the CipherState moves on to the nonce after the run, exactly as
   * `count` calls of EncryptWithAd would. For sealing transport messages on
   * other threads (secure/parallel-seal.ts): message `i` of the run must be
   * sealed with nonce `first + i`. The caller does not cross a rekey in one
   * run (it calls {@link CipherState.rekey} between runs, as between
   * messages). Only for a keyed noble CipherState; throws
   * `GS_ERR_NONCE_EXHAUSTED` when the run would reach the reserved 2^64−1,
   * leaving the nonce unchanged.
   */
  reserve(count: number, keyOut: Uint8Array): NonceRun {
    if (!this.key) throw new CryptoError('GS_ERR_BAD_KEY', 'reserve needs a CipherState keyed with the noble backend');
    if (!Number.isInteger(count) || count < 1 || count > 0x7fffffff) throw new RangeError(`reserve: count must be an integer in [1, 2^31), got ${count}`);
    // The last nonce of the run, first + count − 1, must stay below 2^64−1.
    if (this.hi === MAX && this.lo + count > MAX) {
      throw new CryptoError('GS_ERR_NONCE_EXHAUSTED', 'Noise nonce exhausted (2^64-1 is reserved); the channel must rekey or close');
    }
    keyOut.set(this.key);
    const run = { lo: this.lo, hi: this.hi };
    const lo = this.lo + count;
    if (lo > MAX) {
      this.lo = lo - 2 ** 32;
      this.hi++;
    } else {
      this.lo = lo;
    }
    return run;
  }

  /** HasKey(). */
  hasKey(): boolean {
    return this.aead !== undefined;
  }

  /** The current nonce, for tests and rekey policy. */
  get nonce(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** SetNonce(n), for tests that start near exhaustion. */
  setNonce(n: bigint): void {
    this.lo = Number(n & 0xffffffffn);
    this.hi = Number((n >> 32n) & 0xffffffffn);
  }

  /** EncryptWithAd(ad, plaintext): passes plaintext through while there is no key. */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (!this.aead) return plaintext;
    return this.aead.seal(this.takeNonce(), ad, plaintext);
  }

  /**
   * EncryptWithAd into `out` at `offset`; returns the bytes written. Only for
   * a keyed CipherState (transport messages).
   */
  encryptInto(ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): number {
    if (!this.aead) throw new CryptoError('GS_ERR_BAD_KEY', 'encryptInto needs a keyed CipherState');
    return this.aead.sealInto(this.takeNonce(), ad, plaintext, out, offset);
  }

  /** DecryptWithAd(ad, ciphertext): throws `GS_ERR_DECRYPT_FAILED` on a bad tag; n advances only on success. */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (!this.aead) return ciphertext;
    const out = this.aead.open(this.writeNonce(), ad, ciphertext);
    this.advance();
    return out;
  }

  /** Rekey() (spec §4.2): k = first 32 bytes of ENCRYPT(k, 2^64−1, empty, zeros). */
  rekey(): void {
    if (!this.aead) return;
    const nonce = new Uint8Array(12);
    nonce.fill(0xff, 4);
    const next = this.aead.seal(nonce, EMPTY, new Uint8Array(32)).subarray(0, 32);
    const lo = this.lo;
    const hi = this.hi;
    this.initializeKey(next);
    // Rekey keeps the nonce counter (spec §11.3).
    this.lo = lo;
    this.hi = hi;
    next.fill(0);
  }

  /** Wipe and forget the key. */
  clear(): void {
    this.initializeKey(undefined);
  }

  private writeNonce(): Uint8Array {
    if (this.lo === MAX && this.hi === MAX) {
      throw new CryptoError('GS_ERR_NONCE_EXHAUSTED', 'Noise nonce exhausted (2^64-1 is reserved); the channel must rekey or close');
    }
    NONCE_VIEW.setUint32(4, this.lo, true);
    NONCE_VIEW.setUint32(8, this.hi, true);
    return NONCE;
  }

  private advance(): void {
    if (this.lo === MAX) {
      this.lo = 0;
      this.hi++;
    } else {
      this.lo++;
    }
  }

  private takeNonce(): Uint8Array {
    const nonce = this.writeNonce();
    this.advance();
    return nonce;
  }
}
