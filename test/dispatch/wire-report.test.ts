/**
 * Report codec and the center's check (docs/dispatch.md, "Report"): every
 * documented failure reason, in the documented order, and never a throw.
 */
import { describe, expect, it } from 'vitest';
import { createServerIdentity } from '../../src/session/index.js';
import {
  checkReport,
  decodeReport,
  newDispatchId,
  newEvidence,
  sha256Digest,
  signReport,
  toBase64url,
  type ReportExpectation,
  type ReportFields,
  type SignedReport,
} from '../../src/delivery/dispatch/wire/index.js';
import { codeOf } from './wire-helpers.js';

const agent = createServerIdentity();
const intruder = createServerIdentity();
const empty = { digest: sha256Digest(new Uint8Array()), size: 0 };
const fields: ReportFields = {
  dispatchId: newDispatchId(),
  run: 2,
  agentMsid: agent.msid,
  bundleDigest: sha256Digest(new Uint8Array([9])),
  evidence: newEvidence(),
  outcome: 'ran',
  reason: null,
  start: 'started',
  exitCode: 0,
  signal: null,
  stdout: { digest: sha256Digest(new TextEncoder().encode('hi\n')), size: 3 },
  stderr: empty,
  startedAt: 1_800_000_000_000,
  endedAt: 1_800_000_000_250,
};
const expected: ReportExpectation = { dispatchId: fields.dispatchId, run: 2, agentMsid: agent.msid, evidence: fields.evidence, bundleDigest: fields.bundleDigest, accepted: false };


/** Re-sign `json` (any text) with `identity`, as an attacker holding that key could. */
function forge(json: string, sign: (m: Uint8Array) => Uint8Array): string {
  const body = new TextEncoder().encode(json);
  const sig = sign(new Uint8Array([...new TextEncoder().encode('gatesock-dispatch-report-v1\n'), ...body]));
  return toBase64url(new Uint8Array([...body, ...sig]));
}

const reasonOf = (r: SignedReport, e: ReportExpectation | undefined) => {
  const c = checkReport(r, e);
  return c.ok ? 'ok' : c.reason;
};

describe('report', () => {
  it('round-trips; JSON canonical in the documented order', () => {
    const r = signReport(fields, agent);
    const raw = Buffer.from(r.encoded, 'base64url');
    expect(raw.subarray(0, raw.length - 64).toString()).toBe(JSON.stringify({ format: 'gatesock-report-v1', ...fields }));
    expect(r.certificate).toEqual(agent.certificate.der);
    const d = decodeReport(r.encoded, r.certificate);
    expect(d.fields).toEqual(fields);
    expect(checkReport(d, expected)).toEqual({ ok: true, fields });
    expect(checkReport(r, expected).ok).toBe(true);
    // A plain object with the same text is decoded again and passes too.
    expect(checkReport({ fields, certificate: r.certificate, encoded: r.encoded }, expected).ok).toBe(true);
  });

  it('each failure reason', () => {
    const r = decodeReport(signReport(fields, agent).encoded, agent.certificate.der);
    expect(reasonOf(r, undefined)).toBe('unknown-dispatch');
    expect(reasonOf(r, { ...expected, dispatchId: newDispatchId() })).toBe('unknown-dispatch');
    expect(reasonOf(r, { ...expected, run: 3 })).toBe('unknown-dispatch');
    expect(reasonOf(r, { ...expected, agentMsid: intruder.msid })).toBe('wrong-agent');
    expect(reasonOf(r, { ...expected, evidence: newEvidence() })).toBe('wrong-evidence');
    expect(reasonOf(r, { ...expected, bundleDigest: empty.digest })).toBe('wrong-bundle');
    expect(reasonOf(r, { ...expected, accepted: true })).toBe('replayed');
    // Malformed text or certificate.
    expect(reasonOf({ fields, certificate: agent.certificate.der, encoded: 'AAAA' }, expected)).toBe('malformed');
    expect(reasonOf({ fields, certificate: new Uint8Array([0x30, 0]), encoded: r.encoded }, expected)).toBe('malformed');
    expect(reasonOf(null as unknown as SignedReport, expected)).toBe('malformed');
  });

  it('another agent\'s signature: wrong-agent; a changed byte: bad-signature', () => {
    // The intruder signs a report claiming to be the agent, with its own certificate.
    const json = JSON.stringify({ format: 'gatesock-report-v1', ...fields });
    const byIntruder = decodeReport(forge(json, intruder.sign), intruder.certificate.der);
    expect(reasonOf(byIntruder, expected)).toBe('wrong-agent');
    // The intruder's honest report sent for the agent's run.
    const honest = signReport({ ...fields, agentMsid: intruder.msid }, intruder);
    expect(reasonOf(honest, expected)).toBe('wrong-agent');
    // The agent's certificate with the intruder's signature.
    expect(reasonOf(decodeReport(forge(json, intruder.sign), agent.certificate.der), expected)).toBe('bad-signature');
    // A change under the agent's signature.
    const raw = Buffer.from(signReport(fields, agent).encoded, 'base64url');
    const changed = Buffer.concat([Buffer.from(raw.subarray(0, raw.length - 64).toString().replace('"exitCode":0', '"exitCode":1')), raw.subarray(raw.length - 64)]);
    expect(reasonOf(decodeReport(changed.toString('base64url'), agent.certificate.der), expected)).toBe('bad-signature');
  });

  it('sign refuses bad fields and a foreign identity', () => {
    expect(codeOf(() => signReport({ ...fields, agentMsid: intruder.msid }, agent))).toBe('GS_ERR_DISPATCH_WRONG_AGENT');
    const bad: Partial<Record<keyof ReportFields, unknown>>[] = [
      { outcome: 'exploded' },
      { start: 'yes' },
      { reason: 'x'.repeat(257) },
      { exitCode: 1.5 },
      { signal: 'kill' },
      { stdout: { digest: 'sha256:00', size: 0 } },
      { stderr: { digest: empty.digest, size: -1 } },
      { startedAt: -1 },
      { evidence: fields.evidence.slice(1) },
      { run: 2 ** 32 },
    ];
    for (const b of bad) expect(codeOf(() => signReport({ ...fields, ...b } as ReportFields, agent)), JSON.stringify(b)).toBe('GS_ERR_DISPATCH_MALFORMED');
    const refused = signReport({ ...fields, outcome: 'refused', reason: 'GS_ERR_DISPATCH_ROLLBACK', start: 'none', exitCode: null, stdout: empty, stderr: empty }, agent);
    expect(checkReport(refused, expected).ok).toBe(true);
    const killed = signReport({ ...fields, outcome: 'timeout', exitCode: null, signal: 'SIGKILL' }, agent);
    expect(decodeReport(killed.encoded, agent.certificate.der).fields.signal).toBe('SIGKILL');
  });

  it('decode refuses non-canonical JSON even with a valid signature', () => {
    const json = JSON.stringify({ format: 'gatesock-report-v1', ...fields }, null, 1);
    expect(codeOf(() => decodeReport(forge(json, agent.sign), agent.certificate.der))).toBe('GS_ERR_DISPATCH_MALFORMED');
    const { dispatchId, ...rest } = fields;
    const reordered = JSON.stringify({ dispatchId, format: 'gatesock-report-v1', ...rest });
    expect(codeOf(() => decodeReport(forge(reordered, agent.sign), agent.certificate.der))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(codeOf(() => decodeReport(signReport(fields, agent).encoded, new Uint8Array(20000)))).toBe('GS_ERR_DISPATCH_MALFORMED');
  });
});
