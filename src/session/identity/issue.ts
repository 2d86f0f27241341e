/**
 * Making certificates: the gateway system's root CA, the controller and
 * gateway certificates it signs, and the self-signed certificate a server
 * makes for itself on first start (design, system 1, "Trust").
 *
 * pkijs 4 cannot sign Ed25519 (TOOLCHAIN.md, trap 2), so the TBS structure is
 * built with pkijs/asn1js, its DER is signed with our backend's Ed25519, and
 * the signature is set by hand. Every certificate made here is parsed back
 * before it is returned, so what we make is what we read.
 *
 * What each certificate carries (all v3, Ed25519 key and signature):
 *
 * | | root CA | controller / gateway | server (self-signed) |
 * | --- | --- | --- | --- |
 * | subject | CN | CN, OU=role | CN, OU=server |
 * | basicConstraints (critical) | CA:TRUE | CA:FALSE | CA:FALSE |
 * | keyUsage (critical) | keyCertSign, cRLSign | digitalSignature | digitalSignature |
 * | extendedKeyUsage | — | the role's purpose OID ({@link ROLE_PURPOSE_OIDS}) | server purpose OID |
 * | SKI / AKI | SKI, AKI = own SKI | SKI, AKI = issuer's SKI | SKI, AKI = own SKI |
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { checkOption } from '../../errors/check.js';
import { getCryptoBackend } from '../crypto/index.js';
import { parseCertificate, partsOf, type Certificate } from './certificate.js';
import { bytesEqual, toHex } from './der.js';
import { IdentityKey, type CryptoOption } from './keys.js';
import { encodeName } from './names.js';
import { OID_CN, OID_ED25519, OID_EXT, OID_OU, ROLE_PURPOSE_OIDS, ROLES, type Role } from './oids.js';

const DAY_MS = 86_400_000;
/** Latest time X.509 can express (GeneralizedTime 99991231235959Z). */
const MAX_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59);

/**
 * Defaults of the certificate makers.
 * @public
 */
export const DEFAULT_CERTIFICATE_OPTIONS = Object.freeze({
  /**
   * How far before "now" validity starts, in ms: one hour. A peer whose clock
   * runs behind ours must not see a certificate made a second ago as "not yet
   * valid". NTP keeps clocks within seconds, but hosts without it drift by
   * minutes; public CAs back-date for the same reason (Let's Encrypt by one hour).
   */
  backdateMs: 3_600_000,
  /**
   * Validity of a server's self-signed certificate: 100 years. Its hash is the
   * server's MSID, the name clients and the controller's database know it by,
   * so it should outlive the server.
   */
  serverValidDays: 36_500,
});

/** Options of {@link createRootCa}. @public */
export interface RootCaOptions extends CryptoOption {
  /** Subject commonName, 1 to 64 characters (RFC 5280 ub-common-name). */
  commonName: string;
  /** Days of validity from `now`; an integer ≥ 1. */
  validDays: number;
  /** The CA's key; keep it offline once the system's certificates are issued. */
  key: IdentityKey;
  /** Issuing time (default: the current time). Validity starts {@link DEFAULT_CERTIFICATE_OPTIONS}.backdateMs earlier. */
  now?: Date;
}

/** The CA that signs a certificate: its key and its certificate. @public */
export interface CertificateIssuer {
  /** The CA's private key; it must be the key of `certificate`. */
  readonly key: IdentityKey;
  /** The CA's certificate (a CA certificate); its subject becomes the issuer name. */
  readonly certificate: Certificate;
}

/** Options of {@link issueCertificate}. @public */
export interface IssueCertificateOptions extends CryptoOption {
  /** Role the certificate grants: `controller`, `gateway` (or `server`, for operator-signed servers). */
  role: Role;
  /** Subject commonName, 1 to 64 characters. */
  commonName: string;
  /** The subject's Ed25519 public key (32 bytes); the issuer never needs the subject's secret. */
  publicKey: Uint8Array;
  /** The signing CA (normally the root from {@link createRootCa}). */
  issuer: CertificateIssuer;
  /** Days of validity from `now`; an integer ≥ 1. */
  validDays: number;
  /** Issuing time (default: the current time). */
  now?: Date;
}

/** Options of {@link createServerCertificate}. @public */
export interface ServerCertificateOptions extends CryptoOption {
  /** Subject commonName (default `gatesock-server-` + 16 hex digits of the key's SHA-256). */
  commonName?: string;
  /** Days of validity (default {@link DEFAULT_CERTIFICATE_OPTIONS}.serverValidDays). */
  validDays?: number;
  /** Issuing time (default: the current time). */
  now?: Date;
}

