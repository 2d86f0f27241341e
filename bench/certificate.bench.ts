/**
 * Certificate figures (issue 3, controller logins): what a certificate seen
 * for the first time costs, against Node's own X.509 (OpenSSL) in the same
 * run. A server login brings a self-signed certificate the controller's
 * verification cache has not seen; verifying it — parse, SHA-256 for the
 * cache key and MSID, Ed25519 self-signature — is CPU the controller spends
 * per new server.
 *
 * Each sample times a batch of distinct certificates made beforehand, with a
 * fresh verifier (so a fresh cache) per batch: every verification is a miss.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { CertificateError } from '../src/errors/index.js';
import { certificateVerifier, createServerCertificate, generateIdentityKey, parseCertificate, VerificationCache } from '../src/session/identity/index.js';
import { parseCertificateWithPkijs } from '../src/session/identity/certificate.js';
import { defineFigures, median, sideBySide } from './harness.js';

const BATCH = 2000;
const ROUNDS = 5;

function serverCertificates(n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(createServerCertificate(generateIdentityKey()).der);
  return out;
}

/** Microseconds per item of `f` over `items`. */
function perItem<T>(items: readonly T[], f: (item: T) => unknown): number {
  const t0 = process.hrtime.bigint();
  for (const item of items) f(item);
  return Number(process.hrtime.bigint() - t0) / 1e3 / items.length;
}

const msidOfDer = (der: Uint8Array) => `MSID-${createHash('sha256').update(der).digest('hex').toUpperCase()}`;

/** What the controller runs on a login: verify the lone self-signed server certificate, then read its MSID. */
function oursVerify(): (der: Uint8Array) => string {
  const verify = certificateVerifier({ role: ['gateway', 'server'], allowSelfSignedServer: true, crypto: 'native', cache: new VerificationCache() });
  return (der) => verify([der.slice()]).msid;
}

/** Node's X.509: parse, check the self-signature under the certificate's own key, and hash the DER. */
function nodeVerify(der: Uint8Array): string {
  const x = new X509Certificate(der);
  if (!x.verify(x.publicKey)) throw new Error('node: self-signature does not verify');
  return msidOfDer(der);
}

/** Check before timing (STYLE.md §1): both give the right MSID on good certificates and refuse a bad signature. */
function check(ders: readonly Uint8Array[]): void {
  const ours = oursVerify();
  for (const der of ders.slice(0, 50)) {
    const want = msidOfDer(der);
    if (ours(der) !== want || nodeVerify(der) !== want) throw new Error('ours or node gave a wrong MSID');
    if (parseCertificate(der).subject !== parseCertificateWithPkijs(der).subject) throw new Error('the two parse paths disagree');
  }
  const bad = ders[0]!.slice();
  bad[bad.length - 1]! ^= 1;
  let oursRefused = false;
  try {
    ours(bad);
  } catch (e) {
    oursRefused = e instanceof CertificateError && e.code === 'GS_ERR_CERT_BAD_SIGNATURE';
  }
  const x = new X509Certificate(bad);
  if (!oursRefused || x.verify(x.publicKey)) throw new Error('a corrupted signature was not refused');
}

export const figures = defineFigures([
  {
    name: `certificate first-sight verify native self-signed server x ${BATCH}`,
    unit: 'µs/cert',
    // Parse (strict reader, ~10 µs), SHA-256, and one Ed25519 verification
    // (~65 µs here, the bulk); OpenSSL parses in about 70 µs. Before the strict
    // reader, pkijs parsing alone took about 550 µs.
    target: { better: 'lower', ratio: 1, ours: 200 },
    async run() {
      const ders = serverCertificates(BATCH);
      check(ders);
      const m = await sideBySide(
        ROUNDS,
        async () => {
          const verify = oursVerify();
          return perItem(ders, verify);
        },
        async () => perItem(ders, nodeVerify),
      );
      return { ...m, baselineName: 'node-X509Certificate+verify' };
    },
  },
  {
    name: `certificate parse self-signed server x ${BATCH}`,
    unit: 'µs/cert',
    target: { better: 'lower', ratio: 0.5 },
    async run() {
      const ders = serverCertificates(BATCH);
      check(ders);
      // For the record, the general (pkijs) path on the same certificates.
      const pkijs = median(Array.from({ length: 3 }, () => perItem(ders, parseCertificateWithPkijs)));
      process.stderr.write(`certificate parse: pkijs path ${pkijs.toFixed(1)} µs/cert\n`);
      const m = await sideBySide(
        ROUNDS,
        async () => perItem(ders, parseCertificate),
        async () => perItem(ders, (der) => new X509Certificate(der)),
      );
      return { ...m, baselineName: 'node-X509Certificate' };
    },
  },
]);
