/**
 * Which version ordering an OSV ecosystem uses. Advisories and inventories
 * name ecosystems as OSV does (`Debian:12`, `Ubuntu:22.04:LTS`,
 * `Red Hat:enterprise_linux:9::baseos`, `AlmaLinux:9`…); the part before the
 * first colon picks the scheme.
 */
import {
  compareParsedDebian,
  debianVersionKey,
  parseDebianVersion,
  type DebianVersion,
} from './debian.js';
import { compareParsedRpm, parseRpmVersion, rpmVersionKey, type RpmVersion } from './rpm.js';

/** The version orderings implemented. @public */
export type VersionSchemeName = 'deb' | 'rpm';

/** One ecosystem's version rules: parse strictly, compare, and key for equality. @public */
export interface VersionScheme<V = unknown> {
  /** `deb` (dpkg ordering) or `rpm` (rpmvercmp ordering). */
  readonly name: VersionSchemeName;
  /** Parse strictly; `SecurityCenterError` `GS_ERR_SECURITY_BAD_VERSION` when `text` is not a version. */
  parse(text: string): V;
  /** Negative, zero or positive as `a` sorts before, equal to, or after `b`. */
  compare(a: V, b: V): number;
  /** A string equal for two versions that compare equal (for set look-ups). */
  key(v: V): string;
}

/** dpkg's ordering (Debian, Ubuntu). @public */
export const DEBIAN_SCHEME: VersionScheme<DebianVersion> = Object.freeze({
  name: 'deb' as const,
  parse: parseDebianVersion,
  compare: compareParsedDebian,
  key: debianVersionKey,
});

/** rpm's ordering (Red Hat and its rebuilds, SUSE, Mageia, openEuler). @public */
export const RPM_SCHEME: VersionScheme<RpmVersion> = Object.freeze({
  name: 'rpm' as const,
  parse: parseRpmVersion,
  compare: compareParsedRpm,
  key: rpmVersionKey,
});

const BY_ECOSYSTEM: ReadonlyMap<string, VersionScheme> = new Map<string, VersionScheme>([
  ['Debian', DEBIAN_SCHEME as VersionScheme],
  ['Ubuntu', DEBIAN_SCHEME as VersionScheme],
  ['Red Hat', RPM_SCHEME as VersionScheme],
  ['AlmaLinux', RPM_SCHEME as VersionScheme],
  ['Rocky Linux', RPM_SCHEME as VersionScheme],
  ['openSUSE', RPM_SCHEME as VersionScheme],
  ['SUSE', RPM_SCHEME as VersionScheme],
  ['Mageia', RPM_SCHEME as VersionScheme],
  ['openEuler', RPM_SCHEME as VersionScheme],
]);

/** The OSV ecosystem names (before the first colon) that have a version scheme here. @public */
export const SUPPORTED_ECOSYSTEMS: readonly string[] = Object.freeze([...BY_ECOSYSTEM.keys()]);

/**
 * The version scheme of an OSV ecosystem string (`Debian:12` → dpkg's), or
 * `undefined` for an ecosystem whose versions are not ordered here (npm, PyPI…).
 * @public
 */
export function schemeForEcosystem(ecosystem: string): VersionScheme | undefined {
  if (typeof ecosystem !== 'string') return undefined;
  const colon = ecosystem.indexOf(':');
  return BY_ECOSYSTEM.get(colon < 0 ? ecosystem : ecosystem.slice(0, colon));
}
