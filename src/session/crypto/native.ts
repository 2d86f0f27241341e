/**
 * The native backend, over Node's own `crypto` (OpenSSL): the same primitives
 * as the noble backend, byte for byte, about ten times faster. It is loaded
 * through `process.getBuiltinModule` so that importing gatesock never pulls in
 * `node:crypto` where it does not exist.
 *
 * Raw 32-byte keys become KeyObjects through JWK (RFC 8037 "OKP"), which Node
 * imports straight into OpenSSL's raw-key constructors; the PKCS#8 DER route
 * goes through OpenSSL 3's generic decoder and measured ten times slower
 * (about 365 µs against 28 µs per private key here). Private keys that are
 * used again (a channel's static key) keep their KeyObject in a small
 * content-checked cache.
 */
import type * as NodeCrypto from 'node:crypto';
import { CryptoError } from '../../errors/index.js';
import type { Aead, CryptoBackend } from './backend.js';
import { checkSharedSecret } from './checks.js';

const TAG_LEN = 16;
// Node ignores `x` when it imports a private JWK (it derives the public key
// from `d`), but insists the member exists.
const PLACEHOLDER_X = 'A'.repeat(43);

const b64u = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

function asBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function loadNodeCrypto(): typeof NodeCrypto | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const mod = proc?.getBuiltinModule?.('node:crypto') as typeof NodeCrypto | undefined;
  if (!mod) return undefined;
  // OpenSSL builds without ChaCha20-Poly1305 or X25519 exist (FIPS); probe both.
  try {
    if (!mod.getCiphers().includes('chacha20-poly1305')) return undefined;
    mod.generateKeyPairSync('x25519');
    return mod;
  } catch {
    return undefined;
  }
}

/**
 * ChaCha20-Poly1305 through OpenSSL, keyed once. A class rather than
 * closures: a gateway holds two per idle channel, thousands of channels.
 */
class NativeAead implements Aead {
  constructor(
    private readonly c: typeof NodeCrypto,
    private readonly k: NodeCrypto.KeyObject,
  ) {}

  seal(nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(plaintext.length + TAG_LEN);
    this.sealInto(nonce, ad, plaintext, out, 0);
    return out;
  }

  sealInto(nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): number {
    const cipher = this.c.createCipheriv('chacha20-poly1305', this.k, nonce, { authTagLength: TAG_LEN });
    if (ad.length > 0) cipher.setAAD(ad, { plaintextLength: plaintext.length });
    out.set(cipher.update(plaintext), offset);
    cipher.final();
    out.set(cipher.getAuthTag(), offset + plaintext.length);
    return plaintext.length + TAG_LEN;
  }

  open(nonce: Uint8Array, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (ciphertext.length < TAG_LEN) throw new CryptoError('GS_ERR_DECRYPT_FAILED', 'ciphertext shorter than its tag');
    const bodyLen = ciphertext.length - TAG_LEN;
    const decipher = this.c.createDecipheriv('chacha20-poly1305', this.k, nonce, { authTagLength: TAG_LEN });
    decipher.setAuthTag(ciphertext.subarray(bodyLen));
    if (ad.length > 0) decipher.setAAD(ad, { plaintextLength: bodyLen });
    const body = decipher.update(ciphertext.subarray(0, bodyLen));
    try {
      decipher.final();
    } catch (cause) {
      throw new CryptoError('GS_ERR_DECRYPT_FAILED', 'message authentication failed', { cause });
    }
    return asBytes(body);
  }
}

