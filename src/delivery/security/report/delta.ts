/**
 * Deltas: after its first full report an agent sends only what changed
 * (design, system 5; seed 004 §4.2 collects periodically). The agent builds a
 * delta with {@link diffReports}; the center applies it with
 * {@link applyReport}, which keeps one rule: a delta numbered `n` applies
 * only on top of report `n - 1`. A gap, or a delta that does not fit the
 * center's state, is answered with a request for a full report; nothing is
 * guessed.
 */
import { isDeepStrictEqual } from 'node:util';
import { SecurityCenterError } from '../../../errors/index.js';
import {
  DEFAULT_REPORT_LIMITS,
  REPORT_FORMAT,
  fileKey,
  packageKey,
  serviceKey,
  type ConfigurationReport,
  type DeltaReport,
  type FullReport,
  type ReportLimits,
  type SetChanges,
} from './types.js';

function byKey<T>(key: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
}

/** `report` with its lists sorted by key, so equal states encode to equal bytes. */
export function canonicalReport(report: FullReport): FullReport {
  return {
    ...report,
    addresses: [...report.addresses].sort(),
    packages: [...report.packages].sort(byKey(packageKey)),
    services: [...report.services].sort(byKey(serviceKey)),
    files: [...report.files].sort(byKey(fileKey)),
  };
}

function changes<T>(before: readonly T[], after: readonly T[], key: (t: T) => string): SetChanges<T> {
  const old = new Map(before.map((e) => [key(e), e]));
  const now = new Map(after.map((e) => [key(e), e]));
  const added: T[] = [];
  const changed: T[] = [];
  const removed: T[] = [];
  for (const [k, e] of now) {
    const was = old.get(k);
    if (was === undefined) added.push(e);
    else if (!isDeepStrictEqual(was, e)) changed.push(e);
  }
  for (const [k, e] of old) if (!now.has(k)) removed.push(e);
  const sort = byKey(key);
  return { added: added.sort(sort), removed: removed.sort(sort), changed: changed.sort(sort) };
}

/**
 * The delta that turns `previous` into `current`, numbered `previous.seq + 1`.
 * `current`'s own `seq` is ignored; its `time` is the delta's.
 * @public
 */
export function diffReports(previous: FullReport, current: FullReport): DeltaReport {
  const sameAddresses = isDeepStrictEqual([...previous.addresses].sort(), [...current.addresses].sort());
  return {
    format: REPORT_FORMAT,
    kind: 'delta',
    hostMsid: current.hostMsid,
    seq: previous.seq + 1,
    time: current.time,
    os: isDeepStrictEqual(previous.os, current.os) ? null : current.os,
    kernel: previous.kernel === current.kernel ? null : current.kernel,
    addresses: sameAddresses ? null : [...current.addresses].sort(),
    packages: changes(previous.packages, current.packages, packageKey),
    services: changes(previous.services, current.services, serviceKey),
    files: changes(previous.files, current.files, fileKey),
  };
}

/** True when a delta changes nothing. @public */
export function isEmptyDelta(delta: DeltaReport): boolean {
  const none = (c: SetChanges<unknown>) => c.added.length === 0 && c.removed.length === 0 && c.changed.length === 0;
  return delta.os === null && delta.kernel === null && delta.addresses === null && none(delta.packages) && none(delta.services) && none(delta.files);
}

/** What the center does with an incoming report, given what it holds for the host. @public */
export type ApplyOutcome =
  /** Accepted: `report` is the host's new full state. */
  | { readonly status: 'accepted'; readonly report: FullReport }
  /** Not newer than what the center holds (a replay or a restarted agent): ignored; the agent should number from `expectSeqAbove + 1`. */
  | { readonly status: 'stale'; readonly expectSeqAbove: number }
  /**
   * A delta that cannot be applied: `no-base` (the center holds nothing for the
   * host), `gap` (reports were lost), `diverged` (its removals or changes do not
   * match the center's state). The agent must send a full report.
   */
  | { readonly status: 'need-full'; readonly reason: 'no-base' | 'gap' | 'diverged'; readonly message: string };

