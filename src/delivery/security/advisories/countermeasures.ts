/**
 * Countermeasure entries: gatesock's own format saying what to do about an
 * advisory (seed 004 §3 item ②: the reconfiguration or the command script
 * "kept alongside each security-hole entry"). OSV says which versions are
 * affected and which fix them; this file says how to act.
 *
 * A countermeasure file is one JSON object:
 *
 * ```json
 * {
 *   "format": "gatesock-countermeasures/1",
 *   "countermeasures": {
 *     "DSA-5532-1": [{ "kind": "upgrade", "package": "openssl", "version": "3.0.11-1~deb12u2" }],
 *     "LOCAL-2026-0001": [
 *       { "kind": "config", "path": "/etc/ssh/sshd_config", "set": { "PermitRootLogin": "no" } },
 *       { "kind": "command", "argv": ["systemctl", "reload", "ssh"] }
 *     ],
 *     "CVE-1999-0139": [{ "kind": "manual", "instructions": "chmod 711 /usr/openwin/bin/mkcookie" }]
 *   }
 * }
 * ```
 *
 * Each advisory ID maps to its steps, run in order:
 *
 * - `upgrade`: bring `package` to at least `version`. `package` may name the
 *   source package (as Debian advisories do): the plan then upgrades each
 *   installed binary built from it. Without `version`, the fixed version of
 *   the range the host's version fell in.
 * - `config`: in the file at absolute `path`, set each key of `set` to its
 *   value (`key value` or `key=value` lines, as the file already uses).
 * - `command`: run `argv` (no shell: `argv[0]` is the program).
 * - `manual`: cannot be automated; `instructions` go to a person.
 *
 * A file that fails any check imports nothing (`SecurityCenterError`
 * `GS_ERR_SECURITY_MALFORMED_ADVISORY`, naming the entry and the field).
 */
import { posix } from 'node:path';
import { isDebianVersion } from '../versions/debian.js';
import { parseRpmVersion } from '../versions/rpm.js';
import { ADVISORY_LIMITS, PACKAGE_NAME, checkArray, checkString, describe, isObject, malformed, parseJsonText } from './limits.js';

/** The `format` value of a countermeasure file. @public */
export const COUNTERMEASURE_FORMAT = 'gatesock-countermeasures/1';

/** Upgrade a package (or every installed binary of a source package) to at least a version. @public */
export interface UpgradeStep {
  /** Always `upgrade`. */
  readonly kind: 'upgrade';
  /** Binary or source package name. */
  readonly package: string;
  /** Minimum version; absent means the fixed version of the matched range. */
  readonly version?: string;
}

/** Set keys in a configuration file. @public */
export interface ConfigStep {
  /** Always `config`. */
  readonly kind: 'config';
  /** Absolute, normalised path (no `..`, no `//`). */
  readonly path: string;
  /** Keys and the values they must have. */
  readonly set: Readonly<Record<string, string>>;
}

/** Run a program with arguments (no shell). @public */
export interface CommandStep {
  /** Always `command`. */
  readonly kind: 'command';
  /** Program and arguments. */
  readonly argv: readonly string[];
}

/** What a person must do; sent through the notifier. @public */
export interface ManualStep {
  /** Always `manual`: a person does it. */
  readonly kind: 'manual';
  /** Instructions, plain text. */
  readonly instructions: string;
}

/** One step of a countermeasure. @public */
export type Countermeasure = UpgradeStep | ConfigStep | CommandStep | ManualStep;

/** Countermeasures by advisory ID. @public */
export type CountermeasureSet = ReadonlyMap<string, readonly Countermeasure[]>;

const CONFIG_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$/;

/** Check an absolute, normalised POSIX path (no `..`, no empty segment, no NUL); throw naming `where`. */
export function checkAbsolutePath(v: unknown, where: string): string {
  const p = checkString(v, where, ADVISORY_LIMITS.arg);
  if (!p.startsWith('/')) throw malformed(where, `${JSON.stringify(p)} is not an absolute path`);
  if (posix.normalize(p) !== p || p.split('/').includes('..') || (p.length > 1 && p.endsWith('/'))) {
    throw malformed(where, `${JSON.stringify(p)} is not a normalised path (no "..", "//" or trailing "/")`);
  }
  return p;
}

function isVersionSomewhere(v: string): boolean {
  if (isDebianVersion(v)) return true;
  try {
    parseRpmVersion(v);
    return true;
  } catch {
    return false;
  }
}

/**
 * Check one step (a parsed JSON value); `where` names it in errors
 * (`DSA-5532-1[0]`). Unknown fields are refused, so a typo is not silently ignored.
 * @public
 */
