/**
 * The diagnosis module (seed 004 §3: "診断モジュール"): matches every host's
 * configuration against the security information and the policy, in both
 * directions the four phases need, each through its own index:
 *
 * - a new or revised advisory → the hosts it affects (§4.3, new-hole phase):
 *   hosts are indexed by (ecosystem, package the advisories name) → installed
 *   version → host list, so the engine compares each *distinct* installed
 *   version with the advisory's ranges once, not once per host;
 * - a new or changed host report → its findings (§4.1 initial phase, §4.2
 *   periodic collection): advisories are indexed by (ecosystem, package), so
 *   each installed package is compared only with the advisories naming it.
 *
 * A host report replaces the host's previous one; only the index entries
 * that changed are touched, and the result says which findings appeared and
 * which were resolved since that report.
 *
 * Memory: names and versions are interned; a host's packages are kept as
 * integer arrays (16 bytes a package) and the host index as integer lists, so
 * 10,000 hosts × 1,500 packages stay in a few hundred MB.
 *
 * The engine is synchronous and single-threaded; the center serialises
 * calls (one event loop). It does not store anything: load it from a
 * {@link SecurityStore} with {@link loadAdvisories} at start.
 */
import { SecurityCenterError } from '../../../errors/index.js';
import type { Countermeasure, CountermeasureSet } from '../advisories/countermeasures.js';
import { PACKAGE_NAME } from '../advisories/limits.js';
import { AffectedMatcher, type RangeHit } from '../advisories/match.js';
import type { Advisory, AffectedPackage } from '../advisories/model.js';
import type { SecurityStore } from '../secdb/types.js';
import { schemeForEcosystem, type VersionScheme } from '../versions/scheme.js';
import { describeRange, describeStep, findingKey, isAutomatic, type Finding, type VulnerabilityFinding } from './findings.js';
import type { HostInventory } from './inventory.js';
import type { Policy } from './policy.js';
import { checkPolicy, evaluatePolicy, resolveHostPolicy } from './policy-check.js';

/** Hosts an advisory affects, with each host's findings for it. @public */
export interface AdvisoryImpact {
  /** The advisory. */
  readonly advisoryId: string;
  /** Affected hosts, by host ID. */
  readonly hosts: readonly { readonly hostId: string; readonly findings: readonly VulnerabilityFinding[] }[];
}

/** The result of a host report. @public */
export interface HostDiagnosis {
  /** The host diagnosed. */
  readonly hostId: string;
  /** Every current finding: vulnerabilities first (by advisory, package), then policy findings. */
  readonly findings: readonly Finding[];
  /**
   * Findings that the previous report did not have (all of them on a first
   * report). Both reports are judged by the current advisories and policy, so
   * this is what the report changed; what a new advisory changed is in
   * {@link AdvisoryImpact}.
   */
  readonly added: readonly Finding[];
  /** Findings of the previous report that this one no longer has. */
  readonly resolved: readonly Finding[];
  /** True when the engine did not know the host before. */
  readonly firstReport: boolean;
}

/** Options of {@link DiagnosisEngine}. @public */
export interface DiagnosisEngineOptions {
  /** The policy database's content; checked at once (`GS_ERR_SECURITY_MALFORMED_POLICY`). Default: no policy checks. */
  readonly policy?: Policy;
}

/** Limits on one inventory. @public */
export const INVENTORY_LIMITS = Object.freeze({ packages: 200_000, services: 65_536, files: 10_000, hostId: 256 });

// ---------------------------------------------------------------- internals

