/**
 * gatesock: encrypted, TCP-like byte streams between programs behind NAT and
 * firewalls, relayed by a scalable gateway system.
 *
 * The root entry re-exports the layers that exist so far; each is also
 * available on its own subpath (`gatesock/session`, `gatesock/transport`, …).
 *
 * @packageDocumentation
 */
export {
  ERROR_CODES,
  GatesockError,
  ConfigError,
  FrameError,
  CryptoError,
  HandshakeError,
  CertificateError,
  TransportError,
  SessionError,
  type GatesockErrorCode,
  type ConfigErrorCode,
  type FrameErrorCode,
  type CryptoErrorCode,
  type HandshakeErrorCode,
  type CertificateErrorCode,
  type TransportErrorCode,
  type SessionErrorCode,
} from './errors/index.js';
export * from './transport/index.js';
export * from './session/index.js';
