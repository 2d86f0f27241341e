/**
 * The bundle codec (docs/dispatch.md, "Bundle"): the distributed code, an
 * optional target program, and the center-signed metadata that describes
 * both, addressed by the SHA-256 of the whole encoding.
 *
 * ```text
 *  0          8          12                 12+m       12+m+64
 * +----------+----------+------------------+----------+-------------+-----------------+
 * | GSBUNDL1 | m (u32)  | metadata (JSON)  | sig (64) | code bytes  | target bytes    |
 * +----------+----------+------------------+----------+-------------+-----------------+
 *   magic      BE         canonical UTF-8    Ed25519    code.size     target.size (or 0)
 * ```
 *
 * Metadata is canonical JSON with its keys in this order:
 * `format, name, version, createdAt, expiresAt, keyId, code, target, timeoutMs`,
 * where `code` is `{digest, size}` and `target` is `null` or
 * `{digest, size, path, args, mode}`. The signature covers
 * `"gatesock-dispatch-bundle-v1\n" ‖ metadata bytes`.
 *
 * Decoding is canonical and complete: the magic, `m`, the metadata's every
 * field and its exact spelling, and the total length (no trailing byte) are
 * checked, then the code's and target's digests and the target path's
 * safety. The signature, expiry and version are a separate step
 * ({@link verifyBundle}), because only the holder of the pinned center key
 * and the agent's memory of versions can judge them.
 */
