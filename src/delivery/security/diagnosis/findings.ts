/**
 * What the diagnosis engine reports. Every finding explains itself (seed 004
 * §4.3: which host, which hole, why, and what to do): the host, what was
 * found, the rule or advisory range it breaks, and the planned
 * countermeasure steps — in fields for programs and in one `reason`
 * sentence for people.
 */
import type { Countermeasure } from '../advisories/countermeasures.js';
import type { RangeHit } from '../advisories/match.js';
import type { InventoryService } from './inventory.js';

/** An installed package falls in an advisory's affected range. @public */
export interface VulnerabilityFinding {
  /** Always `vulnerable`. */
  readonly kind: 'vulnerable';
  /** The host. */
  readonly hostId: string;
  /** The advisory (`DSA-5532-1`). */
  readonly advisoryId: string;
  /** Its aliases (CVE IDs). */
  readonly aliases: readonly string[];
  /** Its summary, when it has one. */
  readonly summary?: string;
  /** The host's ecosystem (`Debian:12`). */
  readonly ecosystem: string;
  /** The installed (binary) package. */
  readonly package: string;
  /** The package name the advisory names (the source package on Debian). */
  readonly matchedPackage: string;
  /** The installed version of `package`. */
  readonly installed: string;
  /** The version compared with the advisory (the source version when the inventory has it, else `installed`). */
  readonly matchedVersion: string;
  /** The range `matchedVersion` fell in. */
  readonly range: RangeHit;
  /** The fixed version of that range, when there is one. */
  readonly fixed?: string;
  /** Planned steps (from the advisory's countermeasure entry, or an upgrade to `fixed`, or manual). */
  readonly countermeasure: readonly Countermeasure[];
  /** True when no step is `manual`. */
  readonly automatic: boolean;
  /** One sentence saying all of the above. */
  readonly reason: string;
}

/** A listener that no service rule of the host's role allows. @public */
export interface ServiceFinding {
  /** Always `service-not-allowed`. */
  readonly kind: 'service-not-allowed';
  /** The host. */
  readonly hostId: string;
  /** The host's role. */
  readonly role: string;
  /** The listener. */
  readonly service: InventoryService;
  /** Planned steps (from the policy, or manual). */
  readonly countermeasure: readonly Countermeasure[];
  /** True when no step is `manual`. */
  readonly automatic: boolean;
  /** One sentence saying all of the above. */
  readonly reason: string;
}

/** A required file whose hash differs, or that the host did not report. @public */
export interface FileFinding {
  /** `file-mismatch` when the content differs, `file-missing` when the host has no such file. */
  readonly kind: 'file-mismatch' | 'file-missing';
  /** The host. */
  readonly hostId: string;
  /** The host's role. */
  readonly role: string;
  /** The file. */
  readonly path: string;
  /** The SHA-256 the policy requires. */
  readonly required: string;
  /** The SHA-256 the host reported (`file-mismatch` only). */
  readonly reported?: string;
  /** Planned steps (from the policy, or manual). */
  readonly countermeasure: readonly Countermeasure[];
  /** True when no step is `manual`. */
  readonly automatic: boolean;
  /** One sentence saying all of the above. */
  readonly reason: string;
}

/** A setting that does not hold in a reported file's content. @public */
export interface SettingFinding {
  /** Always `setting-mismatch`. */
  readonly kind: 'setting-mismatch';
  /** The host. */
  readonly hostId: string;
  /** The host's role. */
  readonly role: string;
  /** The configuration file that holds the setting. */
  readonly path: string;
  /** The setting. */
  readonly key: string;
  /** The value the policy requires. */
  readonly required: string;
  /** The value found (absent: the key is not set). */
  readonly found?: string;
  /** Planned steps (from the policy, or manual). */
  readonly countermeasure: readonly Countermeasure[];
  /** True when no step is `manual`. */
  readonly automatic: boolean;
  /** One sentence saying all of the above. */
  readonly reason: string;
}

/** Any finding. @public */
export type Finding = VulnerabilityFinding | ServiceFinding | FileFinding | SettingFinding;

/** A stable identity of a finding on its host, for telling new findings from resolved ones. @public */
export function findingKey(f: Finding): string {
  switch (f.kind) {
    case 'vulnerable':
      return `vulnerable ${f.advisoryId} ${f.package}`;
    case 'service-not-allowed':
      return `service ${f.service.proto}/${f.service.port} ${f.service.address}`;
    case 'file-mismatch':
    case 'file-missing':
      return `file ${f.path}`;
    case 'setting-mismatch':
      return `setting ${f.path} ${f.key}`;
  }
}

/** True when none of `steps` needs a person. */
export function isAutomatic(steps: readonly Countermeasure[]): boolean {
  return steps.every((s) => s.kind !== 'manual');
}

/** A short text of one step, for `reason`. */
export function describeStep(s: Countermeasure): string {
  switch (s.kind) {
    case 'upgrade':
      return s.version === undefined ? `upgrade ${s.package}` : `upgrade ${s.package} to ${s.version}`;
    case 'config':
      return `set ${Object.entries(s.set).map(([k, v]) => `${k}=${v}`).join(', ')} in ${s.path}`;
    case 'command':
      return `run ${s.argv.join(' ')}`;
    case 'manual':
      return 'manual action (instructions attached)';
  }
}

/** `introduced 0, fixed 3.0.11-1~deb12u2` → "[first, 3.0.11-1~deb12u2)". */
export function describeRange(r: RangeHit): string {
  if (r.listed) return 'the advisory lists this version';
  const from = r.introduced === undefined || r.introduced === '0' ? 'every version' : `${r.introduced}`;
  if (r.fixed !== undefined) return `range [${from}, ${r.fixed}) (fixed in ${r.fixed})`;
  if (r.lastAffected !== undefined) return `range [${from}, ${r.lastAffected}] (no fix after the last affected version)`;
  return `range [${from}, …) (no fixed version known)`;
}
