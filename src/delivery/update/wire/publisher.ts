/**
 * Publisher keys and signatures: the publisher signs each announcement (and
 * its round-end and completion-ack packets) with Ed25519; receivers pin the
 * publisher's public key and check before they take anything.
 *
 * Keys are the session layer's Ed25519 {@link IdentityKey} (PKCS#8 PEM
 * files, the noble and native backends); no new cryptography here.
 *
 * - Public key text: `ed25519:` followed by the 32-byte key in unpadded
 *   base64url (43 characters). A `PUBLIC KEY` PEM block (SubjectPublicKeyInfo,
 *   RFC 8410 §4, as `openssl pkey -pubout` writes it) is read too.
 * - Key ID: the first 8 bytes of SHA-256 of the 32-byte public key, as 16
 *   lowercase hex digits; announcements name their key by it.
 * - Signed bytes are domain-separated by a context string ending in a line
 *   feed, so a signature over one kind of message never verifies as another.
 *
 * Verification order on a receiver (cheapest refusal first): the line's
 * grammar (codec) → the key ID names a pinned key (`…_UNKNOWN_PUBLISHER`) →
 * the signature (`…_BAD_SIGNATURE`) → expiry and version (`…_STALE`).
 */
import { DeliveryError } from '../../../errors/index.js';
import { getCryptoBackend, IdentityKey, type CryptoBackend, type CryptoOption } from '../../../session/index.js';
import { ascii, fromBase64url, toBase64url, toHex } from './common.js';
import { type Announcement, type AnnouncementFields, announcementSigningBytes } from './control.js';
import { SIGNATURE_LEN } from './packet.js';

/** Bytes of an Ed25519 public key. @public */
export const PUBLIC_KEY_LEN = 32;
/** Prefix of the text form of a public key. @public */
export const PUBLIC_KEY_PREFIX = 'ed25519:';
/** Context of a round-end signature. @public */
export const ROUND_CONTEXT = 'gatesock-update-round-v1\n';
/** Context of a completion-ack signature. @public */
export const ACK_CONTEXT = 'gatesock-update-ack-v1\n';

/** SubjectPublicKeyInfo of an Ed25519 key: this fixed prefix, then the key (RFC 8410 §4). */
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

const badKey = (why: string) => new DeliveryError('GS_ERR_DELIVERY_MALFORMED', `invalid publisher public key: ${why}`);

/**
 * A new random publisher key (the session layer's Ed25519 identity key).
 * Save it with `key.toPem()`; load it with `IdentityKey.fromPem`.
 * @public
 */
export function generatePublisherKey(options: CryptoOption = {}): IdentityKey {
  return IdentityKey.fromSeed(getCryptoBackend(options.crypto).randomBytes(32), options);
}

/**
 * The key ID of a 32-byte public key: 16 lowercase hex digits.
 * @public
 */
export function publisherKeyId(publicKey: Uint8Array, options: CryptoOption = {}): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_LEN) throw badKey(`a public key is ${PUBLIC_KEY_LEN} bytes`);
  return toHex(getCryptoBackend(options.crypto).sha256(publicKey).subarray(0, 8));
}

/**
 * The text form of a public key: `ed25519:` + base64url.
 * @public
 */
export function formatPublicKey(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_LEN) throw badKey(`a public key is ${PUBLIC_KEY_LEN} bytes`);
  return PUBLIC_KEY_PREFIX + toBase64url(publicKey);
}

/**
 * A `PUBLIC KEY` PEM block (SubjectPublicKeyInfo) of a public key, as
 * OpenSSL writes and reads it.
 * @public
 */
export function publicKeyToPem(publicKey: Uint8Array): string {
  formatPublicKey(publicKey);
  const der = new Uint8Array(SPKI_PREFIX.length + PUBLIC_KEY_LEN);
  der.set(SPKI_PREFIX);
  der.set(publicKey, SPKI_PREFIX.length);
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
}

/**
 * Read a public key from its text form (`ed25519:…`) or a `PUBLIC KEY` PEM
 * block (surrounding whitespace and text outside the block are ignored).
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` for anything else.
 * @public
 */
export function parsePublicKey(text: string): Uint8Array {
  if (typeof text !== 'string' || text.length > 4096) throw badKey('expected "ed25519:<base64url>" or a PUBLIC KEY PEM block');
  const trimmed = text.trim();
  if (trimmed.startsWith(PUBLIC_KEY_PREFIX)) {
    try {
      return fromBase64url(trimmed.slice(PUBLIC_KEY_PREFIX.length), 'public key', PUBLIC_KEY_LEN);
    } catch {
      throw badKey(`"${PUBLIC_KEY_PREFIX}" must be followed by ${PUBLIC_KEY_LEN} bytes of unpadded base64url`);
    }
  }
  const m = /-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END PUBLIC KEY-----/.exec(trimmed);
  if (!m) throw badKey('expected "ed25519:<base64url>" or a PUBLIC KEY PEM block');
  const b64 = m[1]!.replace(/\s+/g, '');
  const der = new Uint8Array(Buffer.from(b64, 'base64'));
  if (Buffer.from(der).toString('base64') !== b64) throw badKey('the PEM block is not canonical base64');
  if (der.length !== SPKI_PREFIX.length + PUBLIC_KEY_LEN || !SPKI_PREFIX.every((b, i) => der[i] === b)) throw badKey('the PEM block is not an Ed25519 SubjectPublicKeyInfo');
  return der.slice(SPKI_PREFIX.length);
}

