/**
 * The configuration report (issue 8; seed 004 §4.2): the JSON format agents
 * send, the center's strict check of it, deltas and their application, and
 * the conversion into the diagnosis engine's {@link HostInventory}.
 *
 * @packageDocumentation
 */
export {
  DEFAULT_REPORT_LIMITS,
  REPORT_FORMAT,
  fileKey,
  packageKey,
  serviceKey,
  type ConfigurationReport,
  type DeltaReport,
  type FileEntry,
  type FullReport,
  type OmittedReason,
  type OsInfo,
  type PackageEntry,
  type PackageManager,
  type ReportLimits,
  type ServiceEntry,
  type SetChanges,
} from './types.js';
export { encodeConfigurationReport, parseConfigurationReport, validateConfigurationReport, type ReportCheckOptions } from './validate.js';
export { applyReport, canonicalReport, diffReports, isEmptyDelta, type ApplyOutcome } from './delta.js';
export { osvEcosystem, toInventory } from './inventory.js';
export { ConfigurationLedger, type IntakeResult, type LedgerOptions, type Refusal } from './ledger.js';
export { canonicalIp, formatIp, ipBytes, isWildcardIp } from './ip.js';
export {
  MAX_COMPONENT_BYTES,
  MAX_PATH_LENGTH,
  checkHostPath,
  hostPathProblem,
  isArch,
  isPackageName,
  isPackageVersion,
  isPrintable,
} from './syntax.js';
export type { HostInventory, InventoryFile, InventoryPackage, InventoryService } from '../diagnosis/inventory.js';
