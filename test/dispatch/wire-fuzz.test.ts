/**
 * Fuzzing every dispatch decoder: random bytes and mutated valid encodings.
 * Never anything but a DispatchError; whatever decodes re-encodes to the
 * same bytes; and no tampered bundle, binding, report, channel auth or
 * log line ever verifies (docs/dispatch.md, "Formats").
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DispatchError } from '../../src/errors/index.js';
import { createServerIdentity, generateIdentityKey } from '../../src/session/index.js';
import {
  EvidenceLog,
  MessageReader,
  checkReport,
  createBundle,
  decodeBinding,
  decodeBundle,
  decodeMessage,
  decodeReport,
  encodeMessage,
  newDispatchId,
  newChannelChallenge,
  newEvidence,
  sha256Digest,
  signChannelAuth,
  signBinding,
  signReport,
  verifyBinding,
  verifyBundle,
  verifyChannelAuth,
  parseLogHead,
  verifyEvidenceLog,
  verifyLogHead,
  type BindingFields,
  type ChannelMessage,
  type ReportExpectation,
  type ReportFields,
} from '../../src/delivery/dispatch/wire/index.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RUNS = 1500;
const NOW = 1_800_000_000_000;
const center = generateIdentityKey();
const agent = createServerIdentity();

/** Run `fn`; a DispatchError gives undefined, any other throw fails the property. */
function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof DispatchError) return undefined;
    throw err;
  }
}

/** Arbitrary edits of a byte array: flip, set, truncate, insert, delete. */
const mutation = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

