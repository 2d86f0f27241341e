/**
 * Certificate chain verification for gatesock's trust model (design, system
 * 1, "Trust"): controller and gateway certificates chain to the gateway
 * system's root CA, which applications ship; a server's certificate is
 * self-signed and trusted through its MSID.
 *
 * Signatures are checked by hand with our backend's Ed25519 over the exact
 * TBS bytes (pkijs 4 cannot verify Ed25519; TOOLCHAIN.md trap 2). A trust
 * anchor's own signature is checked too (as `openssl verify -check_ss_sig`
 * does, trap 3), and anchors are matched by exact DER, never by name alone.
 *
 * Checks run in this order, and the first failure is reported:
 *
 * 1. structure — each certificate parses; issuers are CAs allowed to sign
 *    certificates (`GS_ERR_CERT_INVALID`); no unknown critical extension;
 * 2. signatures and trust — each certificate is signed by the next, the last
 *    by (or equal to) a trusted root (`GS_ERR_CERT_BAD_SIGNATURE`,
 *    `GS_ERR_CERT_UNTRUSTED`); a lone self-signed certificate is accepted
 *    only as a server pinned by `expectMsid` or allowed by
 *    `allowSelfSignedServer`;
 * 3. time — every certificate, the root included, is valid at `now`
 *    (`GS_ERR_CERT_NOT_YET_VALID`, `GS_ERR_CERT_EXPIRED`);
 * 4. what the caller asked for — the leaf's role (`GS_ERR_CERT_WRONG_ROLE`)
 *    and MSID (`GS_ERR_CERT_MSID_MISMATCH`).
 *
 * Steps 1–2 depend only on the chain's bytes and the roots' bytes, so their
 * outcome can be cached (see {@link VerificationCache}); steps 3–4 run on
 * every call.
 */
import { CertificateError, type CertificateErrorCode } from '../../errors/index.js';
import { checkOption } from '../../errors/check.js';
import { getCryptoBackend, type CryptoBackend } from '../crypto/index.js';
import { KEY_USAGE, parseCertificate, partsOf, type Certificate, type CertParts } from './certificate.js';
import { bytesEqual, MAX_DER_LEN, toHex } from './der.js';
import type { CryptoOption } from './keys.js';
import { certificateDigest, msidOf, normalizeMsid } from './msid.js';
import { ROLES, type Role } from './oids.js';

/** Longest chain accepted (the handshake's identity payload carries at most 8). */
const MAX_CHAIN = 8;

/** Options of {@link verifyCertificateChain}. @public */
export interface VerifyCertificateOptions extends CryptoOption {
  /** Trusted root certificates (the gateway system's root CA). Default: none. */
  roots?: readonly Certificate[];
  /** Role(s) the leaf must carry. Default: any, including none. */
  role?: Role | readonly Role[];
  /** The leaf's MSID must be this one (`MSID-` + 64 hex digits, any case). */
  expectMsid?: string;
  /**
   * Accept a lone self-signed `server` certificate without `expectMsid`.
   * Default false: a self-signed certificate proves only that its holder has
   * the key, so without an expected MSID it vouches for no one in particular.
   */
  allowSelfSignedServer?: boolean;
  /** The time to check validity at. Default: the current time. */
  now?: Date;
  /** Cache of signature and trust results; see {@link VerificationCache}. Default: none. */
  cache?: VerificationCache;
}

/** The time-independent outcome of checking one chain against one set of roots. */
interface TrustResult {
  readonly leaf: Certificate;
  /** Every certificate whose validity period must hold, leaf first, trust anchor last. */
  readonly validity: ReadonlyArray<{ readonly subject: string; readonly notBefore: number; readonly notAfter: number }>;
  /** The chain is one self-signed certificate that no root vouches for. */
  readonly selfSigned: boolean;
}

interface CacheState {
  readonly map: Map<string, TrustResult>;
  hits: number;
  misses: number;
}
const CACHE_STATE = new WeakMap<VerificationCache, CacheState>();

/**
 * A bounded LRU cache of chain verification results, so repeated handshakes
 * from the same peer skip parsing and Ed25519 verification.
 *
 * Why it is sound: an entry records only the outcome of checks that are pure
 * functions of the chain's bytes and the roots' bytes (parsing, issuer
 * linkage, CA flags, every signature, which root anchors the chain). Its key
 * is SHA-256 over the SHA-256 of each chain certificate's DER and of each
 * root's DER, in order, so a hit means the same bytes were verified before
 * and the same outcome follows; finding different bytes under the same key
 * would need a SHA-256 collision. Only successes are stored. Everything that
 * depends on the call — validity at `now`, the wanted role, the expected
 * MSID, whether a self-signed server is acceptable — is checked on every
 * call, hit or miss. Bounded to `maxEntries`, evicting the least recently
 * used, so a stream of distinct chains costs memory of at most that many
 * entries (a few hundred bytes each, besides the certificates).
 * @public
 */
