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
 *
 * This is the curated public surface (re-exported by `gatesock/delivery`);
 * the target state machine's step function, retry delays and wave planning
 * stay exported from `center/` for its own tests.
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
export {
  DEFAULT_FAILURE_THRESHOLD,
  DEFAULT_WAVES,
  DISPATCH_DEFAULTS,
  DISPATCH_SQLITE_SCHEMA_VERSION,
  FINAL_TARGET_STATES,
  TARGET_STATES,
  DirectoryBundleRepository,
  DispatchCenter,
  DispatchRun,
  MemoryAgentConnector,
  MemoryBundleRepository,
  MemoryDispatchStore,
  RelayAgentConnector,
  SqliteDispatchStore,
  isFinalTargetState,
  isTargetSuccess,
  type AcceptedReport,
  type AgentConnector,
  type AgentRef,
  type BundleRepository,
  type DispatchCenterEvents,
  type DispatchCenterOptions,
  type DispatchOptions,
  type DispatchProgress,
  type DispatchRunEvents,
  type DispatchStatus,
  type DispatchStore,
  type DispatchSummary,
  type NewTarget,
  type RelayAgentConnectorOptions,
  type RunState,
  type RunStatus,
  type StoredBundle,
  type StoredDispatch,
  type StoredDispatchOptions,
  type StoredEvidence,
  type StoredFailure,
  type StoredRun,
  type StoredTarget,
  type TargetKey,
  type TargetPatch,
  type TargetResult,
  type TargetState,
  type VerificationFailureRecord,
  type WaveSummary,
} from './center/index.js';
// What the agent's and connectors' signatures are made of (declared in the
// layers below), so that gatesock/delivery is self-contained; the functions
// are the ones their documentation names.
export { INITIAL_WINDOW, MAX_DATA_PAYLOAD, type Certificate, type Identity, type MuxClock, type MuxOptions, type Role } from '../../session/index.js';
export type { ByteStream, ByteStreamEvents, MemoryPairOptions, TransportInfo } from '../../transport/index.js';
export { memoryPair } from '../../transport/index.js';
export {
  SockEvent,
  WOULD_BLOCK,
  clientConnect,
  serverStart,
  waitForMultiple,
  type ClientConnectOptions,
  type ServerStartOptions,
  type SockIo,
  type SockIoInfo,
  type SockIoOptions,
  type SockServer,
  type WouldBlock,
} from '../../socket/index.js';
export type {
  BackoffOptions,
  GatewayAddress,
  LinkOptions,
  RelayConnectionInfo,
  RelayEndpointOptions,
  ServerEndpoint,
  ServerEndpointEvents,
  ServerEndpointOptions,
  ServerInfo,
} from '../../relay/index.js';
