/**
 * Parsing X.509 v3 certificates (RFC 5280) into gatesock's own small
 * {@link Certificate} object. A strict reader (certificate-reader.ts) takes
 * the one shape gatesock issues in microseconds; every other certificate, and
 * anything the reader is unsure of, is read by pkijs + asn1js (about half a
 * millisecond). Both give identical results, and both end in the same checks
 * (`finish`). pkijs types never leave this module.
 *
 * Only Ed25519 certificates (RFC 8410) are accepted: every gatesock key is
 * Ed25519, and refusing the rest keeps the verifier to one algorithm.
 * Anything malformed is a `CertificateError` `GS_ERR_CERT_INVALID`, never
 * another exception.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CertificateError } from '../../errors/index.js';
import { bytesEqual, decodeOne, encodedBytes, isDerFramed, MAX_DER_LEN, toHex } from './der.js';
import { noExtensions, readCertificate } from './certificate-reader.js';
import { decodeName, type NameAttribute } from './names.js';
import { OID_CN, OID_ED25519, OID_EXT, OID_OU, ROLE_PURPOSE_DER, ROLES, type Role } from './oids.js';

/**
 * A parsed certificate. Byte and date fields return fresh copies, so callers
 * cannot change a certificate a cache holds.
 * @public
 */
export interface Certificate {
  /** The certificate's DER encoding, exactly as parsed. */
  readonly der: Uint8Array;
  /** The subject's commonName, or `null` when it has none. */
  readonly commonName: string | null;
  /** The gatesock role named in the certificate, or `null` (a root CA, a foreign certificate). */
  readonly role: Role | null;
  /** The subject's Ed25519 public key (32 bytes). */
  readonly publicKey: Uint8Array;
  /** Start of validity (inclusive). */
  readonly notBefore: Date;
  /** End of validity (inclusive, RFC 5280 §4.1.2.5). */
  readonly notAfter: Date;
  /** True when basicConstraints says CA. */
  readonly isCa: boolean;
  /** Subject DN as an RFC 4514 string, e.g. `CN=gw-1,OU=gateway`. */
  readonly subject: string;
  /** Issuer DN as an RFC 4514 string. */
  readonly issuer: string;
  /** Serial number, upper-case hex without a sign byte. */
  readonly serialNumber: string;
}

/** keyUsage bits (RFC 5280 §4.2.1.3), as a mask of `1 << bit`. */
export const KEY_USAGE = Object.freeze({ digitalSignature: 1 << 0, keyCertSign: 1 << 5, cRLSign: 1 << 6 });

/** What verification needs beyond the public fields (internal). */
export interface CertParts {
  readonly der: Uint8Array;
  readonly tbs: Uint8Array;
  readonly signature: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly issuerDer: Uint8Array;
  readonly subjectDer: Uint8Array;
  /** Milliseconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly isCa: boolean;
  /** basicConstraints pathLenConstraint, when present. */
  readonly pathLen: number | undefined;
  /** keyUsage mask, or undefined when the extension is absent (any use allowed). */
  readonly keyUsage: number | undefined;
  readonly subjectKeyId: Uint8Array | undefined;
  readonly authorityKeyId: Uint8Array | undefined;
  readonly role: Role | null;
  /** OIDs of critical extensions this module does not process; a verifier must refuse them (RFC 5280 §4.2). */
  readonly unknownCritical: readonly string[];
  /** Memo: SHA-256 of `der`. */
  digest?: Uint8Array;
  /** Memo: does the certificate's signature verify under its own key? (for trust anchors) */
  selfSignatureOk?: boolean;
}

const PARTS = new WeakMap<Certificate, CertParts>();

/** The internal parts of a certificate made by this module; `GS_ERR_CERT_INVALID` for any other object. */
export function partsOf(cert: Certificate): CertParts {
  const parts = typeof cert === 'object' && cert !== null ? PARTS.get(cert) : undefined;
  if (!parts) throw invalid('not a Certificate from parseCertificate()');
  return parts;
}

