/**
 * The crypto backend contract: every primitive the secure framing layer uses,
 * behind one interface with two interchangeable implementations — pure
 * TypeScript (@noble/*), which runs anywhere, and Node's native `crypto`,
 * which is about ten times faster. Both must give identical bytes; a test
 * proves it.
 *
 * Buffer contract: inputs are only read; outputs are fresh arrays the caller
 * owns.
 */

/**
 * ChaCha20-Poly1305 (RFC 8439) keyed once.
 * @public
 */
export interface Aead {
  /** Encrypt; returns ciphertext followed by the 16-byte tag. `nonce` is 12 bytes. */
  seal(nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /**
   * Encrypt into `out` at `offset` (ciphertext, then the tag), so records can
   * be framed and batched without another copy. Returns the bytes written,
   * `plaintext.length + 16`; `out` must have room for them.
   */
  sealInto(nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): number;
  /** Decrypt and authenticate; throws `CryptoError` `GS_ERR_DECRYPT_FAILED` on a bad tag. */
  open(nonce: Uint8Array, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array;
  /**
   * Overwrite this instance's copy of the key, where it holds one in
   * JavaScript memory; the instance must not be used afterwards. Optional:
   * the native backend's key lives in an OpenSSL key object it cannot wipe.
   */
  wipe?(): void;
}

/**
 * The primitives of `Noise_*_25519_ChaChaPoly_SHA256` plus Ed25519 signatures.
 * @public
 */
export interface CryptoBackend {
  /** `noble` (pure TypeScript) or `native` (node:crypto). */
  readonly name: 'noble' | 'native';
  /** A ChaCha20-Poly1305 instance for a 32-byte key. */
  aead(key: Uint8Array): Aead;
  /** X25519 (RFC 7748). */
  readonly x25519: {
    /** Public key of a 32-byte private key. */
    publicKey(privateKey: Uint8Array): Uint8Array;
    /** Shared secret; throws `CryptoError` `GS_ERR_LOW_ORDER_KEY` for a low-order peer key (all-zero output). */
    sharedSecret(privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array;
  };
  /** Ed25519 (RFC 8032), keys given as 32-byte seeds. */
  readonly ed25519: {
    /** Public key of a 32-byte seed. */
    publicKey(seed: Uint8Array): Uint8Array;
    /** 64-byte signature of `message`. */
    sign(message: Uint8Array, seed: Uint8Array): Uint8Array;
    /** True when `signature` is valid; never throws for malformed input. */
    verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  };
  /** SHA-256 of the concatenation of `parts`. */
  sha256(...parts: Uint8Array[]): Uint8Array;
  /**
   * Optional: true when the first `length` bytes (at most 32) of SHA-256 of
   * `data` equal `expected[at, at + length)`, compared in constant time in
   * those bytes; false when the range is outside `expected`. A backend
   * implements it when it can do so more cheaply than {@link CryptoBackend.sha256}
   * and a comparison (the native one makes no digest array); callers fall
   * back to those where it is absent.
   */
  sha256PrefixEquals?(data: Uint8Array, expected: Uint8Array, at: number, length: number): boolean;
  /** HMAC-SHA-256 of the concatenation of `parts` under `key`. */
  hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array;
  /** Cryptographically secure random bytes. */
  randomBytes(length: number): Uint8Array;
}
