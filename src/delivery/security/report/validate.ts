/**
 * The center's check of an incoming configuration report. Nothing from an
 * agent is trusted: the size is capped before parsing, every object must have
 * exactly its keys with their types, lists are counted, paths and versions
 * are checked, keys are unique, file contents must hash to the reported
 * digest, and the report must be for the host the channel authenticated.
 * A report that fails changes nothing; the error says which field broke
 * which rule.
 */
import { createHash } from 'node:crypto';
import { SecurityCenterError, type SecurityCenterErrorCode } from '../../../errors/index.js';
import { isMsid } from '../../../session/index.js';
import { canonicalIp } from './ip.js';
import { parseDebianVersion, parseRpmVersion } from '../versions/index.js';
import { hostPathProblem, isArch, isPackageName, isPrintable } from './syntax.js';
import {
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
  type ReportLimits,
  type ServiceEntry,
  type SetChanges,
} from './types.js';

/** Options of {@link parseConfigurationReport} and {@link validateConfigurationReport}. @public */
export interface ReportCheckOptions {
  /**
   * The MSID the channel authenticated (the agent's certificate). A report
   * naming another host is refused with `GS_ERR_SECURITY_WRONG_HOST`.
   */
  readonly authenticatedMsid: string;
  /** Limits; each missing one takes {@link DEFAULT_REPORT_LIMITS}' value. */
  readonly limits?: Partial<ReportLimits>;
}

const OMITTED: readonly OmittedReason[] = ['policy', 'too-large', 'not-text'];
const SHA256_RE = /^[0-9a-f]{64}$/;
const OS_ID_RE = /^[A-Za-z0-9._~+-]{0,64}$/;
const KERNEL_RE = /^[A-Za-z0-9._+~-]{1,128}$/;

/** Raised inside the checker; carries the code so one catch site builds the public error. */
class Refusal {
  constructor(readonly code: SecurityCenterErrorCode, readonly message: string) {}
}

