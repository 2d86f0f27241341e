/**
 * The run report (docs/dispatch.md, "Report"): what the loader saw, signed
 * by the agent's identity key, checked by the center against what it issued.
 *
 * ```text
 * encoded = base64url( canonical JSON ‖ Ed25519 signature (64) )
 * JSON    = {"format":"gatesock-report-v1","dispatchId":…,"run":…,"agentMsid":…,
 *            "bundleDigest":…,"evidence":…,"outcome":…,"reason":…,"start":…,
 *            "exitCode":…,"signal":…,"stdout":{"digest":…,"size":…},
 *            "stderr":{"digest":…,"size":…},"startedAt":…,"endedAt":…}
 * signed  = "gatesock-dispatch-report-v1\n" ‖ JSON
 * ```
 *
 * The agent's certificate (DER) travels beside the report, so anyone can
 * check offline that the certificate hashes to `agentMsid` and that its key
 * made the signature.
 */
import { DispatchError, GatesockError } from '../../../errors/index.js';
import { isMsid, msidOf, parseCertificate, type Certificate, type Identity } from '../../../session/index.js';
import { MAX_RUN } from './binding.js';
import {
  bytesEqual,
  checkDigest,
  checkHex,
  checkInt,
  checkMsid,
  checkString,
  envelopeSigned,
  expectObject,
  malformed,
  openEnvelope,
  sealEnvelope,
  utf8,
  type Digest,
  type EnvelopeKind,
  type EnvelopeParts,
} from './common.js';

/** `format` of a report. @public */
export const REPORT_FORMAT = 'gatesock-report-v1';
/** Context string of a report signature. @public */
export const REPORT_CONTEXT = 'gatesock-dispatch-report-v1\n';
/** Most bytes of a report's JSON. @public */
export const MAX_REPORT_JSON_BYTES = 4096;
/** Most bytes of the agent certificate (DER) that travels with a report. @public */
export const MAX_CERTIFICATE_BYTES = 16 * 1024;
/** Most UTF-8 bytes of a report's `reason`. @public */
export const MAX_REASON_BYTES = 256;
/** Every {@link RunOutcome}. @public */
export const RUN_OUTCOMES: readonly RunOutcome[] = Object.freeze(['ran', 'start-failed', 'code-failed', 'timeout', 'crashed', 'refused']);

const STARTS = ['started', 'failed', 'none'] as const;
const SIGNAL_RE = /^SIG[A-Z0-9]{1,13}$/;
const MAX_OUTPUT_SIZE = 2 ** 48;

/**
 * How a run ended: `ran` (the target ran and exited, any exit code),
 * `start-failed`, `code-failed` (the distributed code threw), `timeout`,
 * `crashed` (the loader died) or `refused` (the order was refused; `reason`
 * holds the error code).
 * @public
 */
export type RunOutcome = 'ran' | 'start-failed' | 'code-failed' | 'timeout' | 'crashed' | 'refused';

/**
 * Digest and size of one output stream of the target.
 * @public
 */
export interface OutputDigest {
  /** Digest of the whole output. */
  digest: Digest;
  /** Its length in bytes. */
  size: number;
}

/**
 * The fields of a report.
 * @public
 */
export interface ReportFields {
  /** 32 lowercase hex digits. */
  dispatchId: string;
  /** The run this reports on (0 for the dispatch). */
  run: number;
  /** The reporting agent. */
  agentMsid: string;
  /** The bundle that was run. */
  bundleDigest: Digest;
  /** The evidence value from the binding (64 lowercase hex). */
  evidence: string;
  /** How the run ended. */
  outcome: RunOutcome;
  /** An error code or a short text (≤ 256 bytes), or `null`. */
  reason: string | null;
  /** Whether the target was started. */
  start: 'started' | 'failed' | 'none';
  /** The target's exit code, or `null` (not started, or ended by a signal). */
  exitCode: number | null;
  /** The signal that ended the target (`SIGKILL`, …), or `null`. */
  signal: string | null;
  /** Digest and size of the bundle's standard output. */
  stdout: OutputDigest;
  /** Digest and size of the bundle's standard error. */
  stderr: OutputDigest;
  /** Start of the run, ms since the epoch. */
  startedAt: number;
  /** End of the run, ms since the epoch. */
  endedAt: number;
}

/**
 * A signed report: its fields, the agent's certificate (DER) and its text form.
 * @public
 */
export interface SignedReport {
  /** The report's fields, as signed. */
  readonly fields: ReportFields;
  /** The agent's certificate (DER) whose key signed the report. */
  readonly certificate: Uint8Array;
  /** base64url(canonical JSON ‖ 64-byte signature). */
  readonly encoded: string;
}

