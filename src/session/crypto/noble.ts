/**
 * The pure-TypeScript backend, over @noble/ciphers, @noble/curves and
 * @noble/hashes. No primitive is written here; this file only adapts shapes
 * and maps failures to typed errors.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { CryptoError } from '../../errors/index.js';
import type { Aead, CryptoBackend } from './backend.js';
import { checkSharedSecret } from './checks.js';

const TAG_LEN = 16;

/**
 * The pure-TypeScript crypto backend.
 * @public
 */
export const nobleBackend: CryptoBackend = Object.freeze({
  name: 'noble' as const,
  aead(key: Uint8Array): Aead {
    const k = key.slice();
    return {
      seal: (nonce, ad, plaintext) => chacha20poly1305(k, nonce, ad).encrypt(plaintext),
      sealInto(nonce, ad, plaintext, out, offset) {
        const n = plaintext.length + TAG_LEN;
        chacha20poly1305(k, nonce, ad).encrypt(plaintext, out.subarray(offset, offset + n));
        return n;
      },
      open(nonce, ad, ciphertext) {
        try {
          return chacha20poly1305(k, nonce, ad).decrypt(ciphertext);
        } catch (cause) {
          throw new CryptoError('GS_ERR_DECRYPT_FAILED', 'message authentication failed', { cause });
        }
      },
      wipe: () => void k.fill(0),
    };
  },
  x25519: {
    publicKey: (privateKey: Uint8Array) => x25519.getPublicKey(privateKey),
    sharedSecret(privateKey: Uint8Array, peerPublicKey: Uint8Array) {
      let secret: Uint8Array;
      try {
        secret = x25519.getSharedSecret(privateKey, peerPublicKey);
      } catch (cause) {
        // noble refuses low-order points itself (all-zero output).
        throw new CryptoError('GS_ERR_LOW_ORDER_KEY', 'peer X25519 key is invalid or of low order', { cause });
      }
      return checkSharedSecret(secret);
    },
  },
  ed25519: {
    publicKey: (seed: Uint8Array) => ed25519.getPublicKey(seed),
    sign: (message: Uint8Array, seed: Uint8Array) => ed25519.sign(message, seed),
    verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) {
      try {
        return ed25519.verify(signature, message, publicKey);
      } catch {
        return false;
      }
    },
  },
  sha256(...parts: Uint8Array[]) {
    const h = sha256.create();
    for (const p of parts) h.update(p);
    return h.digest();
  },
  hmacSha256(key: Uint8Array, ...parts: Uint8Array[]) {
    const h = hmac.create(sha256, key);
    for (const p of parts) h.update(p);
    return h.digest();
  },
  randomBytes: (length: number) => randomBytes(length),
});
