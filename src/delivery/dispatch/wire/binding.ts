/**
 * The evidence binding (docs/dispatch.md, "Evidence binding"): the center's
 * signed order to one agent for one run of one dispatch, carrying the fresh
 * evidence value the agent's report must echo.
 *
 * ```text
 * encoded = base64url( canonical JSON ‖ Ed25519 signature (64) )
 * JSON    = {"format":"gatesock-binding-v1","dispatchId":…,"run":…,"agentMsid":…,
 *            "bundleDigest":…,"evidence":…,"args":…,"issuedAt":…,"expiresAt":…}
 * signed  = "gatesock-dispatch-binding-v1\n" ‖ JSON
 * ```
 *
 * `dispatchId` is 32 lowercase hex, `run` 0 for the dispatch and n for its
 * n-th re-run, `evidence` 64 lowercase hex, `args` the target's arguments
 * (`null`: the bundle's). The binding travels only inside the encrypted
 * relay connection and the loader's IPC pipe, never on a command line or
 * on disk.
 */
import { DispatchError } from '../../../errors/index.js';
import type { IdentityKey } from '../../../session/index.js';
import {
  checkArgs,
  checkDigest,
  checkHex,
  checkInt,
  checkMsid,
  checkPublicKey,
  envelopeSigned,
  expectObject,
  malformed,
  openEnvelope,
  sealEnvelope,
  timeNow,
  utf8,
  type Digest,
  type EnvelopeKind,
  type EnvelopeParts,
} from './common.js';

/** `format` of a binding. @public */
export const BINDING_FORMAT = 'gatesock-binding-v1';
/** Context string of a binding signature. @public */
export const BINDING_CONTEXT = 'gatesock-dispatch-binding-v1\n';
/**
 * Most bytes of a binding's JSON; its text form (≤ 43 776 characters) then
 * fits a channel message header.
 * @public
 */
export const MAX_BINDING_JSON_BYTES = 32 * 1024;
/** Largest run number. @public */
export const MAX_RUN = 2 ** 32 - 1;


/**
 * The fields of a binding.
 * @public
 */
export interface BindingFields {
  /** 32 lowercase hex digits. */
  dispatchId: string;
  /** 0 for the dispatch, n for its n-th re-run. */
  run: number;
  /** The agent this order is for. */
  agentMsid: string;
  /** The bundle to run. */
  bundleDigest: Digest;
  /** 64 lowercase hex digits: fresh random bytes from the center. */
  evidence: string;
  /** Target arguments; `null` means the bundle's. */
  args: string[] | null;
  /** Issue time, ms since the epoch. */
  issuedAt: number;
  /** Expiry, ms since the epoch; an agent refuses the order after it. */
  expiresAt: number;
}

/**
 * A signed binding: its fields and its text form.
 * @public
 */
export interface SignedBinding {
  /** The binding's fields, as signed. */
  readonly fields: BindingFields;
  /** base64url(canonical JSON ‖ 64-byte signature). */
  readonly encoded: string;
}

const BINDING: EnvelopeKind<BindingFields> = {
  what: 'binding',
  format: BINDING_FORMAT,
  keys: ['format', 'dispatchId', 'run', 'agentMsid', 'bundleDigest', 'evidence', 'args', 'issuedAt', 'expiresAt'],
  context: utf8(BINDING_CONTEXT),
  maxJsonBytes: MAX_BINDING_JSON_BYTES,
  build: buildBinding,
};

/** Parts of every binding made or decoded here. */
const partsOf = new WeakMap<SignedBinding, EnvelopeParts<BindingFields>>();

function buildBinding(raw: unknown): BindingFields & { format: typeof BINDING_FORMAT } {
  const o = expectObject(raw, 'binding', BINDING.keys);
  if (o.format !== BINDING_FORMAT) throw malformed(`binding format must be "${BINDING_FORMAT}"`);
  checkHex(o.dispatchId, 'binding dispatchId', 32);
  checkInt(o.run, 'binding run', 0, MAX_RUN);
  checkMsid(o.agentMsid, 'binding agentMsid');
  checkDigest(o.bundleDigest, 'binding bundleDigest');
  checkHex(o.evidence, 'binding evidence', 64);
  const args = o.args === null ? null : checkArgs(o.args, 'binding args');
  checkInt(o.issuedAt, 'binding issuedAt', 0, Number.MAX_SAFE_INTEGER);
  checkInt(o.expiresAt, 'binding expiresAt', 0, Number.MAX_SAFE_INTEGER);
  if (o.expiresAt < o.issuedAt) throw malformed('binding expiresAt is before issuedAt');
  return {
    format: BINDING_FORMAT,
    dispatchId: o.dispatchId,
    run: o.run,
    agentMsid: o.agentMsid,
    bundleDigest: o.bundleDigest,
    evidence: o.evidence,
    args,
    issuedAt: o.issuedAt,
    expiresAt: o.expiresAt,
  };
}

/** The public face of an envelope's parts, remembered as ours. */
function remember(parts: EnvelopeParts<BindingFields>): SignedBinding {
  const b: SignedBinding = Object.freeze({ fields: parts.fields, encoded: parts.encoded });
  partsOf.set(b, parts);
  return b;
}

/**
 * Sign a binding with the center key.
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` for a field outside the grammar.
 * @public
 */
export function signBinding(fields: BindingFields, centerKey: IdentityKey): SignedBinding {
  return remember(sealEnvelope(BINDING, fields, (m) => centerKey.sign(m)));
}

/**
 * Decode a binding's text form: canonical base64url, canonical JSON, every
 * field. Does not check the signature ({@link verifyBinding} does).
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED`.
 * @public
 */
export function decodeBinding(encoded: string): SignedBinding {
  return remember(openEnvelope(BINDING, encoded));
}

/**
 * Check a binding: the center's signature, that it names this agent, and
 * that it has not expired. Returns the fields it checked (a binding not
 * made here is decoded again from its `encoded` text, so the fields
 * returned are always the signed ones).
 * @throws DispatchError `GS_ERR_DISPATCH_BAD_SIGNATURE`,
 *   `GS_ERR_DISPATCH_WRONG_AGENT`, `GS_ERR_DISPATCH_EXPIRED`, or
 *   `GS_ERR_DISPATCH_MALFORMED`.
 * @public
 */
export function verifyBinding(b: SignedBinding, trust: { centerKey: Uint8Array; agentMsid: string; now?: number }): BindingFields {
  const parts = partsOf.get(b) ?? openEnvelope(BINDING, (b as { encoded?: unknown } | null)?.encoded);
  const f = parts.fields;
  if (!envelopeSigned(BINDING, parts, checkPublicKey(trust.centerKey))) {
    throw new DispatchError('GS_ERR_DISPATCH_BAD_SIGNATURE', `binding for dispatch ${f.dispatchId} run ${f.run} is not signed by the pinned center key`);
  }
  if (f.agentMsid !== trust.agentMsid) {
    throw new DispatchError('GS_ERR_DISPATCH_WRONG_AGENT', `binding for dispatch ${f.dispatchId} run ${f.run} names agent ${f.agentMsid}, not this agent (${trust.agentMsid})`);
  }
  const now = timeNow(trust.now, 'trust.now');
  if (now > f.expiresAt) {
    throw new DispatchError('GS_ERR_DISPATCH_EXPIRED', `binding for dispatch ${f.dispatchId} run ${f.run} expired at ${new Date(f.expiresAt).toISOString()}`);
  }
  return f;
}