import { DispatchError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import type { IdentityKey } from '../../../session/index.js';
import {
  SIGNATURE_LEN,
  canonicalJson,
  centerKeyId,
  checkArgs,
  checkDigest,
  checkHex,
  checkInt,
  checkPublicKey,
  checkTargetPath,
  concat,
  dispatchError,
  expectObject,
  malformed,
  parseCanonical,
  sha256Digest,
  timeNow,
  utf8,
  verifyEd25519,
  type Digest,
} from './common.js';

// ---------------------------------------------------------------------------
// Layout

const MAGIC_SIZE = 8;
const META_LEN_SIZE = 4;
/** Byte offset of each fixed field. */
const OFF = { MAGIC: 0, META_LEN: MAGIC_SIZE, META: MAGIC_SIZE + META_LEN_SIZE } as const;

/** The first 8 bytes of every bundle. @public */
export const BUNDLE_MAGIC = 'GSBUNDL1';
/** `format` of bundle metadata. @public */
export const BUNDLE_FORMAT = 'gatesock-bundle-v1';
/** Context string of a bundle signature. @public */
export const BUNDLE_CONTEXT = 'gatesock-dispatch-bundle-v1\n';
/** Most bytes of a bundle's metadata. @public */
export const MAX_BUNDLE_METADATA_BYTES = 64 * 1024;
/** Default most bytes of a whole bundle a decoder accepts (64 MiB). @public */
export const DEFAULT_MAX_BUNDLE_BYTES = 64 * 1024 * 1024;
/** Default lifetime of a new bundle: 30 days, in ms. @public */
export const DEFAULT_BUNDLE_TTL_MS = 30 * 24 * 3600 * 1000;
/** Default time one run may take: 60 s. @public */
export const DEFAULT_BUNDLE_TIMEOUT_MS = 60_000;
/** Longest `timeoutMs` (Node's timers overflow past 2^31 − 1 ms). @public */
export const MAX_BUNDLE_TIMEOUT_MS = 2 ** 31 - 1;

const MAGIC_BYTES = utf8(BUNDLE_MAGIC);
const CONTEXT_BYTES = utf8(BUNDLE_CONTEXT);
const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
/** Largest size field: bounded again by the total length. */
const MAX_SIZE = 2 ** 48;
const MAX_TIME = Number.MAX_SAFE_INTEGER;

// ---------------------------------------------------------------------------
// Types

/**
 * The target program a bundle carries: written at `path` under the agent's
 * work directory with `mode`, and started with `args` (unless a binding
 * gives others).
 * @public
 */
export interface BundleTarget {
  /** Relative path under the agent's work directory (see `unsafeTargetPathReason`). */
  path: string;
  /** Default arguments. */
  args: string[];
  /** File mode, 0 … 0o777 (no set-ID or sticky bits). */
  mode: number;
  /** Digest of the target's bytes. */
  digest: Digest;
  /** Bytes of the target. */
  size: number;
}

/**
 * The signed description of a bundle.
 * @public
 */
export interface BundleMetadata {
  /** Always `gatesock-bundle-v1`. */
  format: 'gatesock-bundle-v1';
  /** 1–64 of `[A-Za-z0-9._-]`. */
  name: string;
  /** ≥ 1; an agent refuses a version below the highest it ran for `name`. */
  version: number;
  /** Creation time, ms since the epoch. */
  createdAt: number;
  /** Expiry, ms since the epoch; refused after it. */
  expiresAt: number;
  /** Key ID of the center key that signed (16 lowercase hex). */
  keyId: string;
  /** The distributed JavaScript module. */
  code: { digest: Digest; size: number };
  /** The target program, or `null` for a bundle of code only. */
  target: BundleTarget | null;
  /** How long one run may take before the loader is killed, ms. */
  timeoutMs: number;
}

/**
 * What {@link createBundle} makes a bundle from.
 * @public
 */
export interface BundleInput {
  /** Bundle name, 1–64 of `[A-Za-z0-9._-]`. */
  name: string;
  /** Version, an integer ≥ 1. */
  version: number;
  /** The ES module (a string is JavaScript source, UTF-8 encoded). */
  code: Uint8Array | string;
  /** The target program; `mode` defaults to 0o755, `args` to none. */
  target?: { bytes: Uint8Array; path: string; args?: string[]; mode?: number };
  /** Lifetime in ms (default 30 days): `expiresAt = createdAt + ttlMs`. */
  ttlMs?: number;
  /** Time one run may take, ms (default 60 000). */
  timeoutMs?: number;
  /** Creation time, ms since the epoch (default `Date.now()`). */
  now?: number;
}

/**
 * A bundle: its metadata and signature, the code and target bytes, the
 * encoding and its digest. Made only by {@link createBundle} and
 * {@link decodeBundle}; {@link verifyBundle} refuses any other object.
 * @public
 */
export interface Bundle {
  /** The center-signed metadata: name, version, times, digests and limits. */
  readonly metadata: BundleMetadata;
  /** The center's Ed25519 signature over the metadata. */
  readonly signature: Uint8Array;
  /** The code bytes (the loader runs them). */
  readonly code: Uint8Array;
  /** The target program's bytes, or null for a bundle of code only. */
  readonly target: Uint8Array | null;
  /** The encoded bundle. */
  readonly bytes: Uint8Array;
  /** SHA-256 of `bytes`. */
  readonly digest: Digest;
}

/**
 * What an agent trusts when it checks a bundle.
 * @public
 */
export interface BundleTrust {
  /** The pinned center public key (32 bytes). */
  centerKey: Uint8Array;
  /** Current time, ms since the epoch (default `Date.now()`). */
  now?: number;
  /** Lowest acceptable version: the highest one already run for this name. */
  minVersion?: number;
}

/** Metadata bytes of every bundle this module made or decoded. */
const metadataBytesOf = new WeakMap<Bundle, Uint8Array>();

// ---------------------------------------------------------------------------
// Metadata codec

function buildMetadata(raw: unknown): BundleMetadata {
  const o = expectObject(raw, 'bundle metadata', ['format', 'name', 'version', 'createdAt', 'expiresAt', 'keyId', 'code', 'target', 'timeoutMs']);
  if (o.format !== BUNDLE_FORMAT) throw malformed(`bundle metadata format must be "${BUNDLE_FORMAT}"`);
  if (typeof o.name !== 'string' || !NAME_RE.test(o.name)) throw malformed('bundle name must be 1–64 of A-Z a-z 0-9 . _ -');
  checkInt(o.version, 'bundle version', 1, Number.MAX_SAFE_INTEGER);
  checkInt(o.createdAt, 'bundle createdAt', 0, MAX_TIME);
  checkInt(o.expiresAt, 'bundle expiresAt', 0, MAX_TIME);
  if (o.expiresAt < o.createdAt) throw malformed('bundle expiresAt is before createdAt');
  checkHex(o.keyId, 'bundle keyId', 16);
  const c = expectObject(o.code, 'bundle code', ['digest', 'size']);
  checkDigest(c.digest, 'bundle code digest');
  checkInt(c.size, 'bundle code size', 0, MAX_SIZE);
  let target: BundleTarget | null = null;
  if (o.target !== null) {
    const t = expectObject(o.target, 'bundle target', ['digest', 'size', 'path', 'args', 'mode']);
    checkDigest(t.digest, 'bundle target digest');
    checkInt(t.size, 'bundle target size', 0, MAX_SIZE);
    checkTargetPath(t.path);
    const args = checkArgs(t.args, 'bundle target args');
    checkInt(t.mode, 'bundle target mode', 0, 0o777);
    // Built in the canonical order digest, size, path, args, mode.
    target = { digest: t.digest, size: t.size, path: t.path, args, mode: t.mode };
  }
  checkInt(o.timeoutMs, 'bundle timeoutMs', 1, MAX_BUNDLE_TIMEOUT_MS);
  return {
    format: BUNDLE_FORMAT,
    name: o.name,
    version: o.version,
    createdAt: o.createdAt,
    expiresAt: o.expiresAt,
    keyId: o.keyId,
    code: { digest: c.digest, size: c.size },
    target,
    timeoutMs: o.timeoutMs,
  };
}

function freezeMetadata(m: BundleMetadata): BundleMetadata {
  Object.freeze(m.code);
  if (m.target) {
    Object.freeze(m.target.args);
    Object.freeze(m.target);
  }
  return Object.freeze(m);
}

// ---------------------------------------------------------------------------
// Encode, decode, verify

/**
 * Make and sign a bundle.
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` for a field outside the
 *   grammar, `GS_ERR_DISPATCH_UNSAFE_PATH` for an unsafe target path.
 * @example
 * ```ts
 * const key = generateIdentityKey();
 * const bundle = createBundle({ name: 'hello', version: 1, code: 'export default async (ctx) => ctx.log("hi")' }, key);
 * decodeBundle(bundle.bytes).digest === bundle.digest; // true
 * ```
 * @public
 */
export function createBundle(input: BundleInput, centerKey: IdentityKey): Bundle {
  if (typeof input !== 'object' || input === null) throw malformed('bundle input must be an object');
  const code = typeof input.code === 'string' ? utf8(input.code) : input.code;
  if (!(code instanceof Uint8Array)) throw malformed('bundle code must be a Uint8Array or a string');
  const createdAt = input.now ?? Date.now();
  const ttlMs = input.ttlMs ?? DEFAULT_BUNDLE_TTL_MS;
  checkInt(createdAt, 'bundle now', 0, MAX_TIME);
  checkInt(ttlMs, 'bundle ttlMs', 0, MAX_TIME - createdAt);
  let target: BundleTarget | null = null;
  let targetBytes: Uint8Array | null = null;
  if (input.target !== undefined) {
    const t = input.target;
    if (typeof t !== 'object' || t === null || !(t.bytes instanceof Uint8Array)) throw malformed('bundle target must be { bytes: Uint8Array, path, args?, mode? }');
    targetBytes = t.bytes.slice();
    target = { digest: sha256Digest(targetBytes), size: targetBytes.length, path: t.path, args: t.args ?? [], mode: t.mode ?? 0o755 };
  }
  const candidate = {
    format: BUNDLE_FORMAT,
    name: input.name,
    version: input.version,
    createdAt,
    expiresAt: createdAt + ttlMs,
    keyId: centerKeyId(centerKey.publicKey),
    code: { digest: sha256Digest(code), size: code.length },
    target,
    timeoutMs: input.timeoutMs ?? DEFAULT_BUNDLE_TIMEOUT_MS,
  };
  const metadata = buildMetadata(candidate);
  const metaBytes = canonicalJson(metadata);
  if (metaBytes.length > MAX_BUNDLE_METADATA_BYTES) throw malformed(`bundle metadata is ${metaBytes.length} bytes, more than ${MAX_BUNDLE_METADATA_BYTES}`);
  const signature = centerKey.sign(concat(CONTEXT_BYTES, metaBytes));
  const header = new Uint8Array(OFF.META);
  header.set(MAGIC_BYTES, OFF.MAGIC);
  new DataView(header.buffer).setUint32(OFF.META_LEN, metaBytes.length);
  const bytes = concat(header, metaBytes, signature, code, targetBytes ?? new Uint8Array(0));
  return finish(bytes, metaBytes, metadata, signature);
}

/** The frozen bundle over `bytes` (owned by us), remembered as ours. */
function finish(bytes: Uint8Array, metaBytes: Uint8Array, metadata: BundleMetadata, signature: Uint8Array): Bundle {
  const codeStart = OFF.META + metaBytes.length + SIGNATURE_LEN;
  const codeEnd = codeStart + metadata.code.size;
  const bundle: Bundle = Object.freeze({
    metadata: freezeMetadata(metadata),
    signature,
    code: bytes.subarray(codeStart, codeEnd),
    target: metadata.target ? bytes.subarray(codeEnd, codeEnd + metadata.target.size) : null,
    bytes,
    digest: sha256Digest(bytes),
  });
  metadataBytesOf.set(bundle, metaBytes);
  return bundle;
}

/**
 * Decode a bundle: its structure, canonical metadata, the code's and
 * target's sizes and digests, and the target path's safety. Does not check
 * the signature, expiry or version: {@link verifyBundle} does. The bytes are
 * copied.
 * @param options - `maxBytes`: the largest bundle accepted (default 64 MiB).
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED`,
 *   `GS_ERR_DISPATCH_DIGEST_MISMATCH` or `GS_ERR_DISPATCH_UNSAFE_PATH`.
 * @public
 */
export function decodeBundle(bytes: Uint8Array, options: { maxBytes?: number } = {}): Bundle {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BUNDLE_BYTES;
  checkOption(Number.isSafeInteger(maxBytes) && maxBytes > 0, 'maxBytes', 'must be a positive integer');
  if (!(bytes instanceof Uint8Array)) throw malformed('a bundle must be a Uint8Array');
  if (bytes.length > maxBytes) throw malformed(`bundle is ${bytes.length} bytes, more than the limit of ${maxBytes}`);
  if (bytes.length < OFF.META + SIGNATURE_LEN) throw malformed(`bundle is ${bytes.length} bytes, shorter than its fixed fields`);
  for (let i = 0; i < MAGIC_SIZE; i++) if (bytes[OFF.MAGIC + i] !== MAGIC_BYTES[i]) throw malformed(`bundle does not start with "${BUNDLE_MAGIC}"`);
  const own = bytes.slice();
  const m = new DataView(own.buffer).getUint32(OFF.META_LEN);
  if (m > MAX_BUNDLE_METADATA_BYTES) throw malformed(`bundle metadata length ${m} is more than ${MAX_BUNDLE_METADATA_BYTES}`);
  if (own.length < OFF.META + m + SIGNATURE_LEN) throw malformed('bundle is shorter than its metadata and signature');
  const metaBytes = own.subarray(OFF.META, OFF.META + m);
  const metadata = parseCanonical(metaBytes, 'bundle metadata', buildMetadata);
  const expected = OFF.META + m + SIGNATURE_LEN + metadata.code.size + (metadata.target?.size ?? 0);
  if (own.length !== expected) throw malformed(`bundle is ${own.length} bytes; its metadata says ${expected}`);
  const signature = own.subarray(OFF.META + m, OFF.META + m + SIGNATURE_LEN);
  const bundle = finish(own, metaBytes, metadata, signature);
  if (sha256Digest(bundle.code) !== metadata.code.digest) throw dispatchError('GS_ERR_DISPATCH_DIGEST_MISMATCH', `code of bundle ${metadata.name} does not match its digest`);
  if (bundle.target && sha256Digest(bundle.target) !== metadata.target!.digest) {
    throw dispatchError('GS_ERR_DISPATCH_DIGEST_MISMATCH', `target of bundle ${metadata.name} does not match its digest`);
  }
  return bundle;
}

/**
 * Check a decoded bundle against the pinned center key: the key ID and the
 * signature, then the expiry, then the version. Cheapest refusal of a
 * forgery first; a genuine old bundle is refused after.
 * @throws DispatchError `GS_ERR_DISPATCH_BAD_SIGNATURE` (another signer or a
 *   bad signature), `GS_ERR_DISPATCH_EXPIRED` (`now > expiresAt`),
 *   `GS_ERR_DISPATCH_ROLLBACK` (`version < minVersion`),
 *   `GS_ERR_DISPATCH_MALFORMED` (not a bundle from this module, a bad key).
 * @public
 */
export function verifyBundle(bundle: Bundle, trust: BundleTrust): void {
  const metaBytes = metadataBytesOf.get(bundle);
  if (metaBytes === undefined) throw malformed('verifyBundle takes a bundle from decodeBundle or createBundle');
  const centerKey = checkPublicKey(trust.centerKey);
  const md = bundle.metadata;
  const keyId = centerKeyId(centerKey);
  if (md.keyId !== keyId) {
    throw new DispatchError('GS_ERR_DISPATCH_BAD_SIGNATURE', `bundle ${md.name} v${md.version} is signed by key ${md.keyId}, not by the pinned center key ${keyId}`);
  }
  if (!verifyEd25519(bundle.signature, concat(CONTEXT_BYTES, metaBytes), centerKey)) {
    throw new DispatchError('GS_ERR_DISPATCH_BAD_SIGNATURE', `signature of bundle ${md.name} v${md.version} does not verify under key ${keyId}`);
  }
  const now = timeNow(trust.now, 'trust.now');
  checkOption(trust.minVersion === undefined || (Number.isSafeInteger(trust.minVersion) && trust.minVersion >= 0), 'trust.minVersion', 'must be a non-negative integer');
  if (now > md.expiresAt) {
    throw new DispatchError('GS_ERR_DISPATCH_EXPIRED', `bundle ${md.name} v${md.version} expired at ${new Date(md.expiresAt).toISOString()}`);
  }
  if (trust.minVersion !== undefined && md.version < trust.minVersion) {
    throw new DispatchError('GS_ERR_DISPATCH_ROLLBACK', `bundle ${md.name} v${md.version} is older than v${trust.minVersion}, already run here (a rollback)`);
  }
}
