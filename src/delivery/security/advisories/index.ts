/**
 * Advisories for the security center: OSV import (Debian, Ubuntu and
 * RPM-based ecosystems), gatesock's countermeasure entries, and matching
 * versions against affected ranges.
 *
 * @packageDocumentation
 */
export type { Advisory, AdvisoryReference, AdvisorySeverity, AffectedPackage, AffectedRange, RangeEvent } from './model.js';
export { parseOsv, parseOsvDocument, parseOsvRecord, type OsvImportOptions } from './osv.js';
export {
  ADVISORY_ID,
  COUNTERMEASURE_FORMAT,
  checkAbsolutePath,
  checkAdvisoryId,
  parseCountermeasure,
  parseCountermeasureDocument,
  parseCountermeasureFile,
  parseCountermeasureSteps,
  type CommandStep,
  type ConfigStep,
  type Countermeasure,
  type CountermeasureSet,
  type ManualStep,
  type UpgradeStep,
} from './countermeasures.js';
export { ADVISORY_LIMITS, PACKAGE_NAME } from './limits.js';
export { AffectedMatcher, type RangeHit } from './match.js';
export { importAdvisoryFiles, type ImportReport } from './files.js';