export class VerificationCache {
  /** Most entries kept (default 1024). */
  readonly maxEntries: number;

  constructor(options: { maxEntries?: number } = {}) {
    const maxEntries = options.maxEntries ?? 1024;
    checkOption(Number.isInteger(maxEntries) && maxEntries >= 1, 'maxEntries', 'must be an integer ≥ 1');
    this.maxEntries = maxEntries;
    CACHE_STATE.set(this, { map: new Map(), hits: 0, misses: 0 });
  }

  /** Entries held now. */
  get size(): number {
    return state(this).map.size;
  }
  /** Verifications served from the cache. */
  get hits(): number {
    return state(this).hits;
  }
  /** Verifications that had to check signatures (successful or not). */
  get misses(): number {
    return state(this).misses;
  }
  /** Forget every entry (counters are kept). */
  clear(): void {
    state(this).map.clear();
  }
}

function state(cache: VerificationCache): CacheState {
  const s = CACHE_STATE.get(cache);
  checkOption(s !== undefined, 'cache', 'must be a VerificationCache');
  return s;
}

const fail = (code: CertificateErrorCode, why: string) => new CertificateError(code, why);

/**
 * Verify a certificate chain (leaf first; DER or parsed) and return the
 * verified leaf. Throws `CertificateError` with the code of the first failed
 * check (see the module comment), or `ConfigError` for bad options.
 * @public
 */
export function verifyCertificateChain(chain: readonly (Certificate | Uint8Array)[], options: VerifyCertificateOptions = {}): Certificate {
  checkOption(Array.isArray(chain), 'chain', 'must be an array of certificates, leaf first');
  const roles = options.role === undefined ? undefined : typeof options.role === 'string' ? [options.role] : options.role;
  checkOption(roles === undefined || (Array.isArray(roles) && roles.every((r) => ROLES.includes(r))), 'role', `must be one or more of ${ROLES.join(', ')}`);
  const expectMsid = options.expectMsid === undefined ? undefined : normalizeMsid(options.expectMsid, 'expectMsid');
  const now = options.now ?? new Date();
  checkOption(now instanceof Date && Number.isFinite(now.getTime()), 'now', 'must be a valid Date');
  const roots = options.roots ?? [];
  checkOption(Array.isArray(roots) && roots.every(isParsed), 'roots', 'must be an array of certificates from parseCertificate()');
  if (chain.length === 0) throw fail('GS_ERR_CERT_INVALID', 'empty certificate chain');
  if (chain.length > MAX_CHAIN) throw fail('GS_ERR_CERT_INVALID', `certificate chain longer than ${MAX_CHAIN}`);
  // Before hashing for the cache key: no peer gets us to hash megabytes.
  if (chain.some((c) => c instanceof Uint8Array && c.length > MAX_DER_LEN)) throw fail('GS_ERR_CERT_INVALID', `certificate larger than ${MAX_DER_LEN} bytes`);
  const crypto = getCryptoBackend(options.crypto);

  let trust: TrustResult | undefined;
  if (options.cache) {
    const s = state(options.cache);
    const digests = chain.map((c) => (c instanceof Uint8Array ? crypto.sha256(c) : certificateDigest(c))); // GS_ERR_CERT_INVALID for a look-alike object
    const key = cacheKey(digests, roots, crypto);
    trust = s.map.get(key);
    if (trust) {
      s.hits++;
      s.map.delete(key); // re-insert: Map order is our recency order
      s.map.set(key, trust);
    } else {
      s.misses++;
      // The key's digests are the certificates' SHA-256: keep them, so msidOf does not hash the same bytes again.
      trust = checkTrust(
        chain.map((c, i) => toCertificate(c, digests[i])),
        roots,
        crypto,
      );
      s.map.set(key, trust);
      if (s.map.size > options.cache.maxEntries) s.map.delete(s.map.keys().next().value!);
    }
  } else {
    trust = checkTrust(chain.map((c) => toCertificate(c)), roots, crypto);
  }

  const leaf = trust.leaf;
  if (trust.selfSigned) {
    if (leaf.role !== 'server') throw fail('GS_ERR_CERT_UNTRUSTED', `"${leaf.subject}" is self-signed and not a server; it must chain to a trusted root`);
    if (expectMsid === undefined && options.allowSelfSignedServer !== true) {
      throw fail('GS_ERR_CERT_UNTRUSTED', `"${leaf.subject}" is a self-signed server certificate; pass expectMsid (or allowSelfSignedServer) to accept it`);
    }
  }
  const t = now.getTime();
  for (const v of trust.validity) {
    // RFC 5280 §4.1.2.5: both ends are inclusive.
    if (t < v.notBefore) throw fail('GS_ERR_CERT_NOT_YET_VALID', `"${v.subject}" is not valid before ${new Date(v.notBefore).toISOString()}`);
    if (t > v.notAfter) throw fail('GS_ERR_CERT_EXPIRED', `"${v.subject}" expired at ${new Date(v.notAfter).toISOString()}`);
  }
  if (roles !== undefined && (leaf.role === null || !roles.includes(leaf.role))) {
    throw fail('GS_ERR_CERT_WRONG_ROLE', `"${leaf.subject}" has role ${leaf.role ?? 'none'}; expected ${roles.join(' or ')}`);
  }
  if (expectMsid !== undefined) {
    const msid = msidOf(leaf);
    if (msid !== expectMsid) throw fail('GS_ERR_CERT_MSID_MISMATCH', `certificate is ${msid}, expected ${expectMsid}`);
  }
  return leaf;
}

