/**
 * The agent's collectors (issue 8; seed 004 §4.2): OS and kernel, installed
 * packages (dpkg, rpm), listening services, configured files, and the full
 * report built from them, numbered into full reports and deltas. Each
 * collector takes its root or paths as options, so it runs on fixture trees.
 *
 * @packageDocumentation
 */
export { collectKernel, collectOsRelease, osInfoFromVars, parseOsReleaseText, type KernelOptions, type OsReleaseOptions } from './os-release.js';
export {
  RPM_QUERY_FORMAT,
  collectDpkgPackages,
  collectRpmPackages,
  parseDpkgStatus,
  parseRpmQuery,
  type DpkgOptions,
  type PackageScan,
  type RpmOptions,
  type RpmScan,
  type SkippedPackage,
} from './packages.js';
export {
  collectListeningServices,
  decodeProcAddress,
  isListening,
  parseProcNetTable,
  type ServicesOptions,
  type SocketRow,
} from './services.js';
export { collectFiles, type FilesOptions } from './files.js';
export { ReportSequencer, collectConfiguration, type CollectOptions, type Collected } from './collect.js';
export { ConfigurationReporter, type CenterAnswer, type ReporterEvents, type ReporterOptions } from './reporter.js';