function makeNativeBackend(c: typeof NodeCrypto): CryptoBackend {
  type Crv = 'X25519' | 'Ed25519';
  const privateCache = new WeakMap<Uint8Array, { copy: Uint8Array; key: NodeCrypto.KeyObject; crv: Crv }>();
  const privateKey_ = (crv: Crv, k: Uint8Array): NodeCrypto.KeyObject => {
    const hit = privateCache.get(k);
    if (hit && hit.crv === crv && hit.copy.length === k.length && c.timingSafeEqual(hit.copy, k)) return hit.key;
    if (k.length !== 32) throw new CryptoError('GS_ERR_BAD_KEY', `${crv} private key must be 32 bytes, not ${k.length}`);
    const key = c.createPrivateKey({ key: { kty: 'OKP', crv, d: b64u(k), x: PLACEHOLDER_X }, format: 'jwk' });
    privateCache.set(k, { copy: k.slice(), key, crv });
    return key;
  };
  // `crypto.hash` (Node ≥ 20.12, 21.7): a one-shot digest without a Hash object.
  const oneShot = (c as { hash?: (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer }).hash;
  const oneShotText = oneShot as unknown as ((algorithm: string, data: Uint8Array, encoding: 'latin1') => string) | undefined;
  // A peer's ephemeral key meets two DH tokens in one handshake; keep its
  // KeyObject for the second (same content check as private keys).
  const publicCache = new WeakMap<Uint8Array, { copy: Uint8Array; key: NodeCrypto.KeyObject; crv: Crv }>();
  const publicKey_ = (crv: Crv, k: Uint8Array): NodeCrypto.KeyObject => {
    const hit = publicCache.get(k);
    if (hit && hit.crv === crv && hit.copy.length === k.length && c.timingSafeEqual(hit.copy, k)) return hit.key;
    const key = c.createPublicKey({ key: { kty: 'OKP', crv, x: b64u(k) }, format: 'jwk' });
    publicCache.set(k, { copy: k.slice(), key, crv });
    return key;
  };
  const rawPublic = (key: NodeCrypto.KeyObject): Uint8Array => asBytes(Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url'));

  return Object.freeze({
    name: 'native' as const,
    aead: (key: Uint8Array): Aead => new NativeAead(c, c.createSecretKey(Buffer.from(key))),
    x25519: {
      publicKey: (privateKey: Uint8Array) => rawPublic(c.createPublicKey(privateKey_('X25519', privateKey))),
      sharedSecret(privateKey: Uint8Array, peerPublicKey: Uint8Array) {
        let secret: Uint8Array;
        try {
          secret = asBytes(c.diffieHellman({ privateKey: privateKey_('X25519', privateKey), publicKey: publicKey_('X25519', peerPublicKey) }));
        } catch (cause) {
          // OpenSSL refuses a low-order point (all-zero output) itself.
          throw new CryptoError('GS_ERR_LOW_ORDER_KEY', 'peer X25519 key is invalid or of low order', { cause });
        }
        return checkSharedSecret(secret);
      },
    },
    ed25519: {
      publicKey: (seed: Uint8Array) => rawPublic(c.createPublicKey(privateKey_('Ed25519', seed))),
      sign: (message: Uint8Array, seed: Uint8Array) => asBytes(c.sign(null, message, privateKey_('Ed25519', seed))),
      verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) {
        if (signature.length !== 64 || publicKey.length !== 32) return false;
        try {
          // Not through the key cache: a verified peer's key array lives as long as its
          // session, and a cached KeyObject (an OpenSSL key) would live with it.
          const key = c.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(publicKey) }, format: 'jwk' });
          return c.verify(null, message, key, signature);
        } catch {
          return false;
        }
      },
    },
    sha256(...parts: Uint8Array[]) {
      // One part: Node's one-shot digest makes no Hash object and costs about
      // half as much (every multicast symbol's hash goes this way).
      if (parts.length === 1 && oneShot !== undefined) return asBytes(oneShot('sha256', parts[0]!, 'buffer'));
      const h = c.createHash('sha256');
      for (const p of parts) h.update(p);
      return asBytes(h.digest());
    },
    // The digest as a one-byte string: no Buffer (an ArrayBuffer to allocate and sweep) per call.
    ...(oneShotText !== undefined && {
      sha256PrefixEquals(data: Uint8Array, expected: Uint8Array, at: number, length: number): boolean {
        if (!(length >= 0 && length <= 32 && at >= 0 && at + length <= expected.length)) return false;
        const digest = oneShotText('sha256', data, 'latin1');
        let diff = 0;
        for (let i = 0; i < length; i++) diff |= digest.charCodeAt(i) ^ expected[at + i]!;
        return diff === 0;
      },
    }),
    hmacSha256(key: Uint8Array, ...parts: Uint8Array[]) {
      const h = c.createHmac('sha256', key);
      for (const p of parts) h.update(p);
      return asBytes(h.digest());
    },
    randomBytes: (length: number) => asBytes(c.randomBytes(length)),
  });
}

let cached: CryptoBackend | null | undefined;

/**
 * The native backend, or `undefined` where `node:crypto` lacks
 * ChaCha20-Poly1305 or X25519.
 * @public
 */
export function nativeBackend(): CryptoBackend | undefined {
  if (cached === undefined) {
    const c = loadNodeCrypto();
    cached = c ? makeNativeBackend(c) : null;
  }
  return cached ?? undefined;
}
