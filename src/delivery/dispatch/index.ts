/**
 * Verifiable dispatch (docs/dispatch.md): a center sends signed code bundles
 * to agents that are relay servers, each order carrying a fresh evidence
 * value per agent and run, and accepts a result only when the agent's signed
 * report carries that value back for that bundle.
 *
 * - formats: bundles, evidence bindings, reports, channel messages and the
 *   hash-chained evidence log (`wire/`);
 * - the agent and its loader process (`agent/`);
 * - the center: store, repository, connectors, fleet waves (`center/`).
 */
export {
  DEFAULT_BUNDLE_TIMEOUT_MS,
  DEFAULT_BUNDLE_TTL_MS,
  DEFAULT_MAX_BUNDLE_BYTES,
  LOG_KINDS,
  RUN_OUTCOMES,
  DispatchChannel,
  EvidenceLog,
  centerKeyId,
  checkReport,
  createBundle,
  decodeBinding,
  decodeBundle,
  decodeReport,
  evidenceHash,
  newDispatchId,
  newEvidence,
  parseCenterKey,
  sha256Digest,
  signBinding,
  signReport,
  verifyBinding,
  verifyBundle,
  verifyEvidenceLog,
  type BindingFields,
  type Bundle,
  type BundleInput,
  type BundleMetadata,
  type BundleTarget,
  type BundleTrust,
  type ChannelMessage,
  type Digest,
  type DispatchChannelEvents,
  type DispatchChannelOptions,
  type EvidenceLogOptions,
  type LogEntry,
  type LogKind,
  type OutputDigest,
  type ReportCheck,
  type ReportExpectation,
  type ReportFields,
  type RunOutcome,
  type SignedBinding,
  type SignedReport,
  type VerificationFailure,
} from './wire/index.js';
export {
  DEFAULT_DISPATCH_AGENT_OPTIONS,
  DEFAULT_MAX_OUTPUT_BYTES,
  DispatchAgent,
  InlineExecutor,
  ProcessExecutor,
  type DispatchAgentEvents,
  type DispatchAgentOptions,
  type DispatchContext,
  type Executor,
  type InlineExecutorOptions,
  type LoaderEvents,
  type LoaderHandle,
  type LoaderJob,
  type LoaderResult,
  type ProcessExecutorOptions,
  type TargetRunResult,
} from './agent/index.js';
export * from './center/index.js';
