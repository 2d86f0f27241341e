/**
 * Typed errors shared by every gatesock layer.
 *
 * Every failure a user can program against is a {@link GatesockError} with a
 * stable `code` (see docs/errors.md). Match on `code`, not on the message.
 * Each family has its own subclass with a `Symbol.for` brand, so
 * `instanceof` works across duplicate copies of the package (as undici does)
 * and `instanceof FrameError` matches only frame errors.
 *
 * This folder is a leaf: it imports nothing from gatesock, and every layer
 * may import it.
 *
 * @packageDocumentation
 */

/**
 * Every stable error code, grouped by the subclass that carries it.
 * @public
 */
export const ERROR_CODES = Object.freeze({
  config: ['GS_ERR_INVALID_OPTION'],
  frame: [
    'GS_ERR_FRAME_MALFORMED',
    'GS_ERR_FRAME_TOO_LARGE',
    'GS_ERR_FRAME_VERSION',
    'GS_ERR_FRAME_UNKNOWN_TYPE',
    'GS_ERR_UNEXPECTED_FRAME',
  ],
  crypto: ['GS_ERR_DECRYPT_FAILED', 'GS_ERR_NONCE_EXHAUSTED', 'GS_ERR_MESSAGE_TOO_LARGE', 'GS_ERR_LOW_ORDER_KEY', 'GS_ERR_BAD_KEY', 'GS_ERR_SEAL_WORKER_FAILED'],
  handshake: ['GS_ERR_HANDSHAKE_FAILED', 'GS_ERR_HANDSHAKE_TIMEOUT', 'GS_ERR_PEER_REJECTED'],
  certificate: [
    'GS_ERR_CERT_INVALID',
    'GS_ERR_CERT_EXPIRED',
    'GS_ERR_CERT_NOT_YET_VALID',
    'GS_ERR_CERT_WRONG_ROLE',
    'GS_ERR_CERT_UNTRUSTED',
    'GS_ERR_CERT_BAD_SIGNATURE',
    'GS_ERR_CERT_MSID_MISMATCH',
  ],
  transport: ['GS_ERR_TRANSPORT_CLOSED', 'GS_ERR_CONNECT_FAILED', 'GS_ERR_LISTEN_FAILED', 'GS_ERR_PROXY_REFUSED', 'GS_ERR_PROXY_AUTH'],
  session: [
    'GS_ERR_SESSION_CLOSED',
    'GS_ERR_SESSION_DEAD',
    'GS_ERR_PROTOCOL',
    'GS_ERR_CONN_RESET',
    'GS_ERR_TOO_MANY_CONNECTIONS',
  ],
  fec: ['GS_ERR_FEC_INVALID_PARAMS', 'GS_ERR_FEC_SHARD_SIZE', 'GS_ERR_FEC_TOO_FEW_SHARDS', 'GS_ERR_FEC_BAD_INDEX'],
  relay: [
    'GS_ERR_UNKNOWN_PCID',
    'GS_ERR_SERVER_OFFLINE',
    'GS_ERR_PCID_TAKEN',
    'GS_ERR_PCID_INVALID',
    'GS_ERR_NO_GATEWAY',
    'GS_ERR_GATEWAY_DRAINING',
    'GS_ERR_SESSION_REPLACED',
    'GS_ERR_RELAY_FORBIDDEN',
    'GS_ERR_TOKEN_MALFORMED',
    'GS_ERR_TOKEN_FORGED',
    'GS_ERR_TOKEN_EXPIRED',
    'GS_ERR_TOKEN_REPLAYED',
    'GS_ERR_TOKEN_WRONG_GATEWAY',
    'GS_ERR_TOKEN_WRONG_MSID',
  ],
  socket: ['GS_ERR_TIMEOUT', 'GS_ERR_NOT_CONNECTED'],
  keyaddress: [
    'GS_ERR_KEYADDR_INVALID_PREFIX',
    'GS_ERR_KEYADDR_STATE',
    'GS_ERR_KEYADDR_NO_ROUTE',
    'GS_ERR_KEYADDR_NOT_PERMITTED',
    'GS_ERR_KEYADDR_UNKNOWN_NAME',
  ],
  delivery: [
    'GS_ERR_DELIVERY_MALFORMED',
    'GS_ERR_DELIVERY_BAD_SIGNATURE',
    'GS_ERR_DELIVERY_DIGEST_MISMATCH',
    'GS_ERR_DELIVERY_STALE',
    'GS_ERR_DELIVERY_UNSAFE_NAME',
    'GS_ERR_DELIVERY_NOT_PERMITTED',
    'GS_ERR_DELIVERY_TIMEOUT',
    'GS_ERR_DELIVERY_NO_MULTICAST',
    'GS_ERR_DELIVERY_UNKNOWN_PUBLISHER',
    'GS_ERR_DELIVERY_FOREIGN_FILE',
    'GS_ERR_DELIVERY_OUT_OF_RANGE',
  ],
  dispatch: [
    'GS_ERR_DISPATCH_MALFORMED',
    'GS_ERR_DISPATCH_BAD_SIGNATURE',
    'GS_ERR_DISPATCH_EXPIRED',
    'GS_ERR_DISPATCH_ROLLBACK',
    'GS_ERR_DISPATCH_DIGEST_MISMATCH',
    'GS_ERR_DISPATCH_WRONG_AGENT',
    'GS_ERR_DISPATCH_UNKNOWN_BUNDLE',
    'GS_ERR_DISPATCH_UNKNOWN_DISPATCH',
    'GS_ERR_DISPATCH_UNSAFE_PATH',
    'GS_ERR_DISPATCH_LOADER_FAILED',
    'GS_ERR_DISPATCH_TIMEOUT',
    'GS_ERR_DISPATCH_LOG_INVALID',
    'GS_ERR_DISPATCH_REPLAYED',
    'GS_ERR_DISPATCH_LOG_WRITE_FAILED',
    'GS_ERR_DISPATCH_CLOSED',
    'GS_ERR_DISPATCH_LOG_TRUNCATED',
    'GS_ERR_DISPATCH_LOG_HEAD_INVALID',
  ],
  security: [
    'GS_ERR_SECURITY_MALFORMED_REPORT',
    'GS_ERR_SECURITY_MALFORMED_ADVISORY',
    'GS_ERR_SECURITY_BAD_VERSION',
    'GS_ERR_SECURITY_WRONG_HOST',
    'GS_ERR_SECURITY_UNSAFE_PATH',
    'GS_ERR_SECURITY_NOTIFY_FAILED',
    'GS_ERR_SECURITY_MALFORMED_POLICY',
  ],
} as const);