/**
 * Why the center refused a report.
 * @public
 */
export type VerificationFailure = 'malformed' | 'bad-signature' | 'wrong-agent' | 'unknown-dispatch' | 'wrong-evidence' | 'wrong-bundle' | 'replayed';

/**
 * What the center issued for one run to one agent, to check a report against.
 * @public
 */
export interface ReportExpectation {
  /** The dispatch the order was for. */
  dispatchId: string;
  /** The run the order was for. */
  run: number;
  /** The agent the order went to. */
  agentMsid: string;
  /** The evidence value the order carried. */
  evidence: string;
  /** Digest of the bundle the order named. */
  bundleDigest: Digest;
  /** True once a report for this run was accepted (a second one is a replay). */
  accepted: boolean;
}

/**
 * The result of {@link checkReport}.
 * @public
 */
export type ReportCheck = { ok: true; fields: ReportFields } | { ok: false; reason: VerificationFailure; message: string };

const REPORT: EnvelopeKind<ReportFields> = {
  what: 'report',
  format: REPORT_FORMAT,
  keys: ['format', 'dispatchId', 'run', 'agentMsid', 'bundleDigest', 'evidence', 'outcome', 'reason', 'start', 'exitCode', 'signal', 'stdout', 'stderr', 'startedAt', 'endedAt'],
  context: utf8(REPORT_CONTEXT),
  maxJsonBytes: MAX_REPORT_JSON_BYTES,
  build: buildReport,
};

/** Parts and parsed certificate of every report made or decoded here. */
const partsOf = new WeakMap<SignedReport, { parts: EnvelopeParts<ReportFields>; certificate: Certificate }>();

function buildOutput(raw: unknown, what: string): OutputDigest {
  const o = expectObject(raw, what, ['digest', 'size']);
  checkDigest(o.digest, `${what} digest`);
  checkInt(o.size, `${what} size`, 0, MAX_OUTPUT_SIZE);
  return { digest: o.digest, size: o.size };
}

function buildReport(raw: unknown): ReportFields & { format: typeof REPORT_FORMAT } {
  const o = expectObject(raw, 'report', REPORT.keys);
  if (o.format !== REPORT_FORMAT) throw malformed(`report format must be "${REPORT_FORMAT}"`);
  checkHex(o.dispatchId, 'report dispatchId', 32);
  checkInt(o.run, 'report run', 0, MAX_RUN);
  checkMsid(o.agentMsid, 'report agentMsid');
  checkDigest(o.bundleDigest, 'report bundleDigest');
  checkHex(o.evidence, 'report evidence', 64);
  if (!RUN_OUTCOMES.includes(o.outcome as RunOutcome)) throw malformed(`report outcome must be one of ${RUN_OUTCOMES.join(', ')}`);
  if (o.reason !== null) checkString(o.reason, 'report reason', MAX_REASON_BYTES);
  if (!STARTS.includes(o.start as (typeof STARTS)[number])) throw malformed(`report start must be one of ${STARTS.join(', ')}`);
  if (o.exitCode !== null) checkInt(o.exitCode, 'report exitCode', -(2 ** 31), 2 ** 32 - 1);
  if (o.signal !== null && (typeof o.signal !== 'string' || !SIGNAL_RE.test(o.signal))) throw malformed('report signal must be null or a signal name such as SIGKILL');
  const stdout = buildOutput(o.stdout, 'report stdout');
  const stderr = buildOutput(o.stderr, 'report stderr');
  checkInt(o.startedAt, 'report startedAt', 0, Number.MAX_SAFE_INTEGER);
  checkInt(o.endedAt, 'report endedAt', 0, Number.MAX_SAFE_INTEGER);
  return {
    format: REPORT_FORMAT,
    dispatchId: o.dispatchId,
    run: o.run,
    agentMsid: o.agentMsid,
    bundleDigest: o.bundleDigest,
    evidence: o.evidence,
    outcome: o.outcome as RunOutcome,
    reason: o.reason as string | null,
    start: o.start as ReportFields['start'],
    exitCode: o.exitCode as number | null,
    signal: o.signal as string | null,
    stdout,
    stderr,
    startedAt: o.startedAt,
    endedAt: o.endedAt,
  };
}

/** The public face of a report's parts, remembered as ours. */
function remember(parts: EnvelopeParts<ReportFields>, der: Uint8Array, certificate: Certificate): SignedReport {
  const r: SignedReport = Object.freeze({ fields: parts.fields, certificate: der, encoded: parts.encoded });
  partsOf.set(r, { parts, certificate });
  return r;
}