/**
 * Sign an announcement: fills in the key ID of `key` and the signature.
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` (or `…_UNSAFE_NAME`) for fields outside the grammar.
 * @public
 */
export function signAnnouncement(fields: Omit<AnnouncementFields, 'keyId'>, key: IdentityKey): Announcement {
  const complete: AnnouncementFields = { ...fields, keyId: publisherKeyId(key.publicKey) };
  const signature = toBase64url(key.sign(announcementSigningBytes(complete)));
  return Object.freeze({ ...complete, signature });
}

/**
 * What a receiver trusts and remembers when it checks an announcement.
 * @public
 */
export interface TrustOptions extends CryptoOption {
  /** The pinned publisher public keys (32 bytes each). */
  readonly publisherKeys: readonly Uint8Array[];
  /** Current time, ms since the epoch (default `Date.now()`); announcements with `expires · 1000 < now` are stale. */
  readonly now?: number;
  /** The last version of this name the receiver took; only a greater one is fresh. */
  readonly lastVersion?: number;
}

/**
 * An announcement whose signature, key and freshness were checked by
 * {@link verifyAnnouncement}. Only that function makes one; the
 * authenticator refuses anything else.
 * @public
 */
export interface VerifiedAnnouncement extends Announcement {
  /** The pinned publisher key that signed it. */
  readonly publisherKey: Uint8Array;
}

const verifiedSet = new WeakSet<object>();

/** True when `a` came from {@link verifyAnnouncement}. @internal */
export function isVerified(a: unknown): a is VerifiedAnnouncement {
  return typeof a === 'object' && a !== null && verifiedSet.has(a);
}

/**
 * Check an announcement against the pinned keys and the receiver's memory.
 *
 * @throws DeliveryError `GS_ERR_DELIVERY_UNKNOWN_PUBLISHER` when its key ID is
 * not a pinned key; `GS_ERR_DELIVERY_BAD_SIGNATURE` when the signature does
 * not verify; `GS_ERR_DELIVERY_STALE` when it expired or its version is not
 * above `lastVersion` (a replay or a rollback); `GS_ERR_DELIVERY_MALFORMED`
 * for fields outside the grammar.
 * @public
 */
export function verifyAnnouncement(announcement: Announcement, trust: TrustOptions): VerifiedAnnouncement {
  const crypto = getCryptoBackend(trust.crypto);
  const signature = fromBase64url(announcement.signature, 'signature', SIGNATURE_LEN);
  const message = announcementSigningBytes(announcement);
  const publisherKey = trust.publisherKeys.find((k) => k instanceof Uint8Array && k.length === PUBLIC_KEY_LEN && publisherKeyId(k, { crypto }) === announcement.keyId);
  if (!publisherKey) {
    throw new DeliveryError('GS_ERR_DELIVERY_UNKNOWN_PUBLISHER', `announcement of ${announcement.name} is signed by key ${announcement.keyId}, which this receiver does not pin`);
  }
  if (!crypto.ed25519.verify(signature, message, publisherKey)) {
    throw new DeliveryError('GS_ERR_DELIVERY_BAD_SIGNATURE', `announcement of ${announcement.name} does not verify under key ${announcement.keyId}`);
  }
  const now = trust.now ?? Date.now();
  if (announcement.expires * 1000 < now) {
    throw new DeliveryError('GS_ERR_DELIVERY_STALE', `announcement of ${announcement.name} version ${announcement.version} expired at ${new Date(announcement.expires * 1000).toISOString()}`);
  }
  if (trust.lastVersion !== undefined && announcement.version <= trust.lastVersion) {
    throw new DeliveryError(
      'GS_ERR_DELIVERY_STALE',
      `announcement of ${announcement.name} version ${announcement.version} is not newer than version ${trust.lastVersion} already taken (a replay or a rollback)`,
    );
  }
  const verified: VerifiedAnnouncement = Object.freeze({ ...announcement, publisherKey: publisherKey.slice() });
  verifiedSet.add(verified);
  return verified;
}

/** Bytes a round-end packet's signature covers. @public */
export function roundSigningBytes(announcement: Announcement, round: number, grttMs: number, backoffMs: number): Uint8Array {
  const fixed = new Uint8Array(8);
  const v = new DataView(fixed.buffer);
  v.setUint16(0, announcement.fileId);
  v.setUint16(2, round);
  v.setUint16(4, grttMs);
  v.setUint16(6, backoffMs);
  return concat(ascii(ROUND_CONTEXT), fromBase64url(announcement.signature, 'signature', SIGNATURE_LEN), fixed);
}

/**
 * Bytes a completion ack's signature covers: the context, the announcement's
 * signature, the file ID, then the host list as on the wire (count u16, then
 * each host length-prefixed).
 * @public
 */
export function ackSigningBytes(announcement: Announcement, hosts: readonly string[]): Uint8Array {
  const fixed = new Uint8Array(4);
  const v = new DataView(fixed.buffer);
  v.setUint16(0, announcement.fileId);
  v.setUint16(2, hosts.length);
  const list = hosts.flatMap((h) => [Uint8Array.of(h.length), ascii(h)]);
  return concat(ascii(ACK_CONTEXT), fromBase64url(announcement.signature, 'signature', SIGNATURE_LEN), fixed, ...list);
}

const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

/** Verify a signature over `message` with a backend. @internal */
export function verifySignature(crypto: CryptoBackend, signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  return crypto.ed25519.verify(signature, message, publicKey);
}

