/**
 * Machine IDs (design, system 1): a server is known by `MSID-` + the upper-case
 * hex SHA-256 of its certificate's DER.
 *
 * The seed paper hashed with SHA-1. We do not: chosen-prefix collisions on
 * SHA-1 are practical (SHA-1 is a Shambles, 2020, for about US$45k), so a
 * gateway or any attacker could craft a second certificate, with a key of
 * its own, that has the same MSID as a real server and then impersonate it
 * end to end. SHA-256 has no known collision attack. Parsing canonical DER
 * only (certificate.ts) gives each certificate one encoding, hence one MSID.
 */
import { checkOption } from '../../errors/check.js';
import { getCryptoBackend } from '../crypto/index.js';
import { partsOf, type Certificate } from './certificate.js';
import { toHex } from './der.js';

const MSID_RE = /^MSID-[0-9A-F]{64}$/;

/** SHA-256 of the certificate's DER, computed once per certificate object. */
export function certificateDigest(cert: Certificate): Uint8Array {
  const parts = partsOf(cert);
  return (parts.digest ??= getCryptoBackend().sha256(parts.der));
}

/**
 * The MSID of a certificate: `MSID-` + 64 upper-case hex digits of the
 * SHA-256 of its DER.
 * @public
 */
export function msidOf(cert: Certificate): string {
  return `MSID-${toHex(certificateDigest(cert)).toUpperCase()}`;
}

/**
 * True when `value` is an MSID in canonical form (`MSID-` + 64 upper-case hex digits).
 * @public
 */
export function isMsid(value: unknown): value is string {
  return typeof value === 'string' && MSID_RE.test(value);
}

/** `value` as a canonical MSID (hex upper-cased); `ConfigError` naming `name` when it is not an MSID. */
export function normalizeMsid(value: unknown, name: string): string {
  const upper = typeof value === 'string' && value.startsWith('MSID-') ? `MSID-${value.slice(5).toUpperCase()}` : value;
  checkOption(isMsid(upper), name, 'must be "MSID-" followed by 64 hex digits');
  return upper;
}
