/**
 * The security center (issue 8, seed 004): the configuration, security
 * information and policy databases, the diagnosis engine, the four triggers,
 * and acting through verifiable dispatch and a notifier.
 *
 * @packageDocumentation
 */
export { SecurityCenter } from './center.js';
export type { AdvisoryImportResult, ScanImportResult, SecurityCenterEvents, SecurityCenterOptions } from './context.js';
export { checkPolicyDocument } from './policy-document.js';
export {
  ACTION_STATES,
  BLOCKING_ACTION_STATES,
  MemoryConfigurationStore,
  type ActionRecord,
  type ActionSettings,
  type ActionState,
  type ConfigurationStore,
  type HostEntry,
  type PolicyDocument,
  type ReportCommit,
  type Trigger,
} from './store.js';
export { CENTER_SQLITE_SCHEMA_VERSION, SqliteConfigurationStore } from './sqlite.js';
export { CENTER_POSTGRES_SCHEMA_VERSION, PostgresConfigurationStore } from './postgres.js';
export { DEFAULT_UPGRADE_COMMAND, checkConfigRoot, checkUpgradeCommand, countermeasureCode, resolveSteps, type ResolvedStep } from './countermeasure.js';