/**
 * Codes of {@link ConfigError}.
 * @public
 */
export type ConfigErrorCode = (typeof ERROR_CODES.config)[number];
/**
 * Codes of {@link FrameError}.
 * @public
 */
export type FrameErrorCode = (typeof ERROR_CODES.frame)[number];
/**
 * Codes of {@link CryptoError}.
 * @public
 */
export type CryptoErrorCode = (typeof ERROR_CODES.crypto)[number];
/**
 * Codes of {@link HandshakeError}.
 * @public
 */
export type HandshakeErrorCode = (typeof ERROR_CODES.handshake)[number];
/**
 * Codes of {@link CertificateError}.
 * @public
 */
export type CertificateErrorCode = (typeof ERROR_CODES.certificate)[number];
/**
 * Codes of {@link TransportError}.
 * @public
 */
export type TransportErrorCode = (typeof ERROR_CODES.transport)[number];
/**
 * Codes of {@link SessionError}.
 * @public
 */
export type SessionErrorCode = (typeof ERROR_CODES.session)[number];
/**
 * Codes of {@link FecError}.
 * @public
 */
export type FecErrorCode = (typeof ERROR_CODES.fec)[number];
/**
 * Codes of {@link RelayError}.
 * @public
 */
export type RelayErrorCode = (typeof ERROR_CODES.relay)[number];
/**
 * Codes of {@link SocketError}.
 * @public
 */
export type SocketErrorCode = (typeof ERROR_CODES.socket)[number];
/**
 * Codes of {@link KeyAddressError}.
 * @public
 */
export type KeyAddressErrorCode = (typeof ERROR_CODES.keyaddress)[number];
/**
 * Codes of {@link DeliveryError}.
 * @public
 */
export type DeliveryErrorCode = (typeof ERROR_CODES.delivery)[number];
/**
 * Codes of {@link DispatchError}.
 * @public
 */
export type DispatchErrorCode = (typeof ERROR_CODES.dispatch)[number];
/**
 * Codes of {@link SecurityCenterError}.
 * @public
 */
export type SecurityCenterErrorCode = (typeof ERROR_CODES.security)[number];
/**
 * Any stable gatesock error code.
 * @public
 */
