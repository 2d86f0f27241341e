/**
 * Every object identifier the identity module writes or reads, in one place.
 *
 * ## gatesock's private arc (placeholder)
 *
 * gatesock has no IANA Private Enterprise Number yet. Until it registers one,
 * its OIDs live under a UUID-derived arc (ITU-T X.667 / RFC 4122: `2.25.` +
 * the UUID as one decimal integer), which needs no registration and cannot
 * collide with anyone else's:
 *
 * ```
 * GATESOCK_ARC   2.25.205538556064512522689836174682025731893   (UUID 9aa14936-5164-4a2d-8439-1581e2b5a735)
 *   .1           key purposes (extendedKeyUsage values), one per role
 *   .1.1         controller
 *   .1.2         gateway
 *   .1.3         server
 * ```
 *
 * Treat the arc as a placeholder: once a PEN is registered the role OIDs move
 * under `1.3.6.1.4.1.<PEN>`, and certificates issued before then must be
 * re-issued (the verifier will read only the arc it is built with).
 *
 * A UUID arc is a 128-bit integer, which asn1js encodes correctly but prints
 * oddly when decoding; so roles are matched by comparing the encoded OID
 * bytes ({@link ROLE_PURPOSE_DER}), never by the decoded string.
 */
import * as asn1js from 'asn1js';

/** Roles a gatesock certificate can carry. @public */
export type Role = 'controller' | 'gateway' | 'server';

/** All roles, in a stable order. @public */
export const ROLES: readonly Role[] = Object.freeze(['controller', 'gateway', 'server'] as const);

/** gatesock's private OID arc (placeholder until a PEN is registered; see the module comment). @public */
export const GATESOCK_ARC = '2.25.205538556064512522689836174682025731893';

/** The extendedKeyUsage key purpose that names each role. @public */
export const ROLE_PURPOSE_OIDS: Readonly<Record<Role, string>> = Object.freeze({
  controller: `${GATESOCK_ARC}.1.1`,
  gateway: `${GATESOCK_ARC}.1.2`,
  server: `${GATESOCK_ARC}.1.3`,
});

/** DER of each role's key-purpose OID (tag, length and contents), for byte comparison. */
export const ROLE_PURPOSE_DER: ReadonlyArray<readonly [Role, Uint8Array]> = ROLES.map(
  (role) => [role, new Uint8Array(new asn1js.ObjectIdentifier({ value: ROLE_PURPOSE_OIDS[role] }).toBER())] as const,
);

/** Ed25519 (RFC 8410 §3): used both in SubjectPublicKeyInfo and as the signature algorithm, with no parameters. */
export const OID_ED25519 = '1.3.101.112';

/** Certificate extensions (RFC 5280 §4.2.1). */
export const OID_EXT = Object.freeze({
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
});

/** Name attribute types (RFC 5280 Appendix A / X.520) with their RFC 4514 short names. */
export const NAME_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '0.9.2342.19200300.100.1.25': 'DC',
});

const oidDer = (oid: string) => new Uint8Array(new asn1js.ObjectIdentifier({ value: oid }).toBER());

/** DER of each NAME_ATTRIBUTES type (tag, length and contents) with its dotted OID, for byte comparison. */
export const NAME_ATTRIBUTES_DER: ReadonlyArray<readonly [Uint8Array, string]> = Object.keys(NAME_ATTRIBUTES).map((oid) => [oidDer(oid), oid] as const);

/** DER of each OID_EXT extension ID with its name, for byte comparison (at most 31 entries: a bit mask tracks duplicates). */
export const OID_EXT_DER: ReadonlyArray<readonly [Uint8Array, keyof typeof OID_EXT]> = (Object.keys(OID_EXT) as (keyof typeof OID_EXT)[])
  .filter((name) => name !== 'subjectAltName') // the reader leaves certificates with names we do not use to pkijs
  .map((name) => [oidDer(OID_EXT[name]), name] as const);

/** OID of the commonName attribute. */
export const OID_CN = '2.5.4.3';
/** OID of the organizationalUnitName attribute (carries the role, for humans and `openssl x509 -text`). */
export const OID_OU = '2.5.4.11';
