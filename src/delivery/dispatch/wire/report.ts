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
import type { Digest } from './common.js';

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
  digest: Digest;
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
  outcome: RunOutcome;
  /** An error code or a short text (≤ 256 bytes), or `null`. */
  reason: string | null;
  /** Whether the target was started. */
  start: 'started' | 'failed' | 'none';
  /** The target's exit code, or `null` (not started, or ended by a signal). */
  exitCode: number | null;
  /** The signal that ended the target (`SIGKILL`, …), or `null`. */
  signal: string | null;
  stdout: OutputDigest;
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
  readonly fields: ReportFields;
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
  dispatchId: string;
  run: number;
  agentMsid: string;
  evidence: string;
  bundleDigest: Digest;
  /** True once a report for this run was accepted (a second one is a replay). */
  accepted: boolean;
}

/**
 * The result of {@link checkReport}.
 * @public
 */
export type ReportCheck = { ok: true; fields: ReportFields } | { ok: false; reason: VerificationFailure; message: string };