export type GatesockErrorCode =
  | ConfigErrorCode
  | FrameErrorCode
  | CryptoErrorCode
  | HandshakeErrorCode
  | CertificateErrorCode
  | TransportErrorCode
  | SessionErrorCode
  | FecErrorCode
  | RelayErrorCode
  | SocketErrorCode
  | KeyAddressErrorCode
  | DeliveryErrorCode
  | DispatchErrorCode
  | SecurityCenterErrorCode;

const BASE_BRAND = Symbol.for('gatesock.error');

function branded(value: unknown, brand: symbol): boolean {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}

/**
 * Base class of every error gatesock throws on purpose.
 * @public
 */
export class GatesockError extends Error {
  /** Stable, documented code; programs match on it. */
  readonly code: GatesockErrorCode;

  constructor(code: GatesockErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'GatesockError';
    Object.defineProperty(this, BASE_BRAND, { value: true });
  }

  /** True for any gatesock error, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, BASE_BRAND);
  }
}

// One subclass per family, written out rather than made by a factory so that
// the published types stay plain. Each sets its own brand and overrides
// Symbol.hasInstance, so `x instanceof FrameError` is false for a
// CertificateError even though both extend GatesockError.
const CONFIG_ERROR_BRAND = Symbol.for('gatesock.error.ConfigError');

/**
 * An option or argument was out of range or of the wrong type.
 * @public
 */
export class ConfigError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: ConfigErrorCode;

  constructor(code: ConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ConfigError';
    Object.defineProperty(this, CONFIG_ERROR_BRAND, { value: true });
  }

  /** True for any ConfigError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, CONFIG_ERROR_BRAND);
  }
}

const FRAME_ERROR_BRAND = Symbol.for('gatesock.error.FrameError');

/**
 * Bytes on the wire did not form a valid frame.
 * @public
 */
export class FrameError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: FrameErrorCode;

  constructor(code: FrameErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'FrameError';
    Object.defineProperty(this, FRAME_ERROR_BRAND, { value: true });
  }

  /** True for any FrameError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, FRAME_ERROR_BRAND);
  }
}

const CRYPTO_ERROR_BRAND = Symbol.for('gatesock.error.CryptoError');

/**
 * A cryptographic operation failed (bad tag, exhausted nonce, low-order key, bad key).
 * @public
 */
export class CryptoError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: CryptoErrorCode;

  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'CryptoError';
    Object.defineProperty(this, CRYPTO_ERROR_BRAND, { value: true });
  }

  /** True for any CryptoError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, CRYPTO_ERROR_BRAND);
  }
}

const HANDSHAKE_ERROR_BRAND = Symbol.for('gatesock.error.HandshakeError');

/**
 * The secure-channel handshake did not complete.
 * @public
 */
export class HandshakeError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: HandshakeErrorCode;

  constructor(code: HandshakeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'HandshakeError';
    Object.defineProperty(this, HANDSHAKE_ERROR_BRAND, { value: true });
  }

  /** True for any HandshakeError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, HANDSHAKE_ERROR_BRAND);
  }
}

const CERTIFICATE_ERROR_BRAND = Symbol.for('gatesock.error.CertificateError');

/**
 * A certificate or chain failed validation.
 * @public
 */
export class CertificateError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: CertificateErrorCode;

  constructor(code: CertificateErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'CertificateError';
    Object.defineProperty(this, CERTIFICATE_ERROR_BRAND, { value: true });
  }

  /** True for any CertificateError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, CERTIFICATE_ERROR_BRAND);
  }
}

const TRANSPORT_ERROR_BRAND = Symbol.for('gatesock.error.TransportError');

/**
 * A transport could not connect, or closed under a caller.
 * @public
 */
export class TransportError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: TransportErrorCode;

  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'TransportError';
    Object.defineProperty(this, TRANSPORT_ERROR_BRAND, { value: true });
  }

  /** True for any TransportError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, TRANSPORT_ERROR_BRAND);
  }
}

const SESSION_ERROR_BRAND = Symbol.for('gatesock.error.SessionError');

/**
 * A multiplexed session or one of its connections failed or closed.
 * @public
 */
export class SessionError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: SessionErrorCode;

  constructor(code: SessionErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SessionError';
    Object.defineProperty(this, SESSION_ERROR_BRAND, { value: true });
  }

  /** True for any SessionError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, SESSION_ERROR_BRAND);
  }
}

const FEC_ERROR_BRAND = Symbol.for('gatesock.error.FecError');

/**
 * An erasure-code operation got parameters or shards it cannot work with
 * (bad k/m, unequal shard lengths, too few shards, a bad shard index).
 * @public
 */
