/**
 * Import of OSV JSON (https://ossf.github.io/osv-schema/, schema 1.x) for the
 * ecosystems whose versions are ordered here (Debian, Ubuntu, RPM-based;
 * see {@link SUPPORTED_ECOSYSTEMS}).
 *
 * Debian's OSV records (`DSA-…`, `DLA-…`, `DEBIAN-CVE-…`) name the SOURCE
 * package (`openssl`, not `libssl3`) and source versions; the diagnosis
 * matches them against the source of each installed binary when the
 * inventory carries it.
 *
 * Checking is strict and all or nothing per document: a wrong type, an
 * oversized field, a version that is not a version in its ecosystem, a range
 * type that is not ECOSYSTEM (GIT ranges, which name commits, are skipped as
 * unusable for installed packages), an event with no or several kinds, a
 * range with both `fixed` and `last_affected` (the schema forbids it) or
 * without `introduced`, or a duplicated ID, throws `SecurityCenterError`
 * `GS_ERR_SECURITY_MALFORMED_ADVISORY` naming the document, the entry and the
 * field (`osv/DSA-5532-1.json: DSA-5532-1: affected[0].ranges[0].events[1].fixed: …`).
 * Fields this importer does not know are ignored, as the schema asks.
 */
import { SecurityCenterError } from '../../../errors/index.js';
import { schemeForEcosystem, SUPPORTED_ECOSYSTEMS } from '../versions/scheme.js';
import { checkAdvisoryId } from './countermeasures.js';
import { ADVISORY_LIMITS, PACKAGE_NAME, checkArray, checkString, describe, isObject, malformed, parseJsonText } from './limits.js';
import type { Advisory, AdvisoryReference, AdvisorySeverity, AffectedPackage, AffectedRange, RangeEvent } from './model.js';