function refuse(field: string, rule: string, code: SecurityCenterErrorCode = 'GS_ERR_SECURITY_MALFORMED_REPORT'): never {
  throw new Refusal(code, `${field} ${rule}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `v` must be a plain object with exactly `keys`. */
function exactObject(v: unknown, field: string, keys: readonly string[]): Record<string, unknown> {
  if (!isObject(v)) refuse(field, 'is not an object');
  const have = Object.keys(v);
  for (const k of have) if (!keys.includes(k)) refuse(field, `has an unknown key ${JSON.stringify(k.slice(0, 64))}`);
  for (const k of keys) if (!Object.hasOwn(v, k)) refuse(field, `lacks the key "${k}"`);
  return v;
}

function list(v: unknown, field: string, max: number): unknown[] {
  if (!Array.isArray(v)) refuse(field, 'is not an array');
  if (v.length > max) refuse(field, `has ${v.length} entries, more than the limit ${max}`);
  return v;
}

function safeInt(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) refuse(field, `is not an integer in ${min}..${max}`);
  return v;
}

function text(v: unknown, field: string, max: number): string {
  if (!isPrintable(v, max)) refuse(field, `is not printable text of at most ${max} characters`);
  return v;
}

function nullable<T>(v: unknown, check: (x: unknown) => T): T | null {
  return v === null ? null : check(v);
}

function checkOs(v: unknown, field: string): OsInfo {
  const o = exactObject(v, field, ['id', 'versionId', 'name', 'prettyName', 'idLike', 'versionCodename']);
  const id = text(o.id, `${field}.id`, 64);
  if (!OS_ID_RE.test(id) || id === '') refuse(`${field}.id`, 'is not an os-release ID');
  const versionId = text(o.versionId, `${field}.versionId`, 64);
  if (!OS_ID_RE.test(versionId)) refuse(`${field}.versionId`, 'is not an os-release VERSION_ID');
  const idLike = list(o.idLike, `${field}.idLike`, 16).map((x, i) => {
    const s = text(x, `${field}.idLike[${i}]`, 64);
    if (!OS_ID_RE.test(s) || s === '') refuse(`${field}.idLike[${i}]`, 'is not an os-release ID');
    return s;
  });
  const versionCodename = text(o.versionCodename, `${field}.versionCodename`, 64);
  if (!OS_ID_RE.test(versionCodename)) refuse(`${field}.versionCodename`, 'is not an os-release VERSION_CODENAME');
  return { id, versionId, name: text(o.name, `${field}.name`, 256), prettyName: text(o.prettyName, `${field}.prettyName`, 256), idLike, versionCodename };
}

function checkKernel(v: unknown, field: string): string {
  if (typeof v !== 'string' || !KERNEL_RE.test(v)) refuse(field, 'is not a kernel release');
  return v;
}

function checkAddresses(v: unknown, field: string, limits: ReportLimits): string[] {
  const out = list(v, field, limits.maxAddresses).map((x, i) => {
    if (canonicalIp(x) !== x) refuse(`${field}[${i}]`, 'is not an IP address in canonical form');
    return x as string;
  });
  unique(out, (a) => a, field);
  return out;
}

function checkVersion(manager: 'dpkg' | 'rpm', v: unknown, field: string): string {
  if (typeof v !== 'string') refuse(field, 'is not a version string', 'GS_ERR_SECURITY_BAD_VERSION');
  try {
    // The versions module's strict parsers say which rule a version breaks.
    if (manager === 'dpkg') parseDebianVersion(v);
    else if (parseRpmVersion(v).release === undefined) refuse(field, `${JSON.stringify(v.slice(0, 80))} is not an rpm version: it has no release`, 'GS_ERR_SECURITY_BAD_VERSION');
  } catch (err) {
    if (err instanceof SecurityCenterError) refuse(field, err.message, 'GS_ERR_SECURITY_BAD_VERSION');
    throw err;
  }
  return v;
}

function checkPackage(v: unknown, field: string): PackageEntry {
  const o = exactObject(v, field, ['manager', 'name', 'version', 'arch', 'source', 'sourceVersion']);
  if (o.manager !== 'dpkg' && o.manager !== 'rpm') refuse(`${field}.manager`, 'is not "dpkg" or "rpm"');
  const manager = o.manager;
  if (!isPackageName(o.name)) refuse(`${field}.name`, 'is not a package name');
  const version = checkVersion(manager, o.version, `${field}.version`);
  if (!isArch(o.arch)) refuse(`${field}.arch`, 'is not an architecture');
  const source = nullable(o.source, (s) => {
    if (!isPackageName(s)) refuse(`${field}.source`, 'is not a package name');
    return s;
  });
  const sourceVersion = nullable(o.sourceVersion, (s) => checkVersion(manager, s, `${field}.sourceVersion`));
  return { manager, name: o.name, version, arch: o.arch, source, sourceVersion };
}

function checkService(v: unknown, field: string): ServiceEntry {
  const o = exactObject(v, field, ['proto', 'address', 'port', 'process']);
  if (o.proto !== 'tcp' && o.proto !== 'udp') refuse(`${field}.proto`, 'is not "tcp" or "udp"');
  if (canonicalIp(o.address) !== o.address) refuse(`${field}.address`, 'is not an IP address in canonical form');
  const port = safeInt(o.port, `${field}.port`, 0, 65535);
  const process = nullable(o.process, (p) => text(p, `${field}.process`, 64));
  return { proto: o.proto, address: o.address as string, port, process };
}

function checkFile(v: unknown, field: string, limits: ReportLimits): FileEntry {
  const o = exactObject(v, field, ['path', 'sha256', 'size', 'content', 'omitted']);
  const problem = hostPathProblem(o.path);
  if (problem !== undefined) refuse(`${field}.path`, problem, 'GS_ERR_SECURITY_UNSAFE_PATH');
  const path = o.path as string;
  const sha256 = nullable(o.sha256, (s) => {
    if (typeof s !== 'string' || !SHA256_RE.test(s)) refuse(`${field}.sha256`, 'is not 64 lower-case hex digits');
    return s;
  });
  const size = nullable(o.size, (s) => safeInt(s, `${field}.size`, 0, Number.MAX_SAFE_INTEGER));
  if ((sha256 === null) !== (size === null)) refuse(field, 'has only one of sha256 and size');
  const content = nullable(o.content, (c) => {
    if (typeof c !== 'string') refuse(`${field}.content`, 'is not a string');
    return c;
  });
  const omitted = nullable(o.omitted, (x) => {
    if (!OMITTED.includes(x as OmittedReason)) refuse(`${field}.omitted`, `is not one of ${OMITTED.join(', ')}`);
    return x as OmittedReason;
  });
  if (sha256 === null && (content !== null || omitted !== null)) refuse(field, 'is absent but has content or an omitted reason');
  if (sha256 !== null && (content === null) === (omitted === null)) refuse(field, 'must have exactly one of content and omitted');
  if (content !== null) {
    const bytes = Buffer.from(content, 'utf8');
    if (bytes.length > limits.maxContentBytes) refuse(`${field}.content`, `is over ${limits.maxContentBytes} bytes`);
    if (bytes.length !== size) refuse(`${field}.size`, 'is not the length of content');
    if (createHash('sha256').update(bytes).digest('hex') !== sha256) refuse(`${field}.sha256`, 'is not the hash of content');
  }
  return { path, sha256, size, content, omitted };
}

function unique<T>(entries: readonly T[], key: (t: T) => string, field: string): void {
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    const k = key(e);
    if (seen.has(k)) refuse(`${field}[${i}]`, 'repeats an earlier entry');
    seen.add(k);
  });
}

function checkChanges<T>(v: unknown, field: string, max: number, entry: (x: unknown, f: string) => T, key: (t: T) => string): SetChanges<T> {
  const o = exactObject(v, field, ['added', 'removed', 'changed']);
  const out = {
    added: list(o.added, `${field}.added`, max).map((x, i) => entry(x, `${field}.added[${i}]`)),
    removed: list(o.removed, `${field}.removed`, max).map((x, i) => entry(x, `${field}.removed[${i}]`)),
    changed: list(o.changed, `${field}.changed`, max).map((x, i) => entry(x, `${field}.changed[${i}]`)),
  };
  // One key appears in at most one list, once.
  const seen = new Set<string>();
  for (const [name, entries] of Object.entries(out)) {
    entries.forEach((e, i) => {
      const k = key(e);
      if (seen.has(k)) refuse(`${field}.${name}[${i}]`, 'repeats a key listed earlier in this delta');
      seen.add(k);
    });
  }
  return out;
}

const COMMON_KEYS = ['format', 'kind', 'hostMsid', 'seq', 'time', 'os', 'kernel', 'addresses', 'packages', 'services', 'files'] as const;

function check(value: unknown, options: ReportCheckOptions, limits: ReportLimits): ConfigurationReport {
  const top = exactObject(value, 'report', COMMON_KEYS);
  if (top.format !== REPORT_FORMAT) refuse('report.format', `is not "${REPORT_FORMAT}"`);
  if (top.kind !== 'full' && top.kind !== 'delta') refuse('report.kind', 'is not "full" or "delta"');
  if (!isMsid(top.hostMsid)) refuse('report.hostMsid', 'is not an MSID');
  // Checked before the body: a report for another host is refused as such, whatever else is wrong with it.
  if (top.hostMsid !== options.authenticatedMsid) {
    refuse('report.hostMsid', `${top.hostMsid} is not the channel's authenticated host ${options.authenticatedMsid}`, 'GS_ERR_SECURITY_WRONG_HOST');
  }
  const seq = safeInt(top.seq, 'report.seq', 1, Number.MAX_SAFE_INTEGER);
  const time = safeInt(top.time, 'report.time', 0, Number.MAX_SAFE_INTEGER);
  const head = { format: REPORT_FORMAT, hostMsid: top.hostMsid, seq, time } as const;
  if (top.kind === 'full') {
    const packages = list(top.packages, 'report.packages', limits.maxPackages).map((x, i) => checkPackage(x, `report.packages[${i}]`));
    const services = list(top.services, 'report.services', limits.maxServices).map((x, i) => checkService(x, `report.services[${i}]`));
    const files = list(top.files, 'report.files', limits.maxFiles).map((x, i) => checkFile(x, `report.files[${i}]`, limits));
    unique(packages, packageKey, 'report.packages');
    unique(services, serviceKey, 'report.services');
    unique(files, fileKey, 'report.files');
    const full: FullReport = {
      ...head,
      kind: 'full',
      os: checkOs(top.os, 'report.os'),
      kernel: checkKernel(top.kernel, 'report.kernel'),
      addresses: checkAddresses(top.addresses, 'report.addresses', limits),
      packages,
      services,
      files,
    };
    return full;
  }
  const delta: DeltaReport = {
    ...head,
    kind: 'delta',
    os: nullable(top.os, (o) => checkOs(o, 'report.os')),
    kernel: nullable(top.kernel, (k) => checkKernel(k, 'report.kernel')),
    addresses: nullable(top.addresses, (a) => checkAddresses(a, 'report.addresses', limits)),
    packages: checkChanges(top.packages, 'report.packages', limits.maxPackages, checkPackage, packageKey),
    services: checkChanges(top.services, 'report.services', limits.maxServices, checkService, serviceKey),
    files: checkChanges(top.files, 'report.files', limits.maxFiles, (x, f) => checkFile(x, f, limits), fileKey),
  };
  return delta;
}

