/**
 * Identities and X.509 certificates (design, system 1, "Trust"): Ed25519
 * identity keys, the gateway system's root CA and the controller, gateway and
 * server certificates, parsing, MSIDs, chain verification with a bounded
 * cache, and PEM files.
 *
 * @packageDocumentation
 */
export { type Certificate, parseCertificate } from './certificate.js';
export { type CryptoOption, IdentityKey, generateIdentityKey } from './keys.js';
export {
  type CertificateIssuer,
  type IssueCertificateOptions,
  type RootCaOptions,
  type ServerCertificateOptions,
  DEFAULT_CERTIFICATE_OPTIONS,
  createRootCa,
  createServerCertificate,
  issueCertificate,
} from './issue.js';
export { type Identity, createIdentity, createServerIdentity } from './identity.js';
export { isMsid, msidOf } from './msid.js';
export { GATESOCK_ARC, ROLES, ROLE_PURPOSE_OIDS, type Role } from './oids.js';
export { certificateFromPem, certificatesFromPem, certificateToPem, certificatesToPem } from './pem.js';
export {
  type VerifiedCertificate,
  type VerifyCertificateOptions,
  VerificationCache,
  certificateVerifier,
  verifyCertificateChain,
} from './verify.js';
export {
  type IdentityLocation,
  type SaveIdentityOptions,
  IDENTITY_FILES,
  loadIdentity,
  loadOrCreateServerIdentity,
  saveIdentity,
} from './files.js';
