/**
 * Ed25519 identity keys: the 32-byte seed (RFC 8032 §5.1.5 "private key")
 * and its public key, with PKCS#8 (RFC 5208 / RFC 8410 §7) and PEM encodings
 * that OpenSSL reads (`openssl pkey -in key.pem`).
 */
import * as asn1js from 'asn1js';
import { CryptoError } from '../../errors/index.js';
import { getCryptoBackend, type CryptoBackend, type CryptoBackendName } from '../crypto/index.js';
import { bytesEqual, decodeOne, MAX_DER_LEN, toHex } from './der.js';
import { OID_ED25519 } from './oids.js';
import { decodePemBlocks, encodePem } from './pem.js';

const SEED_LEN = 32;
/**
 * PKCS#8 v1 of an Ed25519 key is this fixed prefix and the seed (RFC 8410 §7,
 * the example in §10.3): SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 },
 * OCTET STRING { OCTET STRING (32) } }.
 */
const PKCS8_ED25519_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const PEM_LABEL = 'PRIVATE KEY';

/** Options naming the crypto backend an operation uses. @public */
export interface CryptoOption {
  /** Crypto backend: `auto` (default; native when present), `native` or `noble`. */
  crypto?: CryptoBackendName | CryptoBackend;
}

const badKey = (why: string, cause?: unknown) =>
  new CryptoError('GS_ERR_BAD_KEY', `invalid Ed25519 private key: ${why}`, cause === undefined ? undefined : { cause });

/**
 * An Ed25519 identity key. The seed stays inside: `toString()`, `toJSON()`
 * and `util.inspect` show only the public key, and `exportSeed()` is the one
 * named door to the secret. (JavaScript cannot wipe it; it lives until the
 * object is collected.)
 * @public
 */
export class IdentityKey {
  /** Always `ed25519`. */
  readonly algorithm = 'ed25519' as const;
  readonly #seed: Uint8Array;
  readonly #publicKey: Uint8Array;
  readonly #crypto: CryptoBackend;

  private constructor(seed: Uint8Array, crypto: CryptoBackend) {
    this.#seed = seed.slice();
    this.#crypto = crypto;
    this.#publicKey = crypto.ed25519.publicKey(this.#seed);
  }

  /** A key from its 32-byte seed (copied). Throws `CryptoError` `GS_ERR_BAD_KEY` for another length. */
  static fromSeed(seed: Uint8Array, options: CryptoOption = {}): IdentityKey {
    if (!(seed instanceof Uint8Array) || seed.length !== SEED_LEN) throw badKey(`seed must be ${SEED_LEN} bytes`);
    return new IdentityKey(seed, getCryptoBackend(options.crypto));
  }

