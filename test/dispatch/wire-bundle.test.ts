/**
 * Bundle and binding codecs: round trips, golden layout, every refusal the
 * decoders and verifiers promise (docs/dispatch.md, "Bundle", "Evidence binding").
 */
import { describe, expect, it } from 'vitest';
import { createServerIdentity, generateIdentityKey } from '../../src/session/index.js';
import {
  BUNDLE_MAGIC,
  centerKeyId,
  checkTargetPath,
  createBundle,
  decodeBinding,
  decodeBundle,
  evidenceHash,
  fromBase64url,
  newDispatchId,
  newEvidence,
  parseCenterKey,
  sha256Digest,
  signBinding,
  toBase64url,
  unsafeTargetPathReason,
  verifyBinding,
  verifyBundle,
  type BindingFields,
  type Bundle,
} from '../../src/delivery/dispatch/wire/index.js';
import { codeOf } from './wire-helpers.js';
import { formatPublicKey } from '../../src/delivery/update/index.js';

const center = generateIdentityKey();
const other = generateIdentityKey();
const agent = createServerIdentity();
const NOW = 1_800_000_000_000;
const code = 'export default async (ctx) => { await ctx.spawnTarget(); }';
const target = { bytes: new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]), path: 'bin/tool', args: ['--yes', 'é'] };


/** Rebuild a bundle with its metadata JSON replaced (signature kept). */
function withMetadata(b: Bundle, json: string): Uint8Array {
  const meta = new TextEncoder().encode(json);
  const out = new Uint8Array(12 + meta.length + 64 + b.code.length + (b.target?.length ?? 0));
  out.set(new TextEncoder().encode(BUNDLE_MAGIC));
  new DataView(out.buffer).setUint32(8, meta.length);
  out.set(meta, 12);
  out.set(b.signature, 12 + meta.length);
  out.set(b.code, 12 + meta.length + 64);
  if (b.target) out.set(b.target, 12 + meta.length + 64 + b.code.length);
  return out;
}