/** Apply `m` to a copy of `b`; may return identical bytes (a set to the same value). */
function mutate(b: Uint8Array, m: Mutation): Uint8Array {
  const at = m.at % Math.max(1, b.length);
  const out = Array.from(b);
  switch (m.op) {
    case 'flip':
      out[at] = out[at]! ^ (1 << m.bit);
      break;
    case 'set':
      out[at] = m.value;
      break;
    case 'cut':
      out.length = at;
      break;
    case 'insert':
      out.splice(at, 0, m.value);
      break;
    case 'delete':
      out.splice(at, 1);
      break;
  }
  return Uint8Array.from(out);
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
const text = (s: string) => new TextEncoder().encode(s);
const untext = (b: Uint8Array) => Buffer.from(b).toString('latin1');

// ---- fixtures ----
const bundle = createBundle(
  { name: 'fuzz', version: 2, code: 'export default async (ctx) => ctx.spawnTarget()', target: { bytes: text('#!/bin/sh\necho hi\n'), path: 'bin/hi.sh', args: ['-x'] }, now: NOW },
  center,
);
const bindingFields: BindingFields = {
  dispatchId: newDispatchId(),
  run: 0,
  agentMsid: agent.msid,
  bundleDigest: bundle.digest,
  evidence: newEvidence(),
  args: ['a', 'b'],
  issuedAt: NOW,
  expiresAt: NOW + 60_000,
};
const binding = signBinding(bindingFields, center);
const empty = { digest: sha256Digest(new Uint8Array()), size: 0 };
const reportFields: ReportFields = {
  dispatchId: bindingFields.dispatchId,
  run: 0,
  agentMsid: agent.msid,
  bundleDigest: bundle.digest,
  evidence: bindingFields.evidence,
  outcome: 'ran',
  reason: null,
  start: 'started',
  exitCode: 0,
  signal: null,
  stdout: empty,
  stderr: empty,
  startedAt: NOW,
  endedAt: NOW + 5,
};
const report = signReport(reportFields, agent);
const expectation: ReportExpectation = { ...bindingFields, accepted: false };
const cert64 = Buffer.from(agent.certificate.der).toString('base64url');
const challenge = newChannelChallenge();
const auth = signChannelAuth({ challenge, agentMsid: agent.msid }, center);
const messages: ChannelMessage[] = [
  { t: 'hello', agentMsid: agent.msid, certificate: cert64, pending: [{ report: report.encoded }], challenge },
  { t: 'auth', signature: auth },
  { t: 'run', binding: binding.encoded, inline: true, body: bundle.bytes },
  { t: 'run', binding: binding.encoded, inline: false },
  { t: 'fetch', digest: bundle.digest },
  { t: 'bundle', digest: bundle.digest, body: bundle.bytes },
  { t: 'rerun', binding: binding.encoded },
  { t: 'accepted', dispatchId: bindingFields.dispatchId, run: 0 },
  { t: 'report', report: report.encoded, certificate: cert64 },
  { t: 'ack', dispatchId: bindingFields.dispatchId, run: 0 },
  { t: 'cancel', dispatchId: bindingFields.dispatchId },
  { t: 'error', code: 'GS_ERR_DISPATCH_EXPIRED', message: 'x', dispatchId: bindingFields.dispatchId, run: 0 },
];
const encodedMessages = messages.map(encodeMessage);

describe('random input', () => {
  it('random bytes: every decoder throws only DispatchError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        attempt(() => decodeBundle(b));
        attempt(() => decodeMessage(b));
        attempt(() => new MessageReader({ maxBytes: 4096 }).push(b));
        attempt(() => decodeBinding(untext(b)));
        attempt(() => decodeReport(Buffer.from(b).toString('base64url'), b));
        attempt(() => verifyEvidenceLog(untext(b), center.publicKey));
        attempt(() => verifyLogHead(untext(b), center.publicKey));
        attempt(() => parseLogHead(untext(b)));
      }),
      { numRuns: RUNS },
    );
  });

  it('random bundle-shaped bytes (right magic) throw only DispatchError', () => {
    fc.assert(
      fc.property(fc.nat({ max: 400 }), fc.uint8Array({ maxLength: 500 }), (m, rest) => {
        const b = new Uint8Array(12 + rest.length);
        b.set(text('GSBUNDL1'));
        new DataView(b.buffer).setUint32(8, m);
        b.set(rest, 12);
        attempt(() => decodeBundle(b));
      }),
      { numRuns: RUNS },
    );
  });

  it('random JSON headers in a valid frame: only DispatchError, and decoded means canonical', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.constantFrom(...messages.map((m) => JSON.stringify({ ...m, body: undefined })))), fc.uint8Array({ maxLength: 8 }), (json, body) => {
        const h = text(json);
        const f = new Uint8Array(6 + h.length + body.length);
        new DataView(f.buffer).setUint32(0, 2 + h.length + body.length);
        new DataView(f.buffer).setUint16(4, h.length);
        f.set(h, 6);
        f.set(body, 6 + h.length);
        const m = attempt(() => decodeMessage(f));
        if (m) expect(same(encodeMessage(m), f)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('mutated valid encodings never verify', () => {
  it('bundle: any edit is refused by decode or verify', () => {
    fc.assert(
      fc.property(mutation, (m) => {
        const b = mutate(bundle.bytes, m);
        if (same(b, bundle.bytes)) return;
        const d = attempt(() => decodeBundle(b));
        if (d) expect(() => verifyBundle(d, { centerKey: center.publicKey, now: NOW })).toThrow(DispatchError);
      }),
      { numRuns: RUNS },
    );
  });

  it('binding: any edit of its text is refused by decode or verify', () => {
    const t = text(binding.encoded);
    const trust = { centerKey: center.publicKey, agentMsid: agent.msid, now: NOW };
    fc.assert(
      fc.property(mutation, (m) => {
        const b = mutate(t, m);
        if (same(b, t)) return;
        const d = attempt(() => decodeBinding(untext(b)));
        if (d) expect(() => verifyBinding(d, trust)).toThrow(DispatchError);
      }),
      { numRuns: RUNS },
    );
  });

  it('report: any edit of its text or certificate is refused', () => {
    const t = text(report.encoded);
    fc.assert(
      fc.property(mutation, fc.boolean(), (m, onCert) => {
        const enc = onCert ? report.encoded : untext(mutate(t, m));
        const cert = onCert ? mutate(report.certificate, m) : report.certificate;
        if (enc === report.encoded && same(cert, report.certificate)) return;
        const d = attempt(() => decodeReport(enc, cert));
        if (d) expect(checkReport(d, expectation).ok).toBe(false);
        // And checkReport on the raw pair never throws either.
        expect(checkReport({ fields: reportFields, encoded: enc, certificate: cert }, expectation).ok).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it('channel auth: any edit of the signature, or another challenge or agent, never verifies', () => {
    const input = { challenge, agentMsid: agent.msid };
    expect(verifyChannelAuth(auth, input, center.publicKey)).toBe(true);
    const other = createServerIdentity().msid;
    fc.assert(
      fc.property(mutation, fc.nat({ max: 2 }), (m, which) => {
        if (which === 0) {
          const b = untext(mutate(text(auth), m));
          if (b === auth) return;
          expect(verifyChannelAuth(b, input, center.publicKey)).toBe(false);
        } else if (which === 1) {
          const c = untext(mutate(text(challenge), m));
          if (c === challenge) return;
          // A challenge outside the grammar is the caller's mistake (MALFORMED); any other simply fails.
          expect(attempt(() => verifyChannelAuth(auth, { challenge: c, agentMsid: agent.msid }, center.publicKey)) ?? false).toBe(false);
        } else {
          expect(verifyChannelAuth(auth, { challenge, agentMsid: other }, center.publicKey)).toBe(false);
        }
      }),
      { numRuns: RUNS },
    );
    // Another key's signature over the same challenge does not verify either.
    expect(verifyChannelAuth(signChannelAuth(input, generateIdentityKey()), input, center.publicKey)).toBe(false);
    expect(verifyChannelAuth(undefined, input, center.publicKey)).toBe(false);
  });

  it('messages: edits decode to canonical messages or throw DispatchError', () => {
    fc.assert(
      fc.property(fc.nat({ max: encodedMessages.length - 1 }), mutation, (i, m) => {
        const b = mutate(encodedMessages[i]!, m);
        const d = attempt(() => decodeMessage(b));
        if (d) expect(same(encodeMessage(d), b)).toBe(true);
        const r = new MessageReader();
        attempt(() => r.push(b));
      }),
      { numRuns: RUNS },
    );
  });

  it('log: any edit of any line is caught', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gs-wire-fuzz-'));
    try {
      const path = join(dir, 'e.log');
      const log = await EvidenceLog.open(path, center, { now: () => NOW });
      await log.append('bundle', { digest: bundle.digest, metadata: bundle.metadata as unknown as Record<string, unknown> });
      await log.append('issued', { dispatch: bindingFields.dispatchId, run: 0, agent: agent.msid, evidence: sha256Digest(text(bindingFields.evidence)) });
      await log.append('result', { report: report.fields as unknown as Record<string, unknown>, note: 'ü ✓ "q" \\' });
      await log.close();
      const good = await readFile(path);
      const head = await readFile(path + '.head', 'utf8');
      expect(verifyEvidenceLog(good.toString('utf8'), center.publicKey, { head }).entries).toBe(4);
      fc.assert(
        fc.property(mutation, (m) => {
          const b = mutate(good, m);
          if (same(b, good)) return;
          if (m.op === 'cut' && (b.length === 0 || b[b.length - 1] === 0x0a)) {
            // Cutting whole lines off the end leaves a valid shorter chain (it verifies with
            // no head); the head counts the lost tail.
            const cut = Buffer.from(b).toString('utf8');
            expect(verifyEvidenceLog(cut, center.publicKey, { allowNoHead: true }).entries).toBeLessThan(4);
            expect(() => verifyEvidenceLog(cut, center.publicKey, { head })).toThrow(expect.objectContaining({ code: 'GS_ERR_DISPATCH_LOG_TRUNCATED' }));
            return;
          }
          // Bytes that are not valid UTF-8 become U+FFFD when read as text, which is a change too.
          expect(() => verifyEvidenceLog(Buffer.from(b).toString('utf8'), center.publicKey, { head })).toThrow(DispatchError);
        }),
        { numRuns: RUNS },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('generated fields round-trip or are refused', () => {
  const arg = fc.string({ unit: 'binary', maxLength: 12 });
  it('bindings with arbitrary arguments', () => {
    fc.assert(
      fc.property(fc.option(fc.array(arg, { maxLength: 5 })), fc.nat({ max: 2 ** 32 - 1 }), (args, run) => {
        const b = attempt(() => signBinding({ ...bindingFields, args, run }, center));
        if (!b) return;
        const d = decodeBinding(b.encoded);
        expect(d.fields).toEqual(b.fields);
        expect(verifyBinding(d, { centerKey: center.publicKey, agentMsid: agent.msid, now: NOW })).toEqual(b.fields);
      }),
      { numRuns: 300 },
    );
  });

  it('bundles with arbitrary names, paths and arguments', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 70 }), fc.string({ unit: 'binary', maxLength: 20 }), fc.array(arg, { maxLength: 3 }), (name, path, args) => {
        const b = attempt(() => createBundle({ name, version: 1, code: 'x', target: { bytes: new Uint8Array([1]), path, args }, now: NOW }, center));
        if (!b) return;
        const d = decodeBundle(b.bytes);
        expect(d.metadata).toEqual(b.metadata);
        verifyBundle(d, { centerKey: center.publicKey, now: NOW });
      }),
      { numRuns: 300 },
    );
  });
});