function applyChanges<T>(base: readonly T[], c: SetChanges<T>, key: (t: T) => string): T[] | string {
  const state = new Map(base.map((e) => [key(e), e]));
  for (const e of c.removed) {
    const k = key(e);
    const was = state.get(k);
    if (was === undefined || !isDeepStrictEqual(was, e)) return `removes an entry the center does not hold as sent (${k.replaceAll('\u0000', ' ')})`;
    state.delete(k);
  }
  for (const e of c.changed) {
    const k = key(e);
    if (!state.has(k)) return `changes an entry the center does not hold (${k.replaceAll('\u0000', ' ')})`;
    state.set(k, e);
  }
  for (const e of c.added) {
    const k = key(e);
    if (state.has(k)) return `adds an entry the center already holds (${k.replaceAll('\u0000', ' ')})`;
    state.set(k, e);
  }
  return [...state.values()].sort(byKey(key));
}

/**
 * Apply a validated report (see `validateConfigurationReport`) to the host's
 * current full state (undefined when the center holds none). Pure: neither
 * argument is changed. A full report newer than `current` replaces it; a
 * delta applies only to report `seq - 1`. A delta that would grow a list past
 * `limits` (defaults: {@link DEFAULT_REPORT_LIMITS}) throws
 * `GS_ERR_SECURITY_MALFORMED_REPORT`, as the same full report would.
 * `current` must be a state of the report's own `hostMsid` (the caller
 * passes undefined when it holds only another agent's reports for the host,
 * as the security center does after a re-enrolment).
 * @throws RangeError when `current` is another `hostMsid`'s state.
 * @public
 */
export function applyReport(current: FullReport | undefined, incoming: ConfigurationReport, limits: Partial<ReportLimits> = {}): ApplyOutcome {
  if (current !== undefined && incoming.hostMsid !== current.hostMsid) {
    throw new RangeError('applyReport: the report and the current state are for different hosts');
  }
  if (current !== undefined && incoming.seq <= current.seq) return { status: 'stale', expectSeqAbove: current.seq };
  if (incoming.kind === 'full') return { status: 'accepted', report: canonicalReport(incoming) };
  if (current === undefined) return { status: 'need-full', reason: 'no-base', message: `delta ${incoming.seq} arrived but no full report is held` };
  if (incoming.seq !== current.seq + 1) {
    return { status: 'need-full', reason: 'gap', message: `delta ${incoming.seq} does not follow report ${current.seq}` };
  }
  const packages = applyChanges(current.packages, incoming.packages, packageKey);
  const services = applyChanges(current.services, incoming.services, serviceKey);
  const files = applyChanges(current.files, incoming.files, fileKey);
  for (const [what, r] of [['packages', packages], ['services', services], ['files', files]] as const) {
    if (typeof r === 'string') return { status: 'need-full', reason: 'diverged', message: `delta ${incoming.seq}: ${what} ${r}` };
  }
  const max = { ...DEFAULT_REPORT_LIMITS, ...limits };
  for (const [what, r, limit] of [['packages', packages, max.maxPackages], ['services', services, max.maxServices], ['files', files, max.maxFiles]] as const) {
    if (r.length > limit) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_REPORT', `delta ${incoming.seq} makes report.${what} ${r.length} entries, more than the limit ${limit}`);
  }
  return {
    status: 'accepted',
    report: canonicalReport({
      format: REPORT_FORMAT,
      kind: 'full',
      hostMsid: current.hostMsid,
      seq: incoming.seq,
      time: incoming.time,
      os: incoming.os ?? current.os,
      kernel: incoming.kernel ?? current.kernel,
      addresses: incoming.addresses ?? current.addresses,
      packages: packages as FullReport['packages'],
      services: services as FullReport['services'],
      files: files as FullReport['files'],
    }),
  };
}