/**
 * A self-signed root CA certificate for a gateway system.
 * Throws `ConfigError` `GS_ERR_INVALID_OPTION` for a bad option.
 * @public
 */
export function createRootCa(options: RootCaOptions): Certificate {
  checkKey(options?.key, 'key');
  const name = encodeName([[OID_CN, checkCommonName(options.commonName)]]);
  return buildCertificate({
    subject: name,
    issuer: name,
    publicKey: options.key.publicKey,
    signer: options.key,
    authorityKeyId: undefined,
    validity: validity(options.now, options.validDays),
    role: null,
    crypto: options.crypto,
  });
}

/**
 * A controller or gateway certificate signed by `issuer`.
 * Throws `ConfigError` `GS_ERR_INVALID_OPTION` for a bad option, including an
 * issuer key that does not match the issuer certificate or a non-CA issuer.
 * @public
 */
export function issueCertificate(options: IssueCertificateOptions): Certificate {
  checkOption(ROLES.includes(options?.role), 'role', `must be one of ${ROLES.join(', ')}`);
  const { issuer } = options;
  checkKey(issuer?.key, 'issuer.key');
  const issuerParts = partsOf(issuer.certificate);
  checkOption(issuerParts.isCa, 'issuer.certificate', 'must be a CA certificate');
  checkOption(bytesEqual(issuerParts.publicKey, issuer.key.publicKey), 'issuer.key', 'must be the key of issuer.certificate');
  checkPublicKey(options.publicKey);
  return buildCertificate({
    subject: encodeName([
      [OID_CN, checkCommonName(options.commonName)],
      [OID_OU, options.role],
    ]),
    issuer: issuerParts.subjectDer,
    publicKey: options.publicKey,
    signer: issuer.key,
    authorityKeyId: issuerParts.subjectKeyId,
    validity: validity(options.now, options.validDays),
    role: options.role,
    crypto: options.crypto,
  });
}

/**
 * The self-signed certificate a server makes for its key on first start
 * (role `server`). Its MSID is {@link msidOf} of the result.
 * @public
 */
export function createServerCertificate(key: IdentityKey, options: ServerCertificateOptions = {}): Certificate {
  checkKey(key, 'key');
  const crypto = getCryptoBackend(options.crypto);
  const commonName = options.commonName ?? `gatesock-server-${toHex(crypto.sha256(key.publicKey)).slice(0, 16)}`;
  const name = encodeName([
    [OID_CN, checkCommonName(commonName)],
    [OID_OU, 'server'],
  ]);
  return buildCertificate({
    subject: name,
    issuer: name,
    publicKey: key.publicKey,
    signer: key,
    authorityKeyId: undefined,
    validity: validity(options.now, options.validDays ?? DEFAULT_CERTIFICATE_OPTIONS.serverValidDays),
    role: 'server',
    crypto,
  });
}

function checkKey(key: unknown, name: string): asserts key is IdentityKey {
  checkOption(key instanceof IdentityKey, name, 'must be an IdentityKey');
}

function checkPublicKey(publicKey: unknown): asserts publicKey is Uint8Array {
  checkOption(publicKey instanceof Uint8Array && publicKey.length === 32, 'publicKey', 'must be a 32-byte Ed25519 public key');
}

function checkCommonName(cn: unknown): string {
  checkOption(typeof cn === 'string' && cn.length >= 1 && cn.length <= 64, 'commonName', 'must be a string of 1 to 64 characters');
  return cn;
}

function validity(now: Date | undefined, validDays: number): { notBefore: Date; notAfter: Date } {
  const t = now ?? new Date();
  checkOption(t instanceof Date && Number.isFinite(t.getTime()), 'now', 'must be a valid Date');
  checkOption(Number.isInteger(validDays) && validDays >= 1, 'validDays', 'must be an integer ≥ 1');
  // Whole seconds: X.509 times carry no fractions (RFC 5280 §4.1.2.5.2).
  const notBefore = Math.floor((t.getTime() - DEFAULT_CERTIFICATE_OPTIONS.backdateMs) / 1000) * 1000;
  const notAfter = Math.floor((t.getTime() + validDays * DAY_MS) / 1000) * 1000;
  checkOption(notBefore >= 0 && notAfter <= MAX_TIME_MS, 'validDays', 'must end by the year 9999');
  return { notBefore: new Date(notBefore), notAfter: new Date(notAfter) };
}

