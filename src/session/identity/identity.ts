/**
 * An identity: a key and the certificate chain that names it. It is what a
 * controller, gateway or server presents in the secure channel's handshake
 * (it satisfies the channel's `ChannelIdentity`).
 */
import { CryptoError } from '../../errors/index.js';
import { checkOption } from '../../errors/check.js';
import { partsOf, type Certificate } from './certificate.js';
import { bytesEqual } from './der.js';
import { generateIdentityKey, IdentityKey } from './keys.js';
import { createServerCertificate, type ServerCertificateOptions } from './issue.js';
import { msidOf } from './msid.js';

/**
 * A key with its certificate chain.
 * @public
 */
export interface Identity {
  /** The leaf certificate's key. */
  readonly key: IdentityKey;
  /** The leaf certificate (`chain[0]`). */
  readonly certificate: Certificate;
  /** Leaf first; the root may be left out (peers have it). */
  readonly chain: readonly Certificate[];
  /** DER of `chain`, leaf first, for the secure channel. */
  readonly certificateChain: readonly Uint8Array[];
  /** MSID of the leaf certificate. */
  readonly msid: string;
  /** Ed25519 signature by `key`. */
  sign(message: Uint8Array): Uint8Array;
}

/**
 * An identity from a key and its chain (leaf first). Throws `CryptoError`
 * `GS_ERR_BAD_KEY` when the key is not the leaf certificate's.
 * @public
 */
export function createIdentity(key: IdentityKey, chain: readonly Certificate[]): Identity {
  checkOption(key instanceof IdentityKey, 'key', 'must be an IdentityKey');
  checkOption(Array.isArray(chain) && chain.length >= 1, 'chain', 'must hold at least the leaf certificate');
  const leaf = chain[0]!;
  if (!bytesEqual(partsOf(leaf).publicKey, key.publicKey)) throw new CryptoError('GS_ERR_BAD_KEY', `the key does not belong to certificate "${leaf.subject}"`);
  const frozenChain = Object.freeze([...chain]);
  return Object.freeze({
    key,
    certificate: leaf,
    chain: frozenChain,
    certificateChain: Object.freeze(frozenChain.map((c) => c.der)),
    msid: msidOf(leaf),
    sign: (message: Uint8Array) => key.sign(message),
  });
}

/**
 * A new server identity: a fresh key and its self-signed `server`
 * certificate, as a server makes on first start. Save it (`saveIdentity`) —
 * the MSID is the certificate's hash, so a new one is a new server.
 * @public
 */
export function createServerIdentity(options: ServerCertificateOptions = {}): Identity {
  const key = generateIdentityKey(options);
  return createIdentity(key, [createServerCertificate(key, options)]);
}
