/**
 * PEM text (RFC 7468): certificates one by one or as bundles, and the codec
 * the key module shares.
 *
 * Writing follows RFC 7468 §2 strictly (64-character lines, LF endings).
 * Reading is as lax as §2 allows — CRLF or LF, text between blocks ignored —
 * but the base64 itself must be canonical, and RFC 1421 headers
 * (`Proc-Type:`, i.e. legacy encrypted keys) are refused.
 */
import { CertificateError } from '../../errors/index.js';
import { parseCertificate, type Certificate } from './certificate.js';

/** Largest PEM text we read. */
const MAX_PEM_CHARS = 1 << 20;
const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** One decoded PEM block. */
export interface PemBlock {
  readonly label: string;
  readonly der: Uint8Array;
}

/** PEM text of one block. */
export function encodePem(label: string, der: Uint8Array): string {
  const b64 = toBase64(der);
  const lines: string[] = [`-----BEGIN ${label}-----`];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  lines.push(`-----END ${label}-----`, '');
  return lines.join('\n');
}

/** Every PEM block in `text`, in order; `fail(why)` makes the error to throw. */
export function decodePemBlocks(text: string, fail: (why: string) => Error): PemBlock[] {
  if (typeof text !== 'string') throw fail('PEM input must be a string');
  if (text.length > MAX_PEM_CHARS) throw fail(`PEM input longer than ${MAX_PEM_CHARS} characters`);
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const [, label, body, endLabel] = m as unknown as [string, string, string, string];
    if (label !== endLabel) throw fail(`PEM block "${label}" ends with "${endLabel}"`);
    if (body.includes(':')) throw fail(`PEM block "${label}" has RFC 1421 headers (an encrypted legacy key?); not supported`);
    const b64 = body.replace(/\s+/g, '');
    if (!BASE64.test(b64) || b64.length % 4 !== 0 || b64.length === 0) throw fail(`PEM block "${label}" is not valid base64`);
    const der = fromBase64(b64);
    // Canonical: the padding bits must be zero, so each block has one text form.
    if (toBase64(der) !== b64) throw fail(`PEM block "${label}" is not canonical base64`);
    blocks.push({ label, der });
  }
  return blocks;
}

// btoa/atob rather than Buffer, so this layer runs outside Node too.
function toBase64(der: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < der.length; i++) bin += String.fromCharCode(der[i]!);
  return btoa(bin);
}

function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const certError = (why: string) => new CertificateError('GS_ERR_CERT_INVALID', why);

/** PEM `CERTIFICATE` block of one certificate. @public */
export function certificateToPem(certificate: Certificate): string {
  return encodePem('CERTIFICATE', certificate.der);
}

/** PEM bundle of several certificates, in the order given (chains: leaf first). @public */
export function certificatesToPem(certificates: readonly Certificate[]): string {
  return certificates.map(certificateToPem).join('');
}

/**
 * Every `CERTIFICATE` block in `text`, parsed, in order; other blocks (a key
 * in a combined file, say) are skipped. Throws `CertificateError`
 * `GS_ERR_CERT_INVALID` when there is none or one is malformed.
 * @public
 */
export function certificatesFromPem(text: string): Certificate[] {
  const certs = decodePemBlocks(text, certError)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => parseCertificate(b.der));
  if (certs.length === 0) throw certError('no "CERTIFICATE" PEM block found');
  return certs;
}

/**
 * The one certificate in `text`. Throws `CertificateError`
 * `GS_ERR_CERT_INVALID` when there is not exactly one.
 * @public
 */
export function certificateFromPem(text: string): Certificate {
  const certs = certificatesFromPem(text);
  if (certs.length !== 1) throw certError(`expected one certificate, found ${certs.length}`);
  return certs[0]!;
}