/** A growable list of int32 with unordered removal. */
class IntList {
  a = new Int32Array(4);
  n = 0;
  push(x: number): void {
    if (this.n === this.a.length) {
      const b = new Int32Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = x;
  }
  remove(x: number): void {
    for (let i = this.n - 1; i >= 0; i--) {
      if (this.a[i] === x) {
        this.a[i] = this.a[--this.n]!;
        return;
      }
    }
  }
}

/** Interned versions of one scheme: text → id, with the parsed form and equality key. */
interface VersionTable {
  readonly scheme: VersionScheme;
  readonly ids: Map<string, number>;
  readonly parsed: unknown[];
  readonly keys: string[];
  readonly texts: string[];
}

interface HostRecord {
  readonly idx: number;
  readonly inventory: Pick<HostInventory, 'hostId' | 'os' | 'services' | 'files'>;
  readonly table: VersionTable | undefined;
  /** Per installed package, sorted by key: interned (ecosystem, matched name). */
  readonly keys: Int32Array;
  /** Matched version id (source version when known) in `table`. */
  readonly mver: Int32Array;
  /** Installed binary version id in `table`; `undefined` when every one equals `mver` (no source versions reported). */
  readonly iver: Int32Array | undefined;
  /** Binary package name id. */
  readonly names: Int32Array;
}

interface AdvisoryRecord {
  readonly advisory: Advisory;
  readonly entries: readonly { readonly key: number; readonly matcher: AffectedMatcher }[];
}

type Planned = readonly Countermeasure[];

interface Verdict {
  readonly id: string;
  readonly matcher: AffectedMatcher;
  readonly hit: RangeHit;
}

const NO_VERDICTS: readonly Verdict[] = Object.freeze([]);

function malformedReport(hostId: unknown, why: string): SecurityCenterError {
  const h = typeof hostId === 'string' ? hostId.slice(0, 80) : '?';
  return new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_REPORT', `inventory of ${JSON.stringify(h)}: ${why}`);
}

/**
 * The diagnosis engine: matches host inventories against the advisories and
 * the policy, both ways (a new advisory → the hosts it affects; a new report →
 * its findings, with what appeared and what was resolved since the previous
 * one). Synchronous and stores nothing; load it with {@link loadAdvisories}.
 * @public
 */
export class DiagnosisEngine {
  /** Interned (ecosystem, package name) pairs: ecosystem → name → key. */
  readonly #pkgKeys = new Map<string, Map<string, number>>();
  #pkgKeyCount = 0;
  readonly #names = new Map<string, number>();
  readonly #nameText: string[] = [];
  readonly #tables = new Map<string, VersionTable>();
  /** Host index: key → matched version id → host indices. */
  readonly #hostIndex: (Map<number, IntList> | undefined)[] = [];
  readonly #hosts = new Map<string, HostRecord>();
  readonly #hostByIdx: (HostRecord | undefined)[] = [];
  #nextIdx = 0;
  /** Advisory index: key → advisory entries naming it. */
  readonly #advIndex: ({ id: string; matcher: AffectedMatcher }[] | undefined)[] = [];
  readonly #advisories = new Map<string, AdvisoryRecord>();
  /**
   * Verdict cache: key → matched version id → the advisory entries that
   * version falls in. Hosts of one release share most (package, version)
   * pairs, so a new report mostly reuses verdicts other hosts' reports
   * computed. A key's verdicts are dropped whenever an advisory naming it
   * is added, replaced or removed.
   */
  readonly #verdicts: (Map<number, readonly Verdict[]> | undefined)[] = [];
  readonly #countermeasures = new Map<string, readonly Countermeasure[]>();
  #policy: Policy | undefined;

  /** An engine with no hosts and no advisories; `options.policy` is checked at once (`GS_ERR_SECURITY_MALFORMED_POLICY`). */
  constructor(options: DiagnosisEngineOptions = {}) {
    if (options.policy !== undefined) this.#policy = checkPolicy(options.policy);
  }

