/**
 * Redirect tokens and client tickets: the layout round-trips, and every bad
 * case is refused with its own code (forged, expired, replayed, wrong
 * gateway, wrong MSID, malformed).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createServerIdentity, generateIdentityKey, getCryptoBackend } from '../../src/session/index.js';
import { TOKEN_LEN, TokenChecker, decodeToken, encodeToken, type TokenClaims } from '../../src/relay/token.js';

const crypto = getCryptoBackend('auto');
const controllerKey = generateIdentityKey();
const otherKey = generateIdentityKey();
const gateway = createServerIdentity().msid;
const otherGateway = createServerIdentity().msid;
const server = createServerIdentity().msid;
const client = createServerIdentity().msid;

function claims(extra: Partial<TokenClaims> = {}, now = Date.now()): TokenClaims {
  return { kind: 'redirect', issuedAt: now, expiresAt: now + 60_000, nonce: crypto.randomBytes(16), gateway, holder: server, target: server, ...extra };
}

function checker(now?: () => number): TokenChecker {
  return new TokenChecker({ gateway, controllerKeys: () => [controllerKey.publicKey], verify: (s, m, k) => crypto.ed25519.verify(s, m, k), now });
}

const sign = (key = controllerKey) => (m: Uint8Array) => key.sign(m);

describe('tokens', () => {
  it('encode → decode gives the claims back', () => {
    const c = claims({ kind: 'ticket', holder: client });
    const t = encodeToken(c, sign());
    expect(t.length).toBe(TOKEN_LEN);
    const d = decodeToken(t);
    expect({ ...d, signature: undefined }).toEqual({ ...c, signature: undefined });
  });

  it('a good token passes once, then is a replay', () => {
    const chk = checker();
    const t = encodeToken(claims(), sign());
    expect(chk.check(t, { kind: 'redirect', holder: server, target: server }).holder).toBe(server);
    expect(() => chk.check(t, { kind: 'redirect', holder: server, target: server })).toThrow(expect.objectContaining({ code: 'GS_ERR_TOKEN_REPLAYED' }));
  });

  it.each([
    ['forged (another key)', () => encodeToken(claims(), sign(otherKey)), 'GS_ERR_TOKEN_FORGED'],
    ['forged (a flipped bit)', () => flip(encodeToken(claims(), sign()), 40), 'GS_ERR_TOKEN_FORGED'],
    ['for another gateway', () => encodeToken(claims({ gateway: otherGateway }), sign()), 'GS_ERR_TOKEN_WRONG_GATEWAY'],
    ['of another server', () => encodeToken(claims({ holder: client, target: client }), sign()), 'GS_ERR_TOKEN_WRONG_MSID'],
    ['expired', () => encodeToken(claims({}, Date.now() - 120_000), sign()), 'GS_ERR_TOKEN_EXPIRED'],
    ['issued in the future', () => encodeToken(claims({}, Date.now() + 120_000), sign()), 'GS_ERR_TOKEN_EXPIRED'],
    ['a ticket where a redirect token is needed', () => encodeToken(claims({ kind: 'ticket' }), sign()), 'GS_ERR_TOKEN_MALFORMED'],
    ['too short', () => encodeToken(claims(), sign()).subarray(1), 'GS_ERR_TOKEN_MALFORMED'],
    ['of an unknown version', () => setByte(encodeToken(claims(), sign()), 0, 9), 'GS_ERR_TOKEN_MALFORMED'],
  ])('refuses a token %s', (_name, make, code) => {
    expect(() => checker().check(make(), { kind: 'redirect', holder: server, target: server })).toThrow(expect.objectContaining({ code }));
  });

  it('a ticket is bound to its client and its server', () => {
    const chk = checker();
    const t = encodeToken(claims({ kind: 'ticket', holder: client, target: server }), sign());
    expect(() => chk.check(t, { kind: 'ticket', holder: server, target: server })).toThrow(expect.objectContaining({ code: 'GS_ERR_TOKEN_WRONG_MSID' }));
    expect(() => chk.check(t, { kind: 'ticket', holder: client, target: client })).toThrow(expect.objectContaining({ code: 'GS_ERR_TOKEN_WRONG_MSID' }));
    // Refusals do not spend it.
    expect(chk.check(t, { kind: 'ticket', holder: client, target: server }).target).toBe(server);
  });

  it('forgets spent nonces only once their tokens have expired', () => {
    let now = Date.now();
    const chk = checker(() => now);
    for (let i = 0; i < 100; i++) chk.check(encodeToken(claims({}, now), sign()), { kind: 'redirect', holder: server, target: server });
    expect(chk.remembered).toBe(100);
    now += 30_000;
    chk.check(encodeToken(claims({}, now), sign()), { kind: 'redirect', holder: server, target: server });
    expect(chk.remembered).toBe(101);
    now += 60_000;
    chk.check(encodeToken(claims({}, now), sign()), { kind: 'redirect', holder: server, target: server });
    expect(chk.remembered).toBe(2);
  });

  it('random bytes are refused with a token code, never a crash', () => {
    const chk = checker();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (bytes) => {
        try {
          chk.check(bytes, { kind: 'redirect', holder: server, target: server });
          return false;
        } catch (e) {
          return /^GS_ERR_TOKEN_(MALFORMED|FORGED)$/.test((e as { code: string }).code);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

function flip(t: Uint8Array, i: number): Uint8Array {
  const c = t.slice();
  c[i]! ^= 1;
  return c;
}
function setByte(t: Uint8Array, i: number, v: number): Uint8Array {
  const c = t.slice();
  c[i] = v;
  return c;
}
