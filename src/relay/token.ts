/**
 * Redirect tokens and client tickets: what the controller hands a server (to
 * attach to a gateway) or a client (to reach a server through a gateway).
 * Both are the same signed structure, told apart by `kind`:
 *
 * ```
 *  0     1     2           10          18          34            66           98           130           194
 *  +-----+-----+-----------+-----------+-----------+-------------+------------+------------+-------------+
 *  | ver | kind| issuedAt  | expiresAt | nonce     | gateway     | holder     | target     | signature   |
 *  +-----+-----+-----------+-----------+-----------+-------------+------------+------------+-------------+
 *  ver        1
 *  kind       1 = redirect token (server → gateway), 2 = client ticket (client → gateway)
 *  issuedAt   u64 BE, ms since the Unix epoch (controller's clock)
 *  expiresAt  u64 BE, ms since the Unix epoch
 *  nonce      16 random bytes: the token's identity for single use
 *  gateway    the 32-byte digest of the one gateway that may accept it (its MSID)
 *  holder     digest of the machine that may present it (the server, or the client)
 *  target     digest of the server it leads to (equal to holder for a redirect token)
 *  signature  Ed25519 by the controller's key over "gatesock/token/1" ‖ bytes 0…129
 * ```
 *
 * A gateway accepts a token once: the signature must verify under the key of
 * the controller it is registered with, it must name this gateway, be
 * presented by its holder for its target, be within its lifetime (with a
 * small allowance for clock skew between the machines), and its nonce must
 * not have been seen. Each failure has its own code; checks run in that
 * order, so an unsigned token learns nothing about the others.
 */
import { RelayError } from '../errors/index.js';
import { isMsid } from '../session/index.js';

/** Bytes in a token. */
export const TOKEN_LEN = 194;
const SIGNED_LEN = 130;
const VERSION = 1;
const DOMAIN = new TextEncoder().encode('gatesock/token/1');

/** What a token is for. */
export type TokenKind = 'redirect' | 'ticket';
const KIND_BYTE: Record<TokenKind, number> = { redirect: 1, ticket: 2 };

/** What a token says. MSIDs in canonical form. */
export interface TokenClaims {
  readonly kind: TokenKind;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly nonce: Uint8Array;
  readonly gateway: string;
  readonly holder: string;
  readonly target: string;
}

/** An MSID's 32-byte digest. */
export function msidDigest(msid: string): Uint8Array {
  if (!isMsid(msid)) throw new RelayError('GS_ERR_TOKEN_MALFORMED', `not an MSID: ${String(msid).slice(0, 80)}`);
  return new Uint8Array(Buffer.from(msid.slice(5), 'hex'));
}

/** The MSID of a 32-byte digest. */
export function msidFromDigest(digest: Uint8Array): string {
  return `MSID-${Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('hex').toUpperCase()}`;
}

function signedMessage(token: Uint8Array): Uint8Array {
  const m = new Uint8Array(DOMAIN.length + SIGNED_LEN);
  m.set(DOMAIN);
  m.set(token.subarray(0, SIGNED_LEN), DOMAIN.length);
  return m;
}

/** Sign claims into a token. `sign` is the controller's Ed25519 signing function. */
export function encodeToken(claims: TokenClaims, sign: (message: Uint8Array) => Uint8Array): Uint8Array {
  const t = new Uint8Array(TOKEN_LEN);
  const v = new DataView(t.buffer);
  t[0] = VERSION;
  t[1] = KIND_BYTE[claims.kind];
  v.setBigUint64(2, BigInt(claims.issuedAt));
  v.setBigUint64(10, BigInt(claims.expiresAt));
  if (claims.nonce.length !== 16) throw new RangeError('token nonce must be 16 bytes');
  t.set(claims.nonce, 18);
  t.set(msidDigest(claims.gateway), 34);
  t.set(msidDigest(claims.holder), 66);
  t.set(msidDigest(claims.target), 98);
  t.set(sign(signedMessage(t)), SIGNED_LEN);
  return t;
}