function isParsed(c: unknown): c is Certificate {
  try {
    partsOf(c as Certificate);
    return true;
  } catch {
    return false;
  }
}

/** `c` as a parsed certificate; `digest`, when given, is the SHA-256 of `c`'s DER (any backend gives the same bytes). */
function toCertificate(c: Certificate | Uint8Array, digest?: Uint8Array): Certificate {
  if (c instanceof Uint8Array) {
    const cert = parseCertificate(c);
    if (digest) partsOf(cert).digest ??= digest;
    return cert;
  }
  partsOf(c); // GS_ERR_CERT_INVALID for an object we did not make
  return c;
}

function cacheKey(chainDigests: readonly Uint8Array[], roots: readonly Certificate[], crypto: CryptoBackend): string {
  // Digests are fixed-size, so the chain length alone makes the encoding unambiguous.
  const parts: Uint8Array[] = [Uint8Array.of(chainDigests.length), ...chainDigests];
  for (const r of roots) parts.push(certificateDigest(r));
  return toHex(crypto.sha256(...parts));
}

interface Link {
  readonly cert: Certificate;
  readonly parts: CertParts;
}

/** Steps 1–2 of the module comment: everything that does not depend on time or on what the caller wants. */
function checkTrust(chain: Certificate[], roots: readonly Certificate[], crypto: CryptoBackend): TrustResult {
  const links: Link[] = chain.map((cert) => ({ cert, parts: partsOf(cert) }));
  for (const { cert, parts } of links) {
    if (parts.unknownCritical.length > 0) throw fail('GS_ERR_CERT_INVALID', `"${cert.subject}" has unknown critical extension(s) ${parts.unknownCritical.join(', ')}`);
  }
  const leaf = links[0]!;
  if (leaf.parts.role !== null && leaf.parts.keyUsage !== undefined && (leaf.parts.keyUsage & KEY_USAGE.digitalSignature) === 0) {
    throw fail('GS_ERR_CERT_INVALID', `"${leaf.cert.subject}" may not sign (keyUsage lacks digitalSignature)`);
  }
  const signedBy = (child: Link, key: Uint8Array) => crypto.ed25519.verify(child.parts.signature, child.parts.tbs, key);

  // Each certificate must be issued by the next one.
  for (let i = 0; i + 1 < links.length; i++) {
    const child = links[i]!;
    const issuer = links[i + 1]!;
    if (!bytesEqual(child.parts.issuerDer, issuer.parts.subjectDer)) {
      throw fail('GS_ERR_CERT_INVALID', `chain is broken: "${child.cert.subject}" names issuer "${child.cert.issuer}", but the next certificate is "${issuer.cert.subject}"`);
    }
    checkCanIssue(issuer, i); // links 1..i lie between it and the leaf
    if (!signedBy(child, issuer.parts.publicKey)) throw fail('GS_ERR_CERT_BAD_SIGNATURE', `signature of "${child.cert.subject}" does not verify under "${issuer.cert.subject}"`);
  }

  const top = links[links.length - 1]!;
  const validity = links.map(({ cert, parts }) => ({ subject: cert.subject, notBefore: parts.notBefore, notAfter: parts.notAfter }));
  const rootLinks: Link[] = roots.map((cert) => ({ cert, parts: partsOf(cert) }));

  // The chain may end with the trusted root itself (matched by exact DER).
  let anchor = rootLinks.find((r) => bytesEqual(r.parts.der, top.parts.der));
  if (!anchor) {
    const named = rootLinks.filter((r) => bytesEqual(r.parts.subjectDer, top.parts.issuerDer));
    if (named.length === 0) {
      if (links.length === 1 && bytesEqual(top.parts.issuerDer, top.parts.subjectDer)) {
        if (!signedBy(top, top.parts.publicKey)) throw fail('GS_ERR_CERT_BAD_SIGNATURE', `self-signature of "${top.cert.subject}" does not verify`);
        return { leaf: top.cert, validity, selfSigned: true };
      }
      throw fail('GS_ERR_CERT_UNTRUSTED', `issuer "${top.cert.issuer}" of "${top.cert.subject}" is not a trusted root`);
    }
    // Same name is not enough: the authority key identifier must name the root's key …
    const aki = top.parts.authorityKeyId;
    const keyed = named.filter((r) => aki === undefined || r.parts.subjectKeyId === undefined || bytesEqual(aki, r.parts.subjectKeyId));
    if (keyed.length === 0) throw fail('GS_ERR_CERT_UNTRUSTED', `"${top.cert.subject}" was issued by another key than the trusted root "${top.cert.issuer}"`);
    // … and the signature must verify under it.
    anchor = keyed.find((r) => signedBy(top, r.parts.publicKey));
    if (!anchor) {
      // With a matching key identifier the certificate claims this very root, so a failure is a bad signature.
      if (aki !== undefined) throw fail('GS_ERR_CERT_BAD_SIGNATURE', `signature of "${top.cert.subject}" does not verify under the trusted root "${top.cert.issuer}"`);
      throw fail('GS_ERR_CERT_UNTRUSTED', `"${top.cert.subject}" is not signed by the trusted root "${top.cert.issuer}"`);
    }
    checkCanIssue(anchor, links.length - 1);
    validity.push({ subject: anchor.cert.subject, notBefore: anchor.parts.notBefore, notAfter: anchor.parts.notAfter });
  }
  // TOOLCHAIN.md trap 3: a trust anchor's own signature is checked too (once per root object).
  anchor.parts.selfSignatureOk ??= signedBy(anchor, anchor.parts.publicKey);
  if (!anchor.parts.selfSignatureOk) throw fail('GS_ERR_CERT_BAD_SIGNATURE', `self-signature of the trusted root "${anchor.cert.subject}" does not verify`);
  return { leaf: leaf.cert, validity, selfSigned: false };
}

