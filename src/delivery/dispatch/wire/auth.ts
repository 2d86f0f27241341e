/**
 * Channel authentication (docs/dispatch.md, "Channel messages"): the center
 * proves, once per connection, that it holds the center key the agent pins,
 * so that the agent can obey the unsigned control messages (`ack`,
 * `cancel`) on that channel only.
 *
 * ```text
 * agent  → hello { …, challenge }      challenge = 32 fresh random bytes, 64 lowercase hex, per connection
 * center → auth  { signature }         signature = base64url( Ed25519 by the center key over `signed` ), 64 bytes
 * signed = "gatesock-dispatch-channel-v1\n" ‖ {"challenge":…,"agentMsid":…}   (canonical JSON, this key order)
 * ```
 *
 * The challenge is the agent's own and new for every connection, so an
 * `auth` recorded on one connection is worthless on any other; the agent's
 * MSID inside the signed bytes keeps an `auth` for one agent from serving
 * another that happened to draw the same challenge. `run`/`rerun` do not
 * depend on it: each carries its own signed binding.
 */
import { getCryptoBackend, type IdentityKey } from '../../../session/index.js';
import { SIGNATURE_LEN, canonicalJson, checkHex, checkMsid, checkPublicKey, concat, fromBase64url, malformed, toBase64url, toHex, utf8, verifyEd25519 } from './common.js';

/** Context string of a channel authentication signature. @public */
export const CHANNEL_AUTH_CONTEXT = 'gatesock-dispatch-channel-v1\n';
/** Hex characters of a channel challenge (32 bytes). @public */
export const CHANNEL_CHALLENGE_HEX = 64;

const CONTEXT = utf8(CHANNEL_AUTH_CONTEXT);

/**
 * What a channel authentication signs: the agent's challenge for this
 * connection and the agent's MSID.
 * @public
 */
export interface ChannelAuthInput {
  /** 64 lowercase hex: the `challenge` of the agent's `hello`. */
  challenge: string;
  /** The agent the center believes it talks to (its `hello` says the same). */
  agentMsid: string;
}

/**
 * A fresh channel challenge: 32 random bytes as 64 lowercase hex.
 * @public
 */
export function newChannelChallenge(): string {
  return toHex(getCryptoBackend().randomBytes(CHANNEL_CHALLENGE_HEX / 2));
}

/** The signed bytes; MALFORMED for a challenge or MSID outside the grammar. */
function signedBytes(input: ChannelAuthInput): Uint8Array {
  if (typeof input !== 'object' || input === null) throw malformed('channel auth input must be an object');
  checkHex(input.challenge, 'channel challenge', CHANNEL_CHALLENGE_HEX);
  checkMsid(input.agentMsid, 'channel agentMsid');
  return concat(CONTEXT, canonicalJson({ challenge: input.challenge, agentMsid: input.agentMsid }));
}

/**
 * The center's answer to an agent's `hello`: the `signature` of an `auth`
 * message (base64url of the 64-byte Ed25519 signature).
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` for a challenge that is
 *   not 64 lowercase hex or an MSID outside the grammar.
 * @public
 */
export function signChannelAuth(input: ChannelAuthInput, centerKey: IdentityKey): string {
  return toBase64url(centerKey.sign(signedBytes(input)));
}

/**
 * True when `signature` (an `auth` message's) is the pinned center key's
 * over this connection's challenge and this agent's MSID. Never throws for
 * a bad signature text (false); throws `GS_ERR_DISPATCH_MALFORMED` only for
 * the caller's own inputs (challenge, MSID, a key that is not 32 bytes).
 * @public
 */
export function verifyChannelAuth(signature: unknown, input: ChannelAuthInput, centerKey: Uint8Array): boolean {
  const message = signedBytes(input);
  const key = checkPublicKey(centerKey);
  let sig: Uint8Array;
  try {
    sig = fromBase64url(signature, 'auth signature', SIGNATURE_LEN);
  } catch {
    return false;
  }
  return sig.length === SIGNATURE_LEN && verifyEd25519(sig, message, key);
}