  /**
   * A key from PKCS#8 DER (`OneAsymmetricKey` v1 or v2, RFC 5958; v2's
   * public key must match the seed). Encrypted keys are not supported.
   * Throws `CryptoError` `GS_ERR_BAD_KEY`.
   */
  static fromPkcs8(der: Uint8Array, options: CryptoOption = {}): IdentityKey {
    if (!(der instanceof Uint8Array) || der.length > MAX_DER_LEN) throw badKey('not a PKCS#8 structure');
    if (der.length === PKCS8_ED25519_PREFIX.length + SEED_LEN && bytesEqual(der.subarray(0, PKCS8_ED25519_PREFIX.length), PKCS8_ED25519_PREFIX)) {
      return IdentityKey.fromSeed(der.subarray(PKCS8_ED25519_PREFIX.length), options);
    }
    const { seed, publicKey } = parseOneAsymmetricKey(der);
    const key = IdentityKey.fromSeed(seed, options);
    if (publicKey && !bytesEqual(publicKey, key.#publicKey)) throw badKey('the embedded public key does not belong to the seed');
    return key;
  }

  /** A key from a PEM `PRIVATE KEY` block (the first one in `text`). Throws `CryptoError` `GS_ERR_BAD_KEY`. */
  static fromPem(text: string, options: CryptoOption = {}): IdentityKey {
    const blocks = decodePemBlocks(text, (why) => badKey(why));
    if (blocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY')) throw badKey('encrypted private keys are not supported; decrypt it first (openssl pkey)');
    const block = blocks.find((b) => b.label === PEM_LABEL);
    if (!block) throw badKey(`no "${PEM_LABEL}" PEM block found`);
    return IdentityKey.fromPkcs8(block.der, options);
  }

  /** The 32-byte Ed25519 public key (a fresh copy). */
  get publicKey(): Uint8Array {
    return this.#publicKey.slice();
  }

  /** The 32-byte seed (a fresh copy). This is the secret; keep it out of logs. */
  exportSeed(): Uint8Array {
    return this.#seed.slice();
  }

  /** Ed25519 signature (64 bytes) of `message`. */
  sign(message: Uint8Array): Uint8Array {
    return this.#crypto.ed25519.sign(message, this.#seed);
  }

  /** PKCS#8 v1 DER (RFC 8410 §7), as `openssl genpkey -algorithm ed25519` writes it. */
  toPkcs8(): Uint8Array {
    const out = new Uint8Array(PKCS8_ED25519_PREFIX.length + SEED_LEN);
    out.set(PKCS8_ED25519_PREFIX);
    out.set(this.#seed, PKCS8_ED25519_PREFIX.length);
    return out;
  }

  /** PEM `PRIVATE KEY` of {@link IdentityKey.toPkcs8}. */
  toPem(): string {
    return encodePem(PEM_LABEL, this.toPkcs8());
  }

  /** Only public data. */
  toJSON(): { algorithm: 'ed25519'; publicKey: string } {
    return { algorithm: this.algorithm, publicKey: toHex(this.#publicKey) };
  }

  /** `IdentityKey(ed25519 <public key hex>)`: only public data. */
  toString(): string {
    return `IdentityKey(ed25519 ${toHex(this.#publicKey)})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/** A fresh random Ed25519 identity key (seed from the backend's CSPRNG). @public */
export function generateIdentityKey(options: CryptoOption = {}): IdentityKey {
  const crypto = getCryptoBackend(options.crypto);
  return IdentityKey.fromSeed(crypto.randomBytes(SEED_LEN), { crypto });
}

/**
 * OneAsymmetricKey (RFC 5958 §2): SEQUENCE { version 0|1, AlgorithmIdentifier,
 * OCTET STRING privateKey, [0] attributes OPTIONAL, [1] publicKey OPTIONAL }.
 * For Ed25519 `privateKey` wraps CurvePrivateKey ::= OCTET STRING (RFC 8410 §7).
 */
function parseOneAsymmetricKey(der: Uint8Array): { seed: Uint8Array; publicKey?: Uint8Array } {
  const root = decodeOne(der);
  if (!(root instanceof asn1js.Sequence)) throw badKey('not a PKCS#8 structure');
  const [version, alg, priv, ...rest] = root.valueBlock.value;
  if (!(version instanceof asn1js.Integer) || ![0, 1].includes(version.valueBlock.valueDec)) throw badKey('unsupported PKCS#8 version');
  if (!(alg instanceof asn1js.Sequence) || alg.valueBlock.value.length !== 1) throw badKey('bad algorithm identifier');
  const oid = alg.valueBlock.value[0];
  if (!(oid instanceof asn1js.ObjectIdentifier) || oid.valueBlock.toString() !== OID_ED25519) throw badKey('not an Ed25519 key');
  if (!(priv instanceof asn1js.OctetString)) throw badKey('missing private key');
  const inner = decodeOne(priv.valueBlock.valueHexView);
  if (!(inner instanceof asn1js.OctetString) || inner.valueBlock.isConstructed) throw badKey('bad CurvePrivateKey');
  const seed = new Uint8Array(inner.valueBlock.valueHexView);
  let publicKey: Uint8Array | undefined;
  for (const field of rest) {
    const { tagClass, tagNumber } = field.idBlock;
    if (tagClass === 3 && tagNumber === 1) {
      // [1] IMPLICIT BIT STRING: first content byte is the unused-bit count (0).
      const body = new Uint8Array(field.valueBeforeDecodeView).subarray(field.valueBeforeDecodeView.length - field.lenBlock.length);
      if (body[0] !== 0) throw badKey('bad public key');
      publicKey = body.subarray(1);
    } else if (!(tagClass === 3 && tagNumber === 0)) throw badKey('unexpected field in PKCS#8 structure');
  }
  return publicKey ? { seed, publicKey } : { seed };
}