/** An issuer must be a CA allowed to sign certificates, with room in its pathLenConstraint for the `intermediates` CAs under it. */
function checkCanIssue(issuer: Link, intermediates: number): void {
  const { parts, cert } = issuer;
  if (!parts.isCa) throw fail('GS_ERR_CERT_INVALID', `"${cert.subject}" issued a certificate but is not a CA`);
  if (parts.keyUsage !== undefined && (parts.keyUsage & KEY_USAGE.keyCertSign) === 0) throw fail('GS_ERR_CERT_INVALID', `"${cert.subject}" may not sign certificates (keyUsage)`);
  if (parts.pathLen !== undefined && intermediates > parts.pathLen) throw fail('GS_ERR_CERT_INVALID', `"${cert.subject}" allows ${parts.pathLen} CA(s) below it`);
}

/**
 * What {@link certificateVerifier} reports about a verified peer; it fits the
 * secure channel's `VerifiedPeer`.
 * @public
 */
export interface VerifiedCertificate {
  /** Ed25519 public key of the leaf (32 bytes). */
  readonly publicKey: Uint8Array;
  /** MSID of the leaf. */
  readonly msid: string;
  /** Role of the leaf. */
  readonly role: Role;
  /** The verified leaf. */
  readonly certificate: Certificate;
}

/**
 * A peer verifier for the secure channel (`verifyPeer`): verifies the DER
 * chain with `options` and a cache of its own (unless `options.cache` is
 * given). `role` is required, so a verified peer always has one.
 * @public
 */
export function certificateVerifier(
  options: VerifyCertificateOptions & { role: Role | readonly Role[] },
): (chain: readonly Uint8Array[]) => VerifiedCertificate {
  checkOption(options?.role !== undefined, 'role', 'is required for a peer verifier');
  const opts = { ...options, cache: options.cache ?? new VerificationCache() };
  return (chain) => {
    const leaf = verifyCertificateChain(chain, opts);
    return { publicKey: leaf.publicKey, msid: msidOf(leaf), role: leaf.role!, certificate: leaf };
  };
}