/**
 * Sign a report with the agent's identity. Its certificate rides along.
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` for a field outside the
 *   grammar; `GS_ERR_DISPATCH_WRONG_AGENT` when `fields.agentMsid` is not
 *   the identity's MSID.
 * @public
 */
export function signReport(fields: ReportFields, identity: Identity): SignedReport {
  // A well-formed MSID that is not ours is the one refusal before the grammar's.
  if (isMsid(fields?.agentMsid) && fields.agentMsid !== identity.msid) {
    throw new DispatchError('GS_ERR_DISPATCH_WRONG_AGENT', `report names agent ${fields.agentMsid}, but the signing identity is ${identity.msid}`);
  }
  return remember(
    sealEnvelope(REPORT, fields, (m) => identity.sign(m)),
    identity.certificate.der.slice(),
    identity.certificate,
  );
}

/**
 * Decode a report's text form and the agent certificate (DER) that came with
 * it: canonical base64url, canonical JSON, every field, and a parsable
 * certificate. Does not check the signature ({@link checkReport} does). The
 * certificate is copied.
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED`.
 * @public
 */
export function decodeReport(encoded: string, certificate: Uint8Array): SignedReport {
  const parts = openEnvelope(REPORT, encoded);
  if (!(certificate instanceof Uint8Array) || certificate.length === 0 || certificate.length > MAX_CERTIFICATE_BYTES) {
    throw malformed(`report certificate must be 1–${MAX_CERTIFICATE_BYTES} bytes of DER`);
  }
  const der = certificate.slice();
  let cert: Certificate;
  try {
    cert = parseCertificate(der);
  } catch (err) {
    if (err instanceof GatesockError) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `report certificate: ${err.message}`, { cause: err });
    throw err;
  }
  return remember(parts, der, cert);
}

/**
 * Check a report against what the center issued, in the documented order:
 * it decodes (`malformed`); the signature verifies under the certificate's
 * key (`bad-signature`); the certificate hashes to the report's agent and
 * that is the agent dispatched to (`wrong-agent`); the dispatch and run were
 * issued to that agent, i.e. `expected` is defined and names them
 * (`unknown-dispatch`); the evidence (`wrong-evidence`); the bundle
 * (`wrong-bundle`); no report for the run was accepted yet (`replayed`).
 * A report object not made here is decoded again from its `encoded` text
 * and certificate, so only signed bytes are ever judged. Never throws.
 * @public
 */
export function checkReport(report: SignedReport, expected: ReportExpectation | undefined): ReportCheck {
  try {
    let own: SignedReport;
    try {
      own = partsOf.has(report) ? report : decodeReport(report.encoded, report.certificate);
    } catch (err) {
      return { ok: false, reason: 'malformed', message: err instanceof Error ? err.message : String(err) };
    }
    const { parts, certificate } = partsOf.get(own)!;
    const f = own.fields;
    const what = `report for dispatch ${f.dispatchId} run ${f.run}`;
    if (!envelopeSigned(REPORT, parts, certificate.publicKey)) {
      return { ok: false, reason: 'bad-signature', message: `${what} does not verify under its certificate's key` };
    }
    const signer = msidOf(certificate);
    if (signer !== f.agentMsid) return { ok: false, reason: 'wrong-agent', message: `${what} names agent ${f.agentMsid} but is signed by ${signer}` };
    if (expected === undefined) return { ok: false, reason: 'unknown-dispatch', message: `${what} from ${f.agentMsid}: no such run was issued to this agent` };
    if (f.agentMsid !== expected.agentMsid) return { ok: false, reason: 'wrong-agent', message: `${what} comes from ${f.agentMsid}, not from ${expected.agentMsid}` };
    if (f.dispatchId !== expected.dispatchId || f.run !== expected.run) {
      return { ok: false, reason: 'unknown-dispatch', message: `${what}: expected dispatch ${expected.dispatchId} run ${expected.run}` };
    }
    if (!bytesEqual(utf8(f.evidence), utf8(String(expected.evidence)))) return { ok: false, reason: 'wrong-evidence', message: `${what} carries evidence that was not issued for it` };
    if (f.bundleDigest !== expected.bundleDigest) return { ok: false, reason: 'wrong-bundle', message: `${what} ran bundle ${f.bundleDigest}, not ${expected.bundleDigest}` };
    if (expected.accepted) return { ok: false, reason: 'replayed', message: `${what} was already accepted` };
    return { ok: true, fields: f };
  } catch (err) {
    return { ok: false, reason: 'malformed', message: err instanceof Error ? err.message : String(err) };
  }
}