/** Read a token without checking it. Throws `GS_ERR_TOKEN_MALFORMED`. */
export function decodeToken(token: Uint8Array): TokenClaims & { readonly signature: Uint8Array } {
  if (!(token instanceof Uint8Array) || token.length !== TOKEN_LEN) {
    throw new RelayError('GS_ERR_TOKEN_MALFORMED', `a token is ${TOKEN_LEN} bytes, got ${(token as Uint8Array)?.length ?? typeof token}`);
  }
  if (token[0] !== VERSION) throw new RelayError('GS_ERR_TOKEN_MALFORMED', `token version ${token[0]}, expected ${VERSION}`);
  const kind = token[1] === 1 ? 'redirect' : token[1] === 2 ? 'ticket' : undefined;
  if (!kind) throw new RelayError('GS_ERR_TOKEN_MALFORMED', `unknown token kind ${token[1]}`);
  const v = new DataView(token.buffer, token.byteOffset, token.byteLength);
  return {
    kind,
    issuedAt: Number(v.getBigUint64(2)),
    expiresAt: Number(v.getBigUint64(10)),
    nonce: token.slice(18, 34),
    gateway: msidFromDigest(token.subarray(34, 66)),
    holder: msidFromDigest(token.subarray(66, 98)),
    target: msidFromDigest(token.subarray(98, 130)),
    signature: token.slice(SIGNED_LEN),
  };
}

/** Options of a {@link TokenChecker}. */
export interface TokenCheckerOptions {
  /** This gateway's MSID. */
  readonly gateway: string;
  /** Ed25519 public keys of the controllers whose tokens we accept (looked up on every check, so it can change). */
  readonly controllerKeys: () => readonly Uint8Array[];
  /** Ed25519 verification. */
  readonly verify: (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean;
  /** Allowance for the controller's and our clocks to differ, in ms. Default 5000. */
  readonly clockSkewMs?: number;
  /** Wall clock in ms; tests move it. Default `Date.now`. */
  readonly now?: () => number;
}

/** What a presented token must match. */
export interface TokenExpectation {
  readonly kind: TokenKind;
  /** MSID proven in the handshake by whoever presents the token. */
  readonly holder: string;
  /** The server the presenter asks for (for a ticket); the holder for a redirect token. */
  readonly target: string;
}

/**
 * A gateway's check of tokens and tickets, with the memory of nonces seen
 * that makes each single use. The memory holds a nonce until its token
 * expires (plus the skew allowance), so it stays bounded by the rate of
 * issue times the lifetime.
 */
export class TokenChecker {
  private readonly seen = new Map<string, number>();
  private readonly skew: number;
  private readonly now: () => number;
  private lastSweep = 0;

  constructor(private readonly options: TokenCheckerOptions) {
    this.skew = options.clockSkewMs ?? 5000;
    this.now = options.now ?? Date.now;
  }

  /** Nonces remembered now. */
  get remembered(): number {
    return this.seen.size;
  }

  /** Check a token and spend it; returns its claims or throws the {@link RelayError} that says why not. */
  check(token: Uint8Array, expect: TokenExpectation): TokenClaims {
    const claims = decodeToken(token);
    if (claims.kind !== expect.kind) throw new RelayError('GS_ERR_TOKEN_MALFORMED', `a ${claims.kind} was presented where a ${expect.kind} is needed`);
    const message = signedMessage(token);
    if (!this.options.controllerKeys().some((key) => this.options.verify(claims.signature, message, key))) {
      throw new RelayError('GS_ERR_TOKEN_FORGED', 'the token is not signed by our controller');
    }
    if (claims.gateway !== this.options.gateway) throw new RelayError('GS_ERR_TOKEN_WRONG_GATEWAY', `the token is for gateway ${claims.gateway}`);
    if (claims.holder !== expect.holder) throw new RelayError('GS_ERR_TOKEN_WRONG_MSID', `the token belongs to ${claims.holder}, not ${expect.holder}`);
    if (claims.target !== expect.target) throw new RelayError('GS_ERR_TOKEN_WRONG_MSID', `the token leads to ${claims.target}, not ${expect.target}`);
    const now = this.now();
    if (now > claims.expiresAt + this.skew) throw new RelayError('GS_ERR_TOKEN_EXPIRED', `the token expired ${now - claims.expiresAt} ms ago`);
    if (claims.issuedAt > now + this.skew) throw new RelayError('GS_ERR_TOKEN_EXPIRED', `the token is issued ${claims.issuedAt - now} ms in the future (clock skew?)`);
    this.sweep(now);
    const key = Buffer.from(claims.nonce).toString('hex');
    if (this.seen.has(key)) throw new RelayError('GS_ERR_TOKEN_REPLAYED', 'the token was already used');
    this.seen.set(key, claims.expiresAt + this.skew);
    return claims;
  }

  /** Forget nonces whose tokens can no longer pass the expiry check anyway; at most once a second. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    for (const [key, until] of this.seen) if (until < now) this.seen.delete(key);
  }
}