/** Options of {@link parseOsv}. @public */
export interface OsvImportOptions {
  /**
   * What to do with an `affected` entry in an ecosystem without a version
   * scheme here (npm, PyPI…): `'reject'` (default) fails the document,
   * `'skip'` drops the entry and keeps the rest.
   */
  readonly unsupportedEcosystems?: 'reject' | 'skip';
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const REFERENCE_TYPES = new Set(['ADVISORY', 'ARTICLE', 'DETECTION', 'DISCUSSION', 'REPORT', 'FIX', 'INTRODUCED', 'GIT', 'PACKAGE', 'EVIDENCE', 'WEB']);
const EVENT_KINDS = { introduced: 'introduced', fixed: 'fixed', last_affected: 'lastAffected', limit: 'limit' } as const;

function checkTime(v: unknown, where: string): string {
  const s = checkString(v, where, 40);
  if (!RFC3339.test(s) || Number.isNaN(Date.parse(s))) throw malformed(where, `${JSON.stringify(s)} is not an RFC 3339 time`);
  return s;
}

function optional<T>(v: unknown, check: (v: unknown) => T): T | undefined {
  return v === undefined ? undefined : check(v);
}

function checkJsonObject(v: unknown, where: string): Readonly<Record<string, unknown>> {
  if (!isObject(v)) throw malformed(where, `must be an object, got ${describe(v)}`);
  return v;
}

function checkIdList(v: unknown, where: string): readonly string[] {
  if (v === undefined) return [];
  return checkArray(v, where, ADVISORY_LIMITS.listItems).map((x, i) => checkString(x, `${where}[${i}]`, ADVISORY_LIMITS.id));
}

function checkVersion(ecosystem: string, v: unknown, where: string): string {
  const s = checkString(v, where, ADVISORY_LIMITS.id);
  try {
    schemeForEcosystem(ecosystem)!.parse(s);
  } catch (err) {
    if (err instanceof SecurityCenterError) throw malformed(where, err.message, err);
    throw err;
  }
  return s;
}

function parseEvent(ecosystem: string, v: unknown, where: string): RangeEvent {
  if (!isObject(v)) throw malformed(where, `must be an object, got ${describe(v)}`);
  const keys = Object.keys(v);
  if (keys.length !== 1 || !(keys[0]! in EVENT_KINDS)) {
    throw malformed(where, `must have exactly one of "introduced", "fixed", "last_affected", "limit"; has ${JSON.stringify(keys)}`);
  }
  const key = keys[0] as keyof typeof EVENT_KINDS;
  const kind = EVENT_KINDS[key];
  const w = `${where}.${key}`;
  // "0" (introduced) and "*" (limit) are the schema's sentinels, not versions.
  if (kind === 'introduced' && v[key] === '0') return { kind, version: '0' };
  if (kind === 'limit' && v[key] === '*') return { kind, version: '*' };
  return { kind, version: checkVersion(ecosystem, v[key], w) };
}

function parseRange(ecosystem: string, v: unknown, where: string): AffectedRange | undefined {
  if (!isObject(v)) throw malformed(where, `must be an object, got ${describe(v)}`);
  if (v.type === 'GIT') return undefined;
  if (v.type === 'SEMVER') throw malformed(`${where}.type`, `SEMVER ranges do not apply to ${ecosystem}, whose versions are not semantic versions`);
  if (v.type !== 'ECOSYSTEM') throw malformed(`${where}.type`, `unknown range type ${describe(v.type)} (ECOSYSTEM, GIT or SEMVER)`);
  const raw = checkArray(v.events, `${where}.events`, ADVISORY_LIMITS.events);
  if (raw.length === 0) throw malformed(`${where}.events`, 'must not be empty');
  const events = raw.map((e, i) => parseEvent(ecosystem, e, `${where}.events[${i}]`));
  if (!events.some((e) => e.kind === 'introduced')) throw malformed(`${where}.events`, 'has no "introduced" event');
  if (events.some((e) => e.kind === 'fixed') && events.some((e) => e.kind === 'lastAffected')) {
    throw malformed(`${where}.events`, 'has both "fixed" and "last_affected" (the OSV schema allows one kind per range)');
  }
  return { type: 'ECOSYSTEM', events: Object.freeze(events) };
}

function parseAffected(v: unknown, where: string, opts: OsvImportOptions): AffectedPackage | undefined {
  if (!isObject(v)) throw malformed(where, `must be an object, got ${describe(v)}`);
  if (!isObject(v.package)) throw malformed(`${where}.package`, `must be an object with ecosystem and name, got ${describe(v.package)}`);
  const ecosystem = checkString(v.package.ecosystem, `${where}.package.ecosystem`, ADVISORY_LIMITS.id);
  if (schemeForEcosystem(ecosystem) === undefined) {
    if (opts.unsupportedEcosystems === 'skip') return undefined;
    throw malformed(`${where}.package.ecosystem`, `${JSON.stringify(ecosystem)} has no version ordering here (supported: ${SUPPORTED_ECOSYSTEMS.join(', ')})`);
  }
  const name = checkString(v.package.name, `${where}.package.name`, ADVISORY_LIMITS.packageName);
  if (!PACKAGE_NAME.test(name)) throw malformed(`${where}.package.name`, `${JSON.stringify(name)} is not a package name`);
  const purl = optional(v.package.purl, (p) => checkString(p, `${where}.package.purl`, ADVISORY_LIMITS.url));
  const ranges: AffectedRange[] = [];
  if (v.ranges !== undefined) {
    checkArray(v.ranges, `${where}.ranges`, ADVISORY_LIMITS.ranges).forEach((r, i) => {
      const range = parseRange(ecosystem, r, `${where}.ranges[${i}]`);
      if (range) ranges.push(range);
    });
  }
  const versions =
    v.versions === undefined
      ? []
      : checkArray(v.versions, `${where}.versions`, ADVISORY_LIMITS.versions).map((x, i) => checkVersion(ecosystem, x, `${where}.versions[${i}]`));
  return {
    ecosystem,
    name,
    ...(purl === undefined ? {} : { purl }),
    ranges: Object.freeze(ranges),
    versions: Object.freeze(versions),
    ...(v.ecosystem_specific === undefined ? {} : { ecosystemSpecific: checkJsonObject(v.ecosystem_specific, `${where}.ecosystem_specific`) }),
    ...(v.database_specific === undefined ? {} : { databaseSpecific: checkJsonObject(v.database_specific, `${where}.database_specific`) }),
  };
}

function parseReference(v: unknown, where: string): AdvisoryReference {
  if (!isObject(v)) throw malformed(where, `must be an object, got ${describe(v)}`);
  const type = checkString(v.type, `${where}.type`, 32);
  if (!REFERENCE_TYPES.has(type)) throw malformed(`${where}.type`, `unknown reference type ${JSON.stringify(type)}`);
  const url = checkString(v.url, `${where}.url`, ADVISORY_LIMITS.url);
  let ok = false;
  try {
    const u = new URL(url);
    ok = u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    ok = false;
  }
  if (!ok) throw malformed(`${where}.url`, `${JSON.stringify(url.slice(0, 80))} is not an http(s) URL`);
  return { type, url };
}

function parseSeverity(v: unknown, where: string): AdvisorySeverity {
  if (!isObject(v)) throw malformed(where, `must be an object, got ${describe(v)}`);
  return { type: checkString(v.type, `${where}.type`, 32), score: checkString(v.score, `${where}.score`, 256) };
}

/**
 * Check one OSV record (an already parsed JSON value). `source` names the
 * document in errors.
 * @public
 */
export function parseOsvRecord(v: unknown, source = 'osv', opts: OsvImportOptions = {}): Advisory {
  if (!isObject(v)) throw malformed(source, `an OSV record must be an object, got ${describe(v)}`);
  const id = checkAdvisoryId(v.id, `${source}: id`);
  const at = `${source}: ${id}`;
  const modified = checkTime(v.modified, `${at}: modified`);
  const published = optional(v.published, (x) => checkTime(x, `${at}: published`));
  const withdrawn = optional(v.withdrawn, (x) => checkTime(x, `${at}: withdrawn`));
  const summary = optional(v.summary, (x) => checkString(x, `${at}: summary`, ADVISORY_LIMITS.summary));
  const details = optional(v.details, (x) => checkString(x, `${at}: details`, ADVISORY_LIMITS.details, { multiline: true }));
  const aliases = checkIdList(v.aliases, `${at}: aliases`);
  const related = checkIdList(v.related, `${at}: related`);
  const severity = v.severity === undefined ? [] : checkArray(v.severity, `${at}: severity`, 16).map((s, i) => parseSeverity(s, `${at}: severity[${i}]`));
  const affected: AffectedPackage[] = [];
  if (v.affected !== undefined) {
    checkArray(v.affected, `${at}: affected`, ADVISORY_LIMITS.affected).forEach((a, i) => {
      const p = parseAffected(a, `${at}: affected[${i}]`, opts);
      if (p) affected.push(p);
    });
  }
  const references =
    v.references === undefined
      ? []
      : checkArray(v.references, `${at}: references`, ADVISORY_LIMITS.listItems).map((r, i) => parseReference(r, `${at}: references[${i}]`));
  const databaseSpecific = optional(v.database_specific, (x) => checkJsonObject(x, `${at}: database_specific`));
  return Object.freeze({
    id,
    modified,
    ...(published === undefined ? {} : { published }),
    ...(withdrawn === undefined ? {} : { withdrawn }),
    aliases: Object.freeze(aliases),
    related: Object.freeze(related),
    ...(summary === undefined ? {} : { summary }),
    ...(details === undefined ? {} : { details }),
    severity: Object.freeze(severity),
    affected: Object.freeze(affected),
    references: Object.freeze(references),
    ...(databaseSpecific === undefined ? {} : { databaseSpecific }),
  });
}

/**
 * Parse an OSV document: one record, or an array of records (as
 * `osv-scanner`'s and osv.dev's bulk exports hold them). All or nothing.
 *
 * @example
 * ```ts
 * const advisories = parseOsv(await readFile('DSA-5532-1.json'), 'DSA-5532-1.json');
 * ```
 * @public
 */
export function parseOsv(input: string | Uint8Array, source = 'osv', opts: OsvImportOptions = {}): Advisory[] {
  return parseOsvDocument(parseJsonText(input, source), source, opts);
}

/** {@link parseOsv} on an already parsed JSON value. @public */
export function parseOsvDocument(doc: unknown, source = 'osv', opts: OsvImportOptions = {}): Advisory[] {
  const list = Array.isArray(doc) ? checkArray(doc, source, ADVISORY_LIMITS.advisories) : [doc];
  const seen = new Set<string>();
  return list.map((rec, i) => {
    const a = parseOsvRecord(rec, Array.isArray(doc) ? `${source}[${i}]` : source, opts);
    if (seen.has(a.id)) throw malformed(`${source}: ${a.id}`, 'appears twice in one document');
    seen.add(a.id);
    return a;
  });
}