function limitsOf(options: ReportCheckOptions): ReportLimits {
  return { ...DEFAULT_REPORT_LIMITS, ...options.limits };
}

/**
 * Check an already-decoded report (a value from JSON) and return it typed.
 * Throws `SecurityCenterError`: `GS_ERR_SECURITY_WRONG_HOST` for a report
 * about another host, `GS_ERR_SECURITY_UNSAFE_PATH` for a bad file path,
 * `GS_ERR_SECURITY_BAD_VERSION` for a version that is not one, and
 * `GS_ERR_SECURITY_MALFORMED_REPORT` for everything else.
 *
 * @example
 * ```ts
 * const report = validateConfigurationReport(JSON.parse(text), { authenticatedMsid: channel.peerMsid });
 * ```
 * @public
 */
export function validateConfigurationReport(value: unknown, options: ReportCheckOptions): ConfigurationReport {
  try {
    return check(value, options, limitsOf(options));
  } catch (err) {
    if (err instanceof Refusal) throw new SecurityCenterError(err.code, err.message);
    throw err;
  }
}

/**
 * Decode and check a report as received (UTF-8 JSON). The size is checked
 * before anything is parsed. Errors as {@link validateConfigurationReport}.
 * @public
 */
export function parseConfigurationReport(input: string | Uint8Array, options: ReportCheckOptions): ConfigurationReport {
  const limits = limitsOf(options);
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength;
  if (size > limits.maxBytes) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_REPORT', `report is ${size} bytes, more than the limit ${limits.maxBytes}`);
  let value: unknown;
  try {
    const textIn = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input);
    value = JSON.parse(textIn);
  } catch (err) {
    throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_REPORT', `report is not UTF-8 JSON: ${(err as Error).message}`, { cause: err });
  }
  return validateConfigurationReport(value, options);
}

/** The report as UTF-8 JSON, the form {@link parseConfigurationReport} reads. @public */
export function encodeConfigurationReport(report: ConfigurationReport): Uint8Array {
  return Buffer.from(JSON.stringify(report), 'utf8');
}