export function parseCountermeasure(v: unknown, where: string): Countermeasure {
  if (!isObject(v)) throw malformed(where, `must be an object, got ${describe(v)}`);
  const allow = (fields: readonly string[]) => {
    for (const k of Object.keys(v)) if (!fields.includes(k)) throw malformed(`${where}.${k}`, `unknown field for kind ${JSON.stringify(v.kind)}`);
  };
  switch (v.kind) {
    case 'upgrade': {
      allow(['kind', 'package', 'version']);
      const pkg = checkString(v.package, `${where}.package`, ADVISORY_LIMITS.packageName);
      if (!PACKAGE_NAME.test(pkg)) throw malformed(`${where}.package`, `${JSON.stringify(pkg)} is not a package name`);
      if (v.version === undefined) return { kind: 'upgrade', package: pkg };
      const version = checkString(v.version, `${where}.version`, ADVISORY_LIMITS.id);
      if (!isVersionSomewhere(version)) throw malformed(`${where}.version`, `${JSON.stringify(version)} is not a Debian or RPM version`);
      return { kind: 'upgrade', package: pkg, version };
    }
    case 'config': {
      allow(['kind', 'path', 'set']);
      const path = checkAbsolutePath(v.path, `${where}.path`);
      if (!isObject(v.set)) throw malformed(`${where}.set`, `must be an object of key → value, got ${describe(v.set)}`);
      const keys = Object.keys(v.set);
      if (keys.length === 0) throw malformed(`${where}.set`, 'must set at least one key');
      if (keys.length > ADVISORY_LIMITS.argv) throw malformed(`${where}.set`, `more than ${ADVISORY_LIMITS.argv} keys`);
      const set: Record<string, string> = {};
      for (const k of keys) {
        if (!CONFIG_KEY.test(k) || k.length > ADVISORY_LIMITS.id) throw malformed(`${where}.set`, `${JSON.stringify(k)} is not a setting name`);
        const value = v.set[k];
        if (typeof value !== 'string') throw malformed(`${where}.set.${k}`, `must be a string, got ${describe(value)}`);
        if (value.length > ADVISORY_LIMITS.arg || /[\u0000-\u001f\u007f]/.test(value)) {
          throw malformed(`${where}.set.${k}`, 'must be one line without control characters');
        }
        set[k] = value;
      }
      return { kind: 'config', path, set: Object.freeze(set) };
    }
    case 'command': {
      allow(['kind', 'argv']);
      const argv = checkArray(v.argv, `${where}.argv`, ADVISORY_LIMITS.argv);
      if (argv.length === 0) throw malformed(`${where}.argv`, 'must name a program');
      const out = argv.map((a, i) => {
        if (typeof a !== 'string') throw malformed(`${where}.argv[${i}]`, `must be a string, got ${describe(a)}`);
        if (a.length > ADVISORY_LIMITS.arg || a.includes('\0')) throw malformed(`${where}.argv[${i}]`, 'too long or contains NUL');
        return a;
      });
      if (out[0] === '') throw malformed(`${where}.argv[0]`, 'must not be empty');
      return { kind: 'command', argv: Object.freeze(out) };
    }
    case 'manual': {
      allow(['kind', 'instructions']);
      return { kind: 'manual', instructions: checkString(v.instructions, `${where}.instructions`, ADVISORY_LIMITS.details, { multiline: true }) };
    }
    default:
      throw malformed(`${where}.kind`, `must be "upgrade", "config", "command" or "manual", got ${describe(v.kind)}`);
  }
}

/** Check one advisory's list of steps. */
export function parseCountermeasureSteps(v: unknown, where: string): readonly Countermeasure[] {
  const steps = checkArray(v, where, ADVISORY_LIMITS.steps);
  if (steps.length === 0) throw malformed(where, 'must hold at least one step');
  return Object.freeze(steps.map((s, i) => parseCountermeasure(s, `${where}[${i}]`)));
}

/**
 * Parse a countermeasure file (text, bytes, or an already parsed value).
 * All or nothing: any bad entry throws `GS_ERR_SECURITY_MALFORMED_ADVISORY`
 * naming `source`, the advisory ID and the field.
 *
 * @example
 * ```ts
 * const set = parseCountermeasureFile(await readFile('local.json'), 'local.json');
 * set.get('DSA-5532-1'); // [{ kind: 'upgrade', package: 'openssl', version: '3.0.11-1~deb12u2' }]
 * ```
 * @public
 */
export function parseCountermeasureFile(input: string | Uint8Array, source = 'countermeasures'): CountermeasureSet {
  return parseCountermeasureDocument(parseJsonText(input, source), source);
}

/** {@link parseCountermeasureFile} on an already parsed JSON value. @public */
export function parseCountermeasureDocument(doc: unknown, source = 'countermeasures'): CountermeasureSet {
  if (!isObject(doc)) throw malformed(source, `must be a JSON object, got ${describe(doc)}`);
  for (const k of Object.keys(doc)) if (k !== 'format' && k !== 'countermeasures') throw malformed(`${source}: ${k}`, 'unknown field');
  if (doc.format !== COUNTERMEASURE_FORMAT) throw malformed(`${source}: format`, `must be ${JSON.stringify(COUNTERMEASURE_FORMAT)}, got ${describe(doc.format)}`);
  if (!isObject(doc.countermeasures)) throw malformed(`${source}: countermeasures`, `must be an object of advisory ID → steps, got ${describe(doc.countermeasures)}`);
  const ids = Object.keys(doc.countermeasures);
  if (ids.length > ADVISORY_LIMITS.advisories) throw malformed(`${source}: countermeasures`, `more than ${ADVISORY_LIMITS.advisories} entries`);
  const out = new Map<string, readonly Countermeasure[]>();
  for (const id of ids) {
    const where = `${source}: ${id}`;
    checkAdvisoryId(id, where);
    out.set(id, parseCountermeasureSteps(doc.countermeasures[id], where));
  }
  return out;
}

/** OSV IDs (`DSA-5532-1`, `CVE-2024-3094`, `RHSA-2024:1234`, `GHSA-…`) and local ones. */
export const ADVISORY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/** Check an advisory ID; throw naming `where`. */
export function checkAdvisoryId(v: unknown, where: string): string {
  const id = checkString(v, where, ADVISORY_LIMITS.id);
  if (!ADVISORY_ID.test(id)) throw malformed(where, `${JSON.stringify(id)} is not an advisory ID (letters, digits and "._:-")`);
  return id;
}