/**
 * What both decoders ({@link decodeWithPkijs} and the strict reader in
 * certificate-reader.ts) produce: the verification parts and what the public
 * text fields are made from. The RFC 4514 texts and the serial's hex are
 * built only when someone reads them; every check on the names has already
 * run by then.
 */
export interface DecodedCertificate {
  readonly parts: CertParts;
  /** The subject's attributes (type OID and string value), RDN by RDN. */
  readonly subjectAttributes: readonly NameAttribute[];
  readonly subjectText: () => string;
  readonly issuerText: () => string;
  /** Serial number contents without one leading zero byte. */
  readonly serial: Uint8Array;
}

class ParsedCertificate implements Certificate {
  readonly #p: CertParts;
  readonly #d: DecodedCertificate;
  readonly commonName: string | null;
  #subject: string | undefined;
  #issuer: string | undefined;
  #serialNumber: string | undefined;

  constructor(d: DecodedCertificate) {
    this.#p = d.parts;
    this.#d = d;
    this.commonName = d.subjectAttributes.find(([oid]) => oid === OID_CN)?.[1] ?? null;
    PARTS.set(this, d.parts);
    Object.freeze(this);
  }

  // Lazy (the private memo fields stay writable after freeze); decoding a
  // name to text costs more than everything else a verifier needs from it.
  get subject(): string {
    return (this.#subject ??= this.#d.subjectText());
  }
  get issuer(): string {
    return (this.#issuer ??= this.#d.issuerText());
  }
  get serialNumber(): string {
    return (this.#serialNumber ??= toHex(this.#d.serial).toUpperCase());
  }
  get der(): Uint8Array {
    return this.#p.der.slice();
  }
  get role(): Role | null {
    return this.#p.role;
  }
  get publicKey(): Uint8Array {
    return this.#p.publicKey.slice();
  }
  get notBefore(): Date {
    return new Date(this.#p.notBefore);
  }
  get notAfter(): Date {
    return new Date(this.#p.notAfter);
  }
  get isCa(): boolean {
    return this.#p.isCa;
  }

  toJSON() {
    return {
      subject: this.subject,
      issuer: this.issuer,
      role: this.role,
      isCa: this.isCa,
      serialNumber: this.serialNumber,
      notBefore: this.notBefore.toISOString(),
      notAfter: this.notAfter.toISOString(),
      publicKey: toHex(this.#p.publicKey),
    };
  }

  toString(): string {
    return `Certificate(${this.subject})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return { Certificate: this.toJSON() };
  }
}

function invalid(why: string, cause?: unknown): CertificateError {
  return new CertificateError('GS_ERR_CERT_INVALID', `invalid certificate: ${why}`, cause === undefined ? undefined : { cause });
}

/**
 * Parse one DER certificate. Throws `CertificateError` `GS_ERR_CERT_INVALID`
 * when the bytes are not a well-formed, DER-encoded X.509 certificate with an
 * Ed25519 key and signature.
 * @public
 */
export function parseCertificate(der: Uint8Array): Certificate {
  const bytes = derCopy(der);
  // The strict reader takes the shape gatesock issues in a few microseconds;
  // anything else (or anything it is unsure of) goes the general pkijs way.
  // Both end in the same checks (finish) and give identical results.
  return finish(readCertificate(bytes) ?? decodeWithPkijs(bytes));
}

/**
 * {@link parseCertificate} without the strict reader: always the pkijs path.
 * Internal, for tests that hold both paths to the same results.
 */
export function parseCertificateWithPkijs(der: Uint8Array): Certificate {
  return finish(decodeWithPkijs(derCopy(der)));
}

/** A private copy of `der`, once it is known to be one DER-framed element of a sane size. */
function derCopy(der: Uint8Array): Uint8Array {
  if (!(der instanceof Uint8Array)) throw invalid('expected DER bytes (Uint8Array)');
  if (der.length > MAX_DER_LEN) throw invalid(`larger than ${MAX_DER_LEN} bytes`);
  const bytes = der.slice();
  if (!isDerFramed(bytes)) throw invalid('not a single DER-encoded element');
  return bytes;
}

/**
 * Decode a DER-framed certificate with pkijs + asn1js: the general path, for
 * any certificate shape. Throws `GS_ERR_CERT_INVALID`. Internal (tests compare
 * it with the strict reader).
 */
export function decodeWithPkijs(der: Uint8Array): DecodedCertificate {
  let cert: pkijs.Certificate;
  try {
    cert = new pkijs.Certificate({ schema: asn1js.fromBER(der).result });
  } catch (cause) {
    throw invalid('not an X.509 certificate', cause);
  }
  try {
    return fromPkijs(cert, der);
  } catch (e) {
    if (e instanceof CertificateError) throw e;
    // asn1js/pkijs getters can throw on odd input we did not foresee; still a typed refusal.
    throw invalid('malformed field', e);
  }
}

/** The checks both decoders share, then the certificate object. */
function finish(d: DecodedCertificate): Certificate {
  const { parts } = d;
  if (!Number.isFinite(parts.notBefore) || !Number.isFinite(parts.notAfter)) throw invalid('bad validity time');
  if (parts.notAfter < parts.notBefore) throw invalid('validity ends before it starts');
  const ous = d.subjectAttributes.filter(([oid]) => oid === OID_OU).map(([, v]) => v);
  // The role lives in the key purposes; the OU repeats it for people. They must agree.
  if (parts.role !== null && (!ous.includes(parts.role) || ous.some((ou) => ou !== parts.role && (ROLES as readonly string[]).includes(ou)))) {
    throw invalid(`role ${parts.role} in extendedKeyUsage does not match the subject OU`);
  }
  return new ParsedCertificate(d);
}

function fromPkijs(cert: pkijs.Certificate, der: Uint8Array): DecodedCertificate {
  if (![0, 1, 2].includes(cert.version)) throw invalid(`unknown version ${cert.version}`);
  // RFC 5280 §4.1.1.2: the outer signatureAlgorithm must equal the TBS signature field.
  for (const alg of [cert.signatureAlgorithm, cert.signature]) {
    if (alg.algorithmId !== OID_ED25519 || alg.algorithmParams !== undefined) throw invalid(`signature algorithm ${alg.algorithmId} is not Ed25519 without parameters`);
  }
  const signature = bitStringBytes(cert.signatureValue, 64, 'signature');
  const spki = cert.subjectPublicKeyInfo;
  if (spki.algorithm.algorithmId !== OID_ED25519 || spki.algorithm.algorithmParams !== undefined) throw invalid(`public key algorithm ${spki.algorithm.algorithmId} is not Ed25519`);
  const publicKey = bitStringBytes(spki.subjectPublicKey, 32, 'public key');

  const notBefore = cert.notBefore.value.getTime();
  const notAfter = cert.notAfter.value.getTime();

  const issuerDer = new Uint8Array(cert.issuer.valueBeforeDecode);
  const subjectDer = new Uint8Array(cert.subject.valueBeforeDecode);
  const issuer = decodeName(issuerDer);
  const subject = decodeName(subjectDer);
  if (!issuer || !subject) throw invalid('malformed name');

  const serial = cert.serialNumber;
  if (!(serial instanceof asn1js.Integer)) throw invalid('bad serial number');
  let serialBytes = new Uint8Array(serial.valueBlock.valueHexView);
  if (serialBytes.length > 1 && serialBytes[0] === 0) serialBytes = serialBytes.subarray(1);

  if (cert.extensions && cert.version !== 2) throw invalid('extensions in a certificate older than v3');
  const ext = readExtensions(cert.extensions ?? []);

  const parts: CertParts = {
    der,
    tbs: new Uint8Array(cert.tbsView),
    signature,
    publicKey,
    issuerDer,
    subjectDer,
    notBefore,
    notAfter,
    ...ext,
  };
  return { parts, subjectAttributes: subject.attributes, subjectText: () => subject.text, issuerText: () => issuer.text, serial: serialBytes };
}

function bitStringBytes(bits: asn1js.BitString, length: number, what: string): Uint8Array {
  if (!(bits instanceof asn1js.BitString) || bits.valueBlock.isConstructed || bits.valueBlock.unusedBits !== 0) throw invalid(`bad ${what} bit string`);
  const b = new Uint8Array(bits.valueBlock.valueHexView);
  if (b.length !== length) throw invalid(`${what} must be ${length} bytes, not ${b.length}`);
  return b;
}

export type ExtensionFields = Pick<CertParts, 'isCa' | 'pathLen' | 'keyUsage' | 'subjectKeyId' | 'authorityKeyId' | 'role' | 'unknownCritical'>;

function readExtensions(extensions: readonly pkijs.Extension[]): ExtensionFields {
  const out = noExtensions();
  const seen = new Set<string>();
  const unknownCritical: string[] = [];
  for (const e of extensions) {
    if (seen.has(e.extnID)) throw invalid(`extension ${e.extnID} appears twice`); // RFC 5280 §4.2
    seen.add(e.extnID);
    const value = decodeOne(e.extnValue.valueBlock.valueHexView);
    if (!value) throw invalid(`extension ${e.extnID} is not DER`);
    switch (e.extnID) {
      case OID_EXT.basicConstraints: {
        // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }
        const [a, b, ...extra] = seqOf(value, 'basicConstraints');
        let next = a;
        if (next instanceof asn1js.Boolean) {
          out.isCa = next.valueBlock.value;
          next = b;
        } else if (b !== undefined) throw invalid('malformed basicConstraints');
        if (next instanceof asn1js.Integer) {
          const n = next.valueBlock.valueDec;
          if (!Number.isSafeInteger(n) || n < 0) throw invalid('bad pathLenConstraint');
          out.pathLen = n;
        } else if (next !== undefined) throw invalid('malformed basicConstraints');
        if (extra.length > 0) throw invalid('malformed basicConstraints');
        break;
      }
      case OID_EXT.keyUsage: {
        if (!(value instanceof asn1js.BitString) || value.valueBlock.isConstructed) throw invalid('malformed keyUsage');
        const bytes = value.valueBlock.valueHexView;
        let mask = 0;
        for (let bit = 0; bit < Math.min(bytes.length * 8, 9); bit++) if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) mask |= 1 << bit;
        out.keyUsage = mask;
        break;
      }
      case OID_EXT.extKeyUsage: {
        const purposes = seqOf(value, 'extKeyUsage');
        if (purposes.length === 0) throw invalid('empty extKeyUsage');
        for (const p of purposes) {
          if (!(p instanceof asn1js.ObjectIdentifier)) throw invalid('malformed extKeyUsage');
          const role = ROLE_PURPOSE_DER.find(([, oidDer]) => bytesEqual(encodedBytes(p), oidDer))?.[0];
          if (role === undefined) continue;
          if (out.role !== null && out.role !== role) throw invalid(`more than one gatesock role (${out.role}, ${role})`);
          out.role = role;
        }
        break;
      }
      case OID_EXT.subjectKeyIdentifier:
        if (!(value instanceof asn1js.OctetString) || value.valueBlock.isConstructed) throw invalid('malformed subjectKeyIdentifier');
        out.subjectKeyId = new Uint8Array(value.valueBlock.valueHexView);
        break;
      case OID_EXT.authorityKeyIdentifier: {
        // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }
        for (const f of seqOf(value, 'authorityKeyIdentifier')) {
          if (f.idBlock.tagClass === 3 && f.idBlock.tagNumber === 0 && !f.idBlock.isConstructed) {
            out.authorityKeyId = new Uint8Array((f.valueBlock as unknown as { valueHexView: Uint8Array }).valueHexView);
          }
        }
        break;
      }
      case OID_EXT.subjectAltName:
        break; // understood as "names we do not use": gatesock identifies peers by role and MSID
      default:
        if (e.critical) unknownCritical.push(e.extnID);
    }
  }
  out.unknownCritical = unknownCritical;
  return out;
}

function seqOf(value: asn1js.AsnType, what: string): asn1js.AsnType[] {
  if (!(value instanceof asn1js.Sequence)) throw invalid(`malformed ${what}`);
  return value.valueBlock.value;
}