  /** Number of hosts and (non-withdrawn and withdrawn) advisories known. */
  get size(): { hosts: number; advisories: number } {
    return { hosts: this.#hosts.size, advisories: this.#advisories.size };
  }

  /** Replace the policy (checked first: `GS_ERR_SECURITY_MALFORMED_POLICY` naming the field). Takes effect on the next diagnosis. */
  setPolicy(policy: Policy | undefined): void {
    this.#policy = policy === undefined ? undefined : checkPolicy(policy);
  }

  /** Set (or with `undefined`, remove) an advisory's countermeasure steps. */
  setCountermeasures(advisoryId: string, steps: readonly Countermeasure[] | undefined): void {
    if (steps === undefined) this.#countermeasures.delete(advisoryId);
    else this.#countermeasures.set(advisoryId, steps);
  }

  /** Set many advisories' countermeasure steps. */
  setCountermeasureSet(set: CountermeasureSet): void {
    for (const [id, steps] of set) this.#countermeasures.set(id, steps);
  }

  // ------------------------------------------------------------ advisories

  /**
   * Add or replace advisories without computing their impact (loading at
   * start). Advisories should come from the OSV parser; an entry in an
   * ecosystem without a version scheme is ignored. A refused advisory
   * (see {@link DiagnosisEngine.addAdvisory}) stops the load there.
   */
  addAdvisories(list: Iterable<Advisory>): void {
    for (const a of list) this.#putAdvisory(a);
  }

  /**
   * Add or replace one advisory and return the hosts it affects now
   * (direction a). A withdrawn advisory affects nothing. An advisory whose
   * versions do not parse (one not from the OSV parser) is refused with
   * `GS_ERR_SECURITY_BAD_VERSION` and changes nothing.
   */
  addAdvisory(advisory: Advisory): AdvisoryImpact {
    this.#putAdvisory(advisory);
    return this.affectedHosts(advisory.id);
  }

  /** Forget an advisory. True when it was known. */
  removeAdvisory(id: string): boolean {
    const old = this.#advisories.get(id);
    if (!old) return false;
    for (const e of old.entries) {
      const list = this.#advIndex[e.key];
      if (list) this.#advIndex[e.key] = list.filter((x) => x.id !== id);
      this.#verdicts[e.key] = undefined;
    }
    this.#advisories.delete(id);
    return true;
  }

  /** The hosts a known advisory affects now (empty for an unknown or withdrawn one). */
  affectedHosts(advisoryId: string): AdvisoryImpact {
    const rec = this.#advisories.get(advisoryId);
    const byHost = new Map<number, VulnerabilityFinding[]>();
    if (rec) {
      for (const e of rec.entries) {
        const buckets = this.#hostIndex[e.key];
        if (!buckets) continue;
        for (const [mver, hosts] of buckets) {
          if (hosts.n === 0) continue;
          const first = this.#hostByIdx[hosts.a[0]!]!;
          const table = first.table!;
          const hit = e.matcher.match(table.parsed[mver], table.keys[mver]);
          if (!hit) continue;
          for (let i = 0; i < hosts.n; i++) {
            const host = this.#hostByIdx[hosts.a[i]!]!;
            let list = byHost.get(host.idx);
            if (!list) byHost.set(host.idx, (list = []));
            this.#findingsForPair(host, e.key, mver, rec.advisory, e.matcher.affected, hit, list);
          }
        }
      }
    }
    const hosts = [...byHost.entries()]
      .map(([idx, findings]) => ({ hostId: this.#hostByIdx[idx]!.inventory.hostId, findings }))
      .sort((a, b) => (a.hostId < b.hostId ? -1 : a.hostId > b.hostId ? 1 : 0));
    return { advisoryId, hosts };
  }

  #putAdvisory(a: Advisory): void {
    // Compile first: an advisory whose versions do not parse (GS_ERR_SECURITY_BAD_VERSION) changes nothing.
    const compiled: { affected: AffectedPackage; matcher: AffectedMatcher }[] = [];
    if (a.withdrawn === undefined) {
      for (const p of a.affected) {
        if (schemeForEcosystem(p.ecosystem) !== undefined) compiled.push({ affected: p, matcher: new AffectedMatcher(p) });
      }
    }
    this.removeAdvisory(a.id);
    const entries: { key: number; matcher: AffectedMatcher }[] = [];
    for (const { affected: p, matcher } of compiled) {
      const key = this.#pkgKey(this.#keysOf(p.ecosystem), p.ecosystem, p.name);
      entries.push({ key, matcher });
      (this.#advIndex[key] ??= []).push({ id: a.id, matcher });
      this.#verdicts[key] = undefined;
    }
    this.#advisories.set(a.id, { advisory: a, entries });
  }

  // ------------------------------------------------------------ hosts

  /**
   * Take a host's new report (direction b): replace its inventory, update
   * the host index where it changed, and return its findings with what
   * changed since its previous report. A malformed inventory changes nothing:
   * `GS_ERR_SECURITY_MALFORMED_REPORT`, or `GS_ERR_SECURITY_BAD_VERSION`
   * naming the package whose version is not a version of the host's ecosystem.
   */
  updateHost(inventory: HostInventory): HostDiagnosis {
    const old = typeof inventory?.hostId === 'string' ? this.#hosts.get(inventory.hostId) : undefined;
    const rec = this.#buildRecord(inventory, old?.idx ?? this.#nextIdx);
    if (!old) this.#nextIdx++;
    const before = old ? this.#diagnose(old) : [];
    this.#reindex(old, rec);
    this.#hosts.set(inventory.hostId, rec);
    this.#hostByIdx[rec.idx] = rec;
    const findings = this.#diagnose(rec);
    const was = new Set(before.map(findingKey));
    const now = new Set(findings.map(findingKey));
    return {
      hostId: inventory.hostId,
      findings,
      added: findings.filter((f) => !was.has(findingKey(f))),
      resolved: before.filter((f) => !now.has(findingKey(f))),
      firstReport: old === undefined,
    };
  }

  /** Forget a host. True when it was known. */
  removeHost(hostId: string): boolean {
    const old = this.#hosts.get(hostId);
    if (!old) return false;
    this.#reindex(old, undefined);
    this.#hosts.delete(hostId);
    this.#hostByIdx[old.idx] = undefined;
    return true;
  }

  /** A known host's current findings (`undefined` for an unknown host). */
  diagnoseHost(hostId: string): Finding[] | undefined {
    const rec = this.#hosts.get(hostId);
    return rec && this.#diagnose(rec);
  }

  /** IDs of the known hosts. */
  hostIds(): string[] {
    return [...this.#hosts.keys()];
  }

  #diagnose(rec: HostRecord): Finding[] {
    const out: VulnerabilityFinding[] = [];
    const table = rec.table;
    if (table) {
      const n = rec.keys.length;
      for (let i = 0; i < n; i++) {
        const key = rec.keys[i]!;
        const advs = this.#advIndex[key];
        if (!advs || advs.length === 0) continue;
        const mver = rec.mver[i]!;
        let cache = this.#verdicts[key];
        if (!cache) this.#verdicts[key] = cache = new Map();
        let verdicts = cache.get(mver);
        if (verdicts === undefined) {
          const parsed = table.parsed[mver];
          const vkey = table.keys[mver];
          let found: Verdict[] | undefined;
          for (const { id, matcher } of advs) {
            const hit = matcher.match(parsed, vkey);
            if (hit) (found ??= []).push({ id, matcher, hit });
          }
          verdicts = found ?? NO_VERDICTS;
          cache.set(mver, verdicts);
        }
        for (const v of verdicts) out.push(this.#finding(rec, i, this.#advisories.get(v.id)!.advisory, v.matcher.affected, v.hit));
      }
      out.sort((a, b) => (a.advisoryId < b.advisoryId ? -1 : a.advisoryId > b.advisoryId ? 1 : a.package < b.package ? -1 : a.package > b.package ? 1 : 0));
    }
    const rules = resolveHostPolicy(this.#policy, rec.inventory.hostId);
    return rules ? [...out, ...evaluatePolicy(rec.inventory as HostInventory, rules)] : out;
  }

  /** Findings for each installed binary of `host` with this (key, matched version). */
  #findingsForPair(host: HostRecord, key: number, mver: number, adv: Advisory, affected: AffectedPackage, hit: RangeHit, out: VulnerabilityFinding[]): void {
    const { keys } = host;
    // Binary search for the first entry with this key; entries are sorted by key.
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < keys.length && keys[i] === key; i++) {
      if (host.mver[i] === mver) out.push(this.#finding(host, i, adv, affected, hit));
    }
  }

  #finding(host: HostRecord, i: number, adv: Advisory, affected: AffectedPackage, hit: RangeHit): VulnerabilityFinding {
    const table = host.table!;
    const pkg = this.#nameText[host.names[i]!]!;
    const installed = table.texts[(host.iver ?? host.mver)[i]!]!;
    const matchedVersion = table.texts[host.mver[i]!]!;
    const hostId = host.inventory.hostId;
    const steps = this.#plan(adv, affected, pkg, hit);
    const via = affected.name === pkg ? '' : ` (built from source ${affected.name}${matchedVersion === installed ? '' : ` ${matchedVersion}`})`;
    const aka = adv.aliases.length > 0 ? ` (${adv.aliases.slice(0, 3).join(', ')})` : '';
    return {
      kind: 'vulnerable',
      hostId,
      advisoryId: adv.id,
      aliases: adv.aliases,
      ...(adv.summary === undefined ? {} : { summary: adv.summary }),
      ecosystem: affected.ecosystem,
      package: pkg,
      matchedPackage: affected.name,
      installed,
      matchedVersion,
      range: hit,
      ...(hit.fixed === undefined ? {} : { fixed: hit.fixed }),
      countermeasure: steps,
      automatic: isAutomatic(steps),
      reason: `${hostId}: ${pkg} ${installed}${via} on ${affected.ecosystem} falls in ${adv.id}${aka} ${describeRange(hit)}; planned: ${steps.map(describeStep).join('; ')}.`,
    };
  }

  /**
   * The steps for one finding: the advisory's countermeasure entry (an
   * `upgrade` of the package the advisory names becomes an upgrade of the
   * installed binary, to the entry's version or else the range's fixed
   * version), or an upgrade to the fixed version, or a manual step when no
   * fix is known.
   */
  #plan(adv: Advisory, affected: AffectedPackage, binary: string, hit: RangeHit): Planned {
    const entry = this.#countermeasures.get(adv.id);
    if (entry) {
      return entry.map((s) => {
        if (s.kind !== 'upgrade' || (s.package !== affected.name && s.package !== binary)) return s;
        const version = s.version ?? hit.fixed;
        return version === undefined ? { kind: 'upgrade' as const, package: binary } : { kind: 'upgrade' as const, package: binary, version };
      });
    }
    if (hit.fixed !== undefined) return [{ kind: 'upgrade', package: binary, version: hit.fixed }];
    const refs = adv.references.slice(0, 3).map((r) => r.url);
    return [
      {
        kind: 'manual',
        instructions: `No fixed version of ${affected.name} is known for ${affected.ecosystem} in ${adv.id}${adv.summary ? ` (${adv.summary})` : ''}. Remove or replace ${binary}, or mitigate by hand${refs.length ? `; see ${refs.join(' ')}` : ''}.`,
      },
    ];
  }

  // ------------------------------------------------------------ records and indexes

  #keysOf(ecosystem: string): Map<string, number> {
    let m = this.#pkgKeys.get(ecosystem);
    if (!m) this.#pkgKeys.set(ecosystem, (m = new Map()));
    return m;
  }

  /** The interned (ecosystem, package name) pair; `byName` is `#keysOf(ecosystem)`. */
  #pkgKey(byName: Map<string, number>, ecosystem: string, name: string): number {
    let id = byName.get(name);
    if (id === undefined) {
      id = this.#pkgKeyCount++;
      byName.set(name, id);
    }
    return id;
  }

  #name(name: string): number {
    let id = this.#names.get(name);
    if (id === undefined) {
      id = this.#nameText.length;
      this.#names.set(name, id);
      this.#nameText.push(name);
    }
    return id;
  }

