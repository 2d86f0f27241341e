/**
 * Version ordering for the security center: Debian (deb-version(7), dpkg's
 * `verrevcmp`) and RPM (`rpmvercmp`, with `~` and `^`), each with a strict
 * parser, so that a backported fix (`1.1.1n-0+deb11u5`) is ordered exactly as
 * the host's package manager orders it and is not reported as vulnerable.
 *
 * @packageDocumentation
 */
export {
  MAX_VERSION_LENGTH,
  compareDebianPart,
  compareDebianVersions,
  compareParsedDebian,
  compareParsedDebianReference,
  debianSortKey,
  debianVersionKey,
  isDebianVersion,
  parseDebianVersion,
  type DebianVersion,
} from './debian.js';
export { compareParsedRpm, compareRpmPart, compareRpmVersions, parseRpmVersion, rpmVersionKey, type RpmVersion } from './rpm.js';
export { DEBIAN_SCHEME, RPM_SCHEME, SUPPORTED_ECOSYSTEMS, schemeForEcosystem, type VersionScheme, type VersionSchemeName } from './scheme.js';