/** What {@link buildCertificate} signs (internal; tests use it to make certificates the public makers refuse to). */
export interface BuildInput {
  subject: Uint8Array;
  issuer: Uint8Array;
  publicKey: Uint8Array;
  signer: IdentityKey;
  /** Issuer's SKI; undefined for a self-signed certificate (its own SKI is used). */
  authorityKeyId: Uint8Array | undefined;
  validity: { notBefore: Date; notAfter: Date };
  /** null makes a CA. */
  role: Role | null;
  crypto: CryptoOption['crypto'];
  /** Override the CA flag (default: CA exactly when `role` is null). */
  isCa?: boolean;
  /** Extra extensions appended after ours. */
  extraExtensions?: readonly pkijs.Extension[];
}

/**
 * Build, sign and re-parse one certificate. Internal: it checks nothing, so it
 * can make certificates a verifier must refuse.
 * @internal
 */
export function buildCertificate(input: BuildInput): Certificate {
  const crypto = getCryptoBackend(input.crypto);
  const isCa = input.isCa ?? input.role === null;
  // RFC 7093 §2 method 1: the leftmost 160 bits of SHA-256 of the subjectPublicKey bits.
  const subjectKeyId = crypto.sha256(input.publicKey).slice(0, 20);
  const authorityKeyId = input.authorityKeyId ?? subjectKeyId;

  const extensions = [
    // RFC 5280 §4.2.1.9: MUST be critical in CA certificates; we mark it critical in all.
    ext(OID_EXT.basicConstraints, true, new asn1js.Sequence({ value: isCa ? [new asn1js.Boolean({ value: true })] : [] })),
    // RFC 5280 §4.2.1.3 (DER named bits, trailing zero bits dropped):
    // CA: keyCertSign(5) + cRLSign(6) = 0b0000_0110, 1 unused bit; leaf: digitalSignature(0) = 0b1000_0000, 7 unused bits.
    ext(OID_EXT.keyUsage, true, new asn1js.BitString({ unusedBits: isCa ? 1 : 7, valueHex: Uint8Array.of(isCa ? 0x06 : 0x80) })),
    ...(input.role === null ? [] : [ext(OID_EXT.extKeyUsage, false, new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: ROLE_PURPOSE_OIDS[input.role] })] }))]),
    ext(OID_EXT.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: subjectKeyId })),
    ext(
      OID_EXT.authorityKeyIdentifier,
      false,
      new asn1js.Sequence({ value: [new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 }, valueHex: authorityKeyId })] }),
    ),
    ...(input.extraExtensions ?? []),
  ];

  const ed25519 = () => new pkijs.AlgorithmIdentifier({ algorithmId: OID_ED25519 });
  const cert = new pkijs.Certificate({
    version: 2,
    serialNumber: new asn1js.Integer({ valueHex: serialNumber(crypto.randomBytes(16)) }),
    signature: ed25519(),
    issuer: new pkijs.RelativeDistinguishedNames({ valueBeforeDecode: arrayBuffer(input.issuer) }),
    notBefore: time(input.validity.notBefore),
    notAfter: time(input.validity.notAfter),
    subject: new pkijs.RelativeDistinguishedNames({ valueBeforeDecode: arrayBuffer(input.subject) }),
    subjectPublicKeyInfo: new pkijs.PublicKeyInfo({ algorithm: ed25519(), subjectPublicKey: new asn1js.BitString({ valueHex: input.publicKey }) }),
    extensions,
    signatureAlgorithm: ed25519(),
  });
  // TOOLCHAIN.md trap 2: sign the TBS DER ourselves, then set the signature.
  const tbs = new Uint8Array(cert.encodeTBS().toBER());
  cert.tbsView = tbs;
  cert.signatureValue = new asn1js.BitString({ valueHex: input.signer.sign(tbs) });
  return parseCertificate(new Uint8Array(cert.toSchema(false).toBER()));
}

/** @internal */
export function ext(extnID: string, critical: boolean, value: asn1js.AsnType): pkijs.Extension {
  return new pkijs.Extension({ extnID, critical, extnValue: value.toBER() });
}

/**
 * 16 random bytes as a positive INTEGER (RFC 5280 §4.1.2.2: positive, at most
 * 20 octets, unpredictable — CA/B Forum asks for ≥ 64 random bits). Clearing
 * the top bit keeps it positive; a non-zero first byte keeps the DER minimal
 * and the length exactly 16. That leaves 127 random bits.
 */
function serialNumber(random: Uint8Array): Uint8Array {
  const b = random.slice(0, 16);
  b[0] = b[0]! & 0x7f || 1;
  return b;
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function time(d: Date): pkijs.Time {
  return new pkijs.Time({ type: d.getUTCFullYear() < 2050 ? 0 : 1, value: d });
}

function arrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.slice().buffer as ArrayBuffer;
}