describe('common helpers', () => {
  it('digests, IDs and evidence have their canonical forms', () => {
    expect(sha256Digest(new Uint8Array())).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(newDispatchId()).toMatch(/^[0-9a-f]{32}$/);
    const e = newEvidence();
    expect(e).toMatch(/^[0-9a-f]{64}$/);
    expect(newEvidence()).not.toBe(e);
    expect(evidenceHash(e)).toBe(sha256Digest(new TextEncoder().encode(e)));
    expect(codeOf(() => evidenceHash('ABC'))).toBe('GS_ERR_DISPATCH_MALFORMED');
  });

  it('base64url is canonical', () => {
    const b = new Uint8Array([1, 2, 3, 4]);
    expect(fromBase64url(toBase64url(b), 'x', 4)).toEqual(b);
    expect(toBase64url(b)).toBe('AQIDBA');
    expect(codeOf(() => fromBase64url('AQIDBB', 'x', 4))).toBe('GS_ERR_DISPATCH_MALFORMED'); // stray low bits
    expect(codeOf(() => fromBase64url('AQIDBA==', 'x', 4))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(codeOf(() => fromBase64url('AQID+A', 'x', 4))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(codeOf(() => fromBase64url('AQIDBA', 'x', 3))).toBe('GS_ERR_DISPATCH_MALFORMED');
  });

  it('center keys: key ID and text form are the updater\'s', () => {
    const pk = center.publicKey;
    expect(centerKeyId(pk)).toMatch(/^[0-9a-f]{16}$/);
    expect(parseCenterKey(formatPublicKey(pk))).toEqual(pk);
    expect(parseCenterKey(pk)).toEqual(pk);
    expect(codeOf(() => parseCenterKey('ed25519:xyz'))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(codeOf(() => parseCenterKey(new Uint8Array(31)))).toBe('GS_ERR_DISPATCH_MALFORMED');
  });

  it('target paths: relative, inside, no tricks', () => {
    for (const ok of ['a', 'bin/tool', 'a.b/c-d_e', 'x/'.repeat(100) + 'y', 'データ/ツール']) expect(unsafeTargetPathReason(ok)).toBeNull();
    for (const bad of ['', '/etc/passwd', '../x', 'a/../b', 'a/..', './a', 'a/./b', 'a//b', 'a/', 'a\\b', 'a\0b', 'C:x', 'a\nb', 'x'.repeat(256), '\ud800', 7]) {
      expect(unsafeTargetPathReason(bad), JSON.stringify(bad)).not.toBeNull();
      expect(codeOf(() => checkTargetPath(bad))).toBe('GS_ERR_DISPATCH_UNSAFE_PATH');
    }
    expect(unsafeTargetPathReason('é'.repeat(127))).toBeNull(); // 254 bytes
    expect(unsafeTargetPathReason('é'.repeat(128))).not.toBeNull(); // 256 bytes
  });
});

describe('bundle', () => {
  const bundle = createBundle({ name: 'fix-1.2', version: 3, code, target, ttlMs: 3_600_000, timeoutMs: 5000, now: NOW }, center);

  it('encodes the documented layout and metadata', () => {
    const b = bundle.bytes;
    expect(new TextDecoder().decode(b.subarray(0, 8))).toBe('GSBUNDL1');
    const m = new DataView(b.buffer, b.byteOffset).getUint32(8);
    const json = new TextDecoder().decode(b.subarray(12, 12 + m));
    expect(json).toBe(
      JSON.stringify({
        format: 'gatesock-bundle-v1',
        name: 'fix-1.2',
        version: 3,
        createdAt: NOW,
        expiresAt: NOW + 3_600_000,
        keyId: centerKeyId(center.publicKey),
        code: { digest: sha256Digest(new TextEncoder().encode(code)), size: Buffer.byteLength(code) },
        target: { digest: sha256Digest(target.bytes), size: 7, path: 'bin/tool', args: ['--yes', 'é'], mode: 0o755 },
        timeoutMs: 5000,
      }),
    );
    expect(b.length).toBe(12 + m + 64 + Buffer.byteLength(code) + 7);
    expect(bundle.digest).toBe(sha256Digest(b));
    expect(new TextDecoder().decode(bundle.code)).toBe(code);
    expect(bundle.target).toEqual(target.bytes);
  });

  it('round-trips and verifies', () => {
    const d = decodeBundle(bundle.bytes);
    expect(d.metadata).toEqual(bundle.metadata);
    expect(d.digest).toBe(bundle.digest);
    expect(d.target).toEqual(target.bytes);
    expect(() => verifyBundle(d, { centerKey: center.publicKey, now: NOW + 1000, minVersion: 3 })).not.toThrow();
    expect(Object.isFrozen(d.metadata)).toBe(true);
  });

  it('a bundle without a target', () => {
    const b = createBundle({ name: 'noop', version: 1, code: new Uint8Array(0), now: NOW }, center);
    const d = decodeBundle(b.bytes);
    expect(d.target).toBeNull();
    expect(d.metadata.target).toBeNull();
    expect(d.code.length).toBe(0);
    verifyBundle(d, { centerKey: center.publicKey, now: NOW });
  });

  it('refuses another signer, a bad signature, expiry and rollback', () => {
    const d = decodeBundle(bundle.bytes);
    expect(codeOf(() => verifyBundle(d, { centerKey: other.publicKey, now: NOW }))).toBe('GS_ERR_DISPATCH_BAD_SIGNATURE');
    expect(codeOf(() => verifyBundle(d, { centerKey: center.publicKey, now: NOW + 3_600_001 }))).toBe('GS_ERR_DISPATCH_EXPIRED');
    expect(codeOf(() => verifyBundle(d, { centerKey: center.publicKey, now: NOW, minVersion: 4 }))).toBe('GS_ERR_DISPATCH_ROLLBACK');
    // Same key ID, forged signature.
    const forged = bundle.bytes.slice();
    const m = new DataView(forged.buffer).getUint32(8);
    forged[12 + m + 10]! ^= 1;
    expect(codeOf(() => verifyBundle(decodeBundle(forged), { centerKey: center.publicKey, now: NOW }))).toBe('GS_ERR_DISPATCH_BAD_SIGNATURE');
    // An object that did not come from the decoder.
    expect(codeOf(() => verifyBundle({ ...d }, { centerKey: center.publicKey, now: NOW }))).toBe('GS_ERR_DISPATCH_MALFORMED');
  });

  it('refuses a metadata change under the old signature', () => {
    const json = JSON.stringify({ ...bundle.metadata, version: 4 });
    const d = decodeBundle(withMetadata(bundle, json));
    expect(d.metadata.version).toBe(4);
    expect(codeOf(() => verifyBundle(d, { centerKey: center.publicKey, now: NOW }))).toBe('GS_ERR_DISPATCH_BAD_SIGNATURE');
  });

  it('refuses non-canonical metadata', () => {
    const md = bundle.metadata;
    const variants = [
      JSON.stringify(md, null, 1),
      JSON.stringify({ ...md, extra: 1 }),
      JSON.stringify(md).replace('"version":3', '"version":3.0'),
      JSON.stringify(md).replace('"fix-1.2"', '"fix\\u002d1.2"'),
      JSON.stringify(md).replace('{"format"', '{"name":"x","format"'),
      JSON.stringify({ format: md.format, version: md.version, name: md.name, createdAt: md.createdAt, expiresAt: md.expiresAt, keyId: md.keyId, code: md.code, target: md.target, timeoutMs: md.timeoutMs }),
    ];
    for (const v of variants) expect(codeOf(() => decodeBundle(withMetadata(bundle, v))), v).toBe('GS_ERR_DISPATCH_MALFORMED');
  });

  it('refuses bad fields', () => {
    const md = bundle.metadata;
    const cases: [unknown, string][] = [
      [{ ...md, format: 'gatesock-bundle-v2' }, 'GS_ERR_DISPATCH_MALFORMED'],
      [{ ...md, name: 'a b' }, 'GS_ERR_DISPATCH_MALFORMED'],
      [{ ...md, name: 'x'.repeat(65) }, 'GS_ERR_DISPATCH_MALFORMED'],
      [{ ...md, version: 0 }, 'GS_ERR_DISPATCH_MALFORMED'],
      [{ ...md, version: 1.5 }, 'GS_ERR_DISPATCH_MALFORMED'],
      [{ ...md, expiresAt: md.createdAt - 1 }, 'GS_ERR_DISPATCH_MALFORMED'],
      [{ ...md, keyId: md.keyId.toUpperCase() + 'A' }, 'GS_ERR_DISPATCH_MALFORMED'],
      [{ ...md, timeoutMs: 0 }, 'GS_ERR_DISPATCH_MALFORMED'],
      [{ ...md, target: { ...md.target, path: '../../etc/cron.d/x' } }, 'GS_ERR_DISPATCH_UNSAFE_PATH'],
      [{ ...md, target: { ...md.target, mode: 0o4755 } }, 'GS_ERR_DISPATCH_MALFORMED'],
      [{ ...md, target: { ...md.target, args: ['a\0b'] } }, 'GS_ERR_DISPATCH_MALFORMED'],
      [{ ...md, target: { ...md.target, args: 'x' } }, 'GS_ERR_DISPATCH_MALFORMED'],
      [{ ...md, code: { ...md.code, digest: md.code.digest.toUpperCase() } }, 'GS_ERR_DISPATCH_MALFORMED'],
      [[1, 2], 'GS_ERR_DISPATCH_MALFORMED'],
    ];
    for (const [m, expected] of cases) expect(codeOf(() => decodeBundle(withMetadata(bundle, JSON.stringify(m)))), JSON.stringify(m)).toBe(expected);
  });

  it('refuses wrong digests, lengths and structure', () => {
    const b = bundle.bytes;
    const last = b.slice();
    last[last.length - 1]! ^= 0xff; // target byte
    expect(codeOf(() => decodeBundle(last))).toBe('GS_ERR_DISPATCH_DIGEST_MISMATCH');
    const m = new DataView(b.buffer, b.byteOffset).getUint32(8);
    const codeByte = b.slice();
    codeByte[12 + m + 64]! ^= 1;
    expect(codeOf(() => decodeBundle(codeByte))).toBe('GS_ERR_DISPATCH_DIGEST_MISMATCH');
    expect(codeOf(() => decodeBundle(new Uint8Array([...b, 0])))).toBe('GS_ERR_DISPATCH_MALFORMED');
    for (let n = 0; n < b.length; n += 7) expect(codeOf(() => decodeBundle(b.subarray(0, n)))).toBe('GS_ERR_DISPATCH_MALFORMED');
    const magic = b.slice();
    magic[7] = 0x32;
    expect(codeOf(() => decodeBundle(magic))).toBe('GS_ERR_DISPATCH_MALFORMED');
    const hugeM = b.slice();
    new DataView(hugeM.buffer).setUint32(8, 0xffffffff);
    expect(codeOf(() => decodeBundle(hugeM))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(codeOf(() => decodeBundle(b, { maxBytes: b.length - 1 }))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(codeOf(() => decodeBundle('x' as unknown as Uint8Array))).toBe('GS_ERR_DISPATCH_MALFORMED');
  });

  it('create refuses bad input with the decoder\'s errors', () => {
    expect(codeOf(() => createBundle({ name: 'x', version: 1, code, target: { ...target, path: '/bin/sh' } }, center))).toBe('GS_ERR_DISPATCH_UNSAFE_PATH');
    expect(codeOf(() => createBundle({ name: '', version: 1, code }, center))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(codeOf(() => createBundle({ name: 'x', version: -1, code }, center))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(codeOf(() => createBundle({ name: 'x', version: 1, code: 5 as unknown as string }, center))).toBe('GS_ERR_DISPATCH_MALFORMED');
    const b = createBundle({ name: 'x', version: 1, code }, center);
    expect(b.metadata.timeoutMs).toBe(60_000);
    expect(b.metadata.expiresAt - b.metadata.createdAt).toBe(30 * 24 * 3600 * 1000);
  });
});

describe('binding', () => {
  const fields: BindingFields = {
    dispatchId: newDispatchId(),
    run: 0,
    agentMsid: agent.msid,
    bundleDigest: sha256Digest(new Uint8Array([1])),
    evidence: newEvidence(),
    args: ['--fast'],
    issuedAt: NOW,
    expiresAt: NOW + 60_000,
  };
  const trust = { centerKey: center.publicKey, agentMsid: agent.msid, now: NOW + 1 };

  it('round-trips, and its JSON is canonical in the documented order', () => {
    const b = signBinding(fields, center);
    const raw = Buffer.from(b.encoded, 'base64url');
    expect(raw.subarray(0, raw.length - 64).toString()).toBe(JSON.stringify({ format: 'gatesock-binding-v1', ...fields }));
    const d = decodeBinding(b.encoded);
    expect(d.fields).toEqual(fields);
    expect(verifyBinding(d, trust)).toEqual(fields);
    expect(verifyBinding(b, trust)).toEqual(fields);
    expect(signBinding({ ...fields, args: null }, center).fields.args).toBeNull();
  });

  it('refuses another signer, another agent, expiry', () => {
    const b = signBinding(fields, center);
    expect(codeOf(() => verifyBinding(b, { ...trust, centerKey: other.publicKey }))).toBe('GS_ERR_DISPATCH_BAD_SIGNATURE');
    expect(codeOf(() => verifyBinding(b, { ...trust, agentMsid: createServerIdentity().msid }))).toBe('GS_ERR_DISPATCH_WRONG_AGENT');
    expect(codeOf(() => verifyBinding(b, { ...trust, now: NOW + 60_001 }))).toBe('GS_ERR_DISPATCH_EXPIRED');
    expect(codeOf(() => verifyBinding(signBinding(fields, other), trust))).toBe('GS_ERR_DISPATCH_BAD_SIGNATURE');
  });

  it('checks the signed bytes, not the fields object it is handed', () => {
    const b = signBinding(fields, center);
    const lie = { fields: { ...b.fields, evidence: newEvidence() }, encoded: b.encoded };
    expect(verifyBinding(lie, trust).evidence).toBe(fields.evidence);
    // Change one JSON byte under the old signature.
    const raw = Buffer.from(b.encoded, 'base64url');
    const json = raw.subarray(0, raw.length - 64).toString().replace(`"run":0`, `"run":1`);
    const tampered = Buffer.concat([Buffer.from(json), raw.subarray(raw.length - 64)]).toString('base64url');
    expect(codeOf(() => verifyBinding(decodeBinding(tampered), trust))).toBe('GS_ERR_DISPATCH_BAD_SIGNATURE');
  });

  it('refuses bad fields and bad text', () => {
    const bad: Partial<BindingFields>[] = [
      { dispatchId: 'abc' },
      { run: -1 },
      { agentMsid: agent.msid.toLowerCase() },
      { bundleDigest: 'sha1:00' },
      { evidence: 'x'.repeat(64) },
      { args: [1 as unknown as string] },
      { expiresAt: NOW - 1 },
    ];
    for (const b of bad) expect(codeOf(() => signBinding({ ...fields, ...b }, center)), JSON.stringify(b)).toBe('GS_ERR_DISPATCH_MALFORMED');
    for (const t of ['', 'AA', '!!!!', 'A'.repeat(100), toBase64url(new Uint8Array(200))]) expect(codeOf(() => decodeBinding(t))).toBe('GS_ERR_DISPATCH_MALFORMED');
    const sig = new Uint8Array(64);
    const spaced = toBase64url(Buffer.concat([Buffer.from(JSON.stringify({ format: 'gatesock-binding-v1', ...fields }, null, 1)), sig]));
    expect(codeOf(() => decodeBinding(spaced))).toBe('GS_ERR_DISPATCH_MALFORMED');
  });
});

describe('trust options are checked', () => {
  it('a NaN clock or version cannot switch the expiry and rollback checks off', () => {
    const b = createBundle({ name: 'x', version: 1, code: 'x', now: NOW, ttlMs: 10 }, center);
    expect(() => verifyBundle(b, { centerKey: center.publicKey, now: NaN })).toThrow(expect.objectContaining({ code: 'GS_ERR_INVALID_OPTION' }));
    expect(() => verifyBundle(b, { centerKey: center.publicKey, now: NOW, minVersion: NaN })).toThrow(expect.objectContaining({ code: 'GS_ERR_INVALID_OPTION' }));
    const binding = signBinding(
      { dispatchId: newDispatchId(), run: 0, agentMsid: agent.msid, bundleDigest: b.digest, evidence: newEvidence(), args: null, issuedAt: NOW, expiresAt: NOW + 1 },
      center,
    );
    expect(() => verifyBinding(binding, { centerKey: center.publicKey, agentMsid: agent.msid, now: Number.NaN })).toThrow(expect.objectContaining({ code: 'GS_ERR_INVALID_OPTION' }));
    expect(() => decodeBundle(b.bytes, { maxBytes: NaN })).toThrow(expect.objectContaining({ code: 'GS_ERR_INVALID_OPTION' }));
  });
});