  #table(scheme: VersionScheme): VersionTable {
    let t = this.#tables.get(scheme.name);
    if (!t) this.#tables.set(scheme.name, (t = { scheme, ids: new Map(), parsed: [], keys: [], texts: [] }));
    return t;
  }

  #buildRecord(inv: HostInventory, idx: number): HostRecord {
    if (typeof inv !== 'object' || inv === null) throw malformedReport(undefined, 'must be an object');
    const { hostId } = inv;
    if (typeof hostId !== 'string' || hostId.length === 0 || hostId.length > INVENTORY_LIMITS.hostId || /[\u0000-\u001f\u007f]/.test(hostId)) {
      throw malformedReport(hostId, 'hostId must be a one-line string of 1–256 characters');
    }
    const os = inv.os;
    if (typeof os !== 'object' || os === null || typeof os.ecosystem !== 'string' || typeof os.id !== 'string' || typeof os.versionId !== 'string') {
      throw malformedReport(hostId, 'os must be { id, versionId, ecosystem } strings');
    }
    const pkgs = inv.packages;
    if (!Array.isArray(pkgs)) throw malformedReport(hostId, 'packages must be an array');
    if (pkgs.length > INVENTORY_LIMITS.packages) throw malformedReport(hostId, `more than ${INVENTORY_LIMITS.packages} packages`);
    if (inv.services !== undefined && (!Array.isArray(inv.services) || inv.services.length > INVENTORY_LIMITS.services)) {
      throw malformedReport(hostId, `services must be an array of at most ${INVENTORY_LIMITS.services}`);
    }
    if (inv.files !== undefined && (!Array.isArray(inv.files) || inv.files.length > INVENTORY_LIMITS.files)) {
      throw malformedReport(hostId, `files must be an array of at most ${INVENTORY_LIMITS.files}`);
    }
    const scheme = schemeForEcosystem(os.ecosystem);
    const table = scheme && this.#table(scheme);
    const n = table ? pkgs.length : 0;
    if (n > 0x100000) throw malformedReport(hostId, 'too many packages');
    // Check every package before interning names (a refused report adds no key or name;
    // valid versions are interned on the way: the version table is only a cache).
    // Packages of an ecosystem without a version ordering are checked but not matched.
    for (let i = 0; i < pkgs.length; i++) {
      const p = pkgs[i];
      if (typeof p !== 'object' || p === null) throw malformedReport(hostId, `packages[${i}] must be an object`);
      const { name, version, source, sourceVersion } = p;
      if (typeof name !== 'string' || name.length > 128 || !PACKAGE_NAME.test(name)) throw malformedReport(hostId, `packages[${i}].name is not a package name`);
      if (source !== undefined && (typeof source !== 'string' || source.length > 128 || !PACKAGE_NAME.test(source))) {
        throw malformedReport(hostId, `packages[${i}].source is not a package name`);
      }
      if (typeof version !== 'string') throw malformedReport(hostId, `packages[${i}].version must be a string`);
      if (sourceVersion !== undefined && typeof sourceVersion !== 'string') throw malformedReport(hostId, `packages[${i}].sourceVersion must be a string`);
      if (table === undefined) continue;
      this.#checkVersion(table, hostId, name, version);
      if (sourceVersion !== undefined) this.#checkVersion(table, hostId, name, sourceVersion);
    }
    // Intern, then order the packages by key with one native sort of (key · 2^20 + position).
    const keysByEco = n > 0 ? this.#keysOf(os.ecosystem) : undefined;
    const key0 = new Int32Array(n);
    const order = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const p = pkgs[i]!;
      const k = this.#pkgKey(keysByEco!, os.ecosystem, p.source ?? p.name);
      key0[i] = k;
      order[i] = k * 0x100000 + i;
    }
    order.sort();
    const keys = new Int32Array(n);
    const mver = new Int32Array(n);
    let iver: Int32Array | undefined;
    const names = new Int32Array(n);
    for (let j = 0; j < n; j++) {
      const i = order[j]! % 0x100000;
      const p = pkgs[i]!;
      keys[j] = key0[i]!;
      const installed = this.#version(table!, p.version);
      if (p.sourceVersion === undefined) mver[j] = installed;
      else {
        mver[j] = this.#version(table!, p.sourceVersion);
        if (iver === undefined && mver[j] !== installed) iver = mver.slice(); // first difference: copy what is equal so far
      }
      if (iver !== undefined) iver[j] = installed;
      names[j] = this.#name(p.name);
    }
    return {
      idx,
      inventory: { hostId, os, ...(inv.services ? { services: inv.services } : {}), ...(inv.files ? { files: inv.files } : {}) },
      table,
      keys,
      mver,
      iver,
      names,
    };
  }

  #checkVersion(table: VersionTable, hostId: string, name: string, v: string): void {
    try {
      this.#version(table, v);
    } catch (err) {
      throw new SecurityCenterError('GS_ERR_SECURITY_BAD_VERSION', `inventory of ${JSON.stringify(hostId)}: package ${name}: ${(err as Error).message}`, { cause: err });
    }
  }

  #version(t: VersionTable, text: string): number {
    let id = t.ids.get(text);
    if (id === undefined) {
      const parsed = t.scheme.parse(text);
      id = t.texts.length;
      t.ids.set(text, id);
      t.parsed.push(parsed);
      t.keys.push(t.scheme.key(parsed));
      t.texts.push(text);
    }
    return id;
  }

  /** Distinct (key, matched version) pairs of a host, as numbers. */
  static #pairs(rec: HostRecord): Set<number> {
    const s = new Set<number>();
    for (let i = 0; i < rec.keys.length; i++) s.add(rec.keys[i]! * 4294967296 + rec.mver[i]!);
    return s;
  }

  /**
   * Move one host's entries in the host index from `old` to `next` (same
   * index number): only the (key, version) pairs that differ are touched.
   */
  #reindex(old: HostRecord | undefined, next: HostRecord | undefined): void {
    const idx = (next ?? old)!.idx;
    if (old === undefined && next !== undefined) {
      // A new host: add each distinct pair (equal keys are adjacent; look back over them).
      const { keys, mver } = next;
      for (let i = 0; i < keys.length; i++) {
        let dup = false;
        for (let j = i - 1; j >= 0 && keys[j] === keys[i]; j--) if (mver[j] === mver[i]) dup = true;
        if (!dup) this.#addPair(keys[i]!, mver[i]!, idx);
      }
      return;
    }
    const before = old ? DiagnosisEngine.#pairs(old) : new Set<number>();
    const after = next ? DiagnosisEngine.#pairs(next) : new Set<number>();
    for (const pair of before) {
      if (after.has(pair)) continue;
      const key = Math.floor(pair / 4294967296);
      const mver = pair % 4294967296;
      const buckets = this.#hostIndex[key];
      const list = buckets?.get(mver);
      if (!list) continue;
      list.remove(idx);
      if (list.n === 0) buckets!.delete(mver);
    }
    for (const pair of after) {
      if (!before.has(pair)) this.#addPair(Math.floor(pair / 4294967296), pair % 4294967296, idx);
    }
  }

  #addPair(key: number, mver: number, idx: number): void {
    let buckets = this.#hostIndex[key];
    if (!buckets) this.#hostIndex[key] = buckets = new Map();
    let list = buckets.get(mver);
    if (!list) buckets.set(mver, (list = new IntList()));
    list.push(idx);
  }
}

/**
 * Load a store's advisories and countermeasures into an engine (at start).
 * Returns how many advisories were loaded.
 * @public
 */
export async function loadAdvisories(engine: DiagnosisEngine, store: SecurityStore): Promise<number> {
  let n = 0;
  let batch: Advisory[] = [];
  for await (const a of store.advisories()) {
    batch.push(a);
    n++;
    if (batch.length === 1000) {
      engine.addAdvisories(batch);
      batch = [];
    }
  }
  engine.addAdvisories(batch);
  engine.setCountermeasureSet(await store.countermeasures());
  return n;
}
