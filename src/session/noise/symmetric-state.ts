/**
 * Noise SymmetricState (spec §5.2) with SHA-256 and HKDF as spec §4.3
 * defines it over HMAC-SHA-256 (HASHLEN = 32).
 */
import type { CryptoBackend } from '../crypto/backend.js';
import { CipherState } from './cipher-state.js';

const HASHLEN = 32;
const EMPTY = new Uint8Array(0);
const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);
const THREE = Uint8Array.of(3);

/** HKDF(chaining_key, input_key_material, num_outputs) — spec §4.3. */
export function hkdf(backend: CryptoBackend, ck: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const tempKey = backend.hmacSha256(ck, ikm);
  const o1 = backend.hmacSha256(tempKey, ONE);
  const o2 = backend.hmacSha256(tempKey, o1, TWO);
  const out = [o1, o2];
  if (outputs === 3) out.push(backend.hmacSha256(tempKey, o2, THREE));
  tempKey.fill(0);
  return out;
}

/** A Noise SymmetricState. */
export class SymmetricState {
  readonly cipher: CipherState;
  private ck: Uint8Array;
  private h: Uint8Array;

  /** InitializeSymmetric(protocol_name). */
  constructor(
    private readonly backend: CryptoBackend,
    protocolName: string,
  ) {
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= HASHLEN) {
      this.h = new Uint8Array(HASHLEN);
      this.h.set(name);
    } else {
      this.h = backend.sha256(name);
    }
    this.ck = this.h.slice();
    this.cipher = new CipherState(backend);
  }

  /** The handshake hash h (a copy). */
  get handshakeHash(): Uint8Array {
    return this.h.slice();
  }

  /** MixKey(input_key_material). */
  mixKey(ikm: Uint8Array): void {
    const [ck, tempK] = hkdf(this.backend, this.ck, ikm, 2) as [Uint8Array, Uint8Array];
    this.ck.fill(0);
    this.ck = ck;
    this.cipher.initializeKey(tempK);
    tempK.fill(0);
  }

  /** MixHash(data). */
  mixHash(data: Uint8Array): void {
    this.h = this.backend.sha256(this.h, data);
  }

  /** MixKeyAndHash(input_key_material), used by `psk` tokens. */
  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, tempH, tempK] = hkdf(this.backend, this.ck, ikm, 3) as [Uint8Array, Uint8Array, Uint8Array];
    this.ck.fill(0);
    this.ck = ck;
    this.mixHash(tempH);
    this.cipher.initializeKey(tempK);
    tempK.fill(0);
  }

  /** EncryptAndHash(plaintext). */
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ct = this.cipher.encryptWithAd(this.h, plaintext);
    this.mixHash(ct);
    return ct;
  }

  /** DecryptAndHash(ciphertext). */
  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const pt = this.cipher.decryptWithAd(this.h, ciphertext);
    this.mixHash(ciphertext);
    return pt;
  }

  /**
   * Split(): the two transport CipherStates (initiator→responder first).
   * Afterwards the chaining key and the handshake cipher are wiped; h stays
   * readable for channel binding.
   */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.backend, this.ck, EMPTY, 2) as [Uint8Array, Uint8Array];
    const c1 = new CipherState(this.backend);
    const c2 = new CipherState(this.backend);
    c1.initializeKey(k1);
    c2.initializeKey(k2);
    k1.fill(0);
    k2.fill(0);
    this.ck.fill(0);
    this.cipher.clear();
    return [c1, c2];
  }

  /** True once split() has wiped the chaining key (for tests of wiping). */
  get wiped(): boolean {
    return this.ck.every((b) => b === 0) && !this.cipher.hasKey();
  }
}
