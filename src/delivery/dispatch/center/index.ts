/**
 * The dispatch center (docs/dispatch.md): {@link DispatchCenter}, its
 * stores ({@link MemoryDispatchStore}, {@link SqliteDispatchStore}), bundle
 * repositories ({@link MemoryBundleRepository},
 * {@link DirectoryBundleRepository}), agent connectors
 * ({@link RelayAgentConnector}, {@link MemoryAgentConnector}), the
 * per-target state machine and canary waves.
 *
 * @packageDocumentation
 */
export { DispatchCenter, type DispatchCenterEvents, type DispatchCenterOptions } from './center.js';
export { DISPATCH_DEFAULTS, type DispatchOptions } from './options.js';
export { DispatchRun, type DispatchRunEvents } from './run.js';
export { type DispatchProgress, type DispatchStatus, type DispatchSummary, type RunStatus, type TargetResult, type VerificationFailureRecord, type WaveSummary } from './status.js';
export { MemoryAgentConnector, RelayAgentConnector, type AgentConnector, type AgentRef, type RelayAgentConnectorOptions } from './connector.js';
export { DirectoryBundleRepository, MemoryBundleRepository, type BundleRepository } from './repository.js';
export {
  MemoryDispatchStore,
  type AcceptedReport,
  type DispatchStore,
  type NewTarget,
  type RunState,
  type StoredBundle,
  type StoredDispatch,
  type StoredDispatchOptions,
  type StoredEvidence,
  type StoredFailure,
  type StoredRun,
  type StoredTarget,
  type TargetKey,
  type TargetPatch,
} from './store.js';
export { DISPATCH_SQLITE_SCHEMA_VERSION, SqliteDispatchStore } from './sqlite-store.js';
export { FINAL_TARGET_STATES, TARGET_STATES, isFinalTargetState, isTargetSuccess, nextTargetState, retryDelay, type TargetEvent, type TargetState } from './target.js';
export { DEFAULT_FAILURE_THRESHOLD, DEFAULT_WAVES, planWaves, waveStops } from './waves.js';