export class FecError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: FecErrorCode;

  constructor(code: FecErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'FecError';
    Object.defineProperty(this, FEC_ERROR_BRAND, { value: true });
  }

  /** True for any FecError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, FEC_ERROR_BRAND);
  }
}

const RELAY_ERROR_BRAND = Symbol.for('gatesock.error.RelayError');

/**
 * The gateway system refused a request: an unknown or offline PCID, a name
 * conflict, no gateway to send a server to, a draining gateway, a session
 * replaced by a newer one with the same key, or a redirect token or client
 * ticket that is malformed, forged, expired, replayed or bound to another
 * gateway or machine.
 * @public
 */
export class RelayError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: RelayErrorCode;

  constructor(code: RelayErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'RelayError';
    Object.defineProperty(this, RELAY_ERROR_BRAND, { value: true });
  }

  /** True for any RelayError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, RELAY_ERROR_BRAND);
  }
}

const SOCKET_ERROR_BRAND = Symbol.for('gatesock.error.SocketError');

/**
 * A socket-API call could not complete: a blocking-style call ran past its
 * timeout, or the socket is no longer connected.
 * @public
 */
export class SocketError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: SocketErrorCode;

  constructor(code: SocketErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SocketError';
    Object.defineProperty(this, SOCKET_ERROR_BRAND, { value: true });
  }

  /** True for any SocketError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, SOCKET_ERROR_BRAND);
  }
}

const KEY_ADDRESS_ERROR_BRAND = Symbol.for('gatesock.error.KeyAddressError');

/**
 * Key addresses (`gatesock/keyaddress`) could not be used: a prefix that is
 * not a /64, a damaged or mismatched ratchet state, a host without the local
 * route or privilege a key-address listener needs, or a name the resolver
 * was not configured for.
 * @public
 */
export class KeyAddressError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: KeyAddressErrorCode;

  constructor(code: KeyAddressErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'KeyAddressError';
    Object.defineProperty(this, KEY_ADDRESS_ERROR_BRAND, { value: true });
  }

  /** True for any KeyAddressError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, KEY_ADDRESS_ERROR_BRAND);
  }
}

const DELIVERY_ERROR_BRAND = Symbol.for('gatesock.error.DeliveryError');

/**
 * The multicast updater refused or could not finish an update: a malformed
 * or badly signed packet, a file whose digest does not match, a stale
 * announcement, an unsafe file name, an update this receiver may not take,
 * a timeout, or a host without multicast.
 * @public
 */
export class DeliveryError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: DeliveryErrorCode;

  constructor(code: DeliveryErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'DeliveryError';
    Object.defineProperty(this, DELIVERY_ERROR_BRAND, { value: true });
  }

  /** True for any DeliveryError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, DELIVERY_ERROR_BRAND);
  }
}

const DISPATCH_ERROR_BRAND = Symbol.for('gatesock.error.DispatchError');

/**
 * Verifiable dispatch refused an order or a result: a malformed or badly
 * signed bundle, binding or report, an expired or rolled-back bundle, a
 * digest that does not match, a report from the wrong agent, an unsafe
 * target path, a loader that failed or ran out of time, or an evidence log
 * that does not verify.
 * @public
 */
export class DispatchError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: DispatchErrorCode;

  constructor(code: DispatchErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'DispatchError';
    Object.defineProperty(this, DISPATCH_ERROR_BRAND, { value: true });
  }

  /** True for any DispatchError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, DISPATCH_ERROR_BRAND);
  }
}

const SECURITY_CENTER_ERROR_BRAND = Symbol.for('gatesock.error.SecurityCenterError');

/**
 * The security center or a security agent refused input or could not act: a
 * malformed configuration report or advisory, a version string that is not a
 * version, a report for another host, an unsafe file path, or a notification
 * that could not be sent.
 * @public
 */
export class SecurityCenterError extends GatesockError {
  /** Stable, documented code. */
  declare readonly code: SecurityCenterErrorCode;

  constructor(code: SecurityCenterErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SecurityCenterError';
    Object.defineProperty(this, SECURITY_CENTER_ERROR_BRAND, { value: true });
  }

  /** True for any SecurityCenterError, from any copy of gatesock. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, SECURITY_CENTER_ERROR_BRAND);
  }
}
