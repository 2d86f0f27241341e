/**
 * The agent's side: run every collector into one full report, and number the
 * reports it sends (full first, then deltas; a full one again whenever the
 * center asks).
 */
import * as os from 'node:os';
import { checkOption } from '../../../errors/check.js';
import { isMsid } from '../../../session/index.js';
import {
  REPORT_FORMAT,
  canonicalIp,
  canonicalReport,
  diffReports,
  type ConfigurationReport,
  type FullReport,
} from '../report/index.js';
import { collectFiles, type FilesOptions } from './files.js';
import { collectKernel, collectOsRelease } from './os-release.js';
import { collectDpkgPackages, collectRpmPackages, type SkippedPackage } from './packages.js';
import { collectListeningServices, type ServicesOptions } from './services.js';

/** Options of {@link collectConfiguration}. @public */
export interface CollectOptions {
  /** This host's MSID (the agent's certificate). */
  readonly hostMsid: string;
  /** Sequence number to put in the report. Default 1. */
  readonly seq?: number;
  /** Directory treated as `/` for os-release, kernel, dpkg and files. Default: the real root, with the running kernel. */
  readonly root?: string;
  /** Services: where proc is and whether to resolve owners. Default `/proc`, resolved. */
  readonly services?: ServicesOptions;
  /** Configuration files to collect (see {@link FilesOptions}); none by default. */
  readonly files?: Omit<FilesOptions, 'root'>;
  /** The rpm program, or `false` not to ask rpm at all. Default `rpm` when on PATH. */
  readonly rpm?: string | false;
  /** The host's addresses; default every interface address from `os.networkInterfaces()` except loopback. */
  readonly addresses?: readonly string[];
  /** Clock. Default `Date.now`. */
  readonly now?: () => number;
}

/** A collected report and notes on what was left out of it. @public */
export interface Collected {
  /** The full report. */
  readonly report: FullReport;
  /** Package entries left out because they would not pass the center's check. */
  readonly skippedPackages: readonly SkippedPackage[];
  /** Collectors that did not run, with the reason (`rpm: rpm is not installed`). */
  readonly notes: readonly string[];
}

function interfaceAddresses(): string[] {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      const c = canonicalIp(a.address);
      if (c !== undefined) out.add(c);
    }
  }
  return [...out];
}

/**
 * Run every collector and build one full report.
 *
 * @example
 * ```ts
 * const { report } = await collectConfiguration({
 *   hostMsid: msidOf(identity.certificate),
 *   files: { paths: ['/etc/ssh/sshd_config'], content: true },
 * });
 * ```
 * @public
 */
export async function collectConfiguration(options: CollectOptions): Promise<Collected> {
  checkOption(isMsid(options.hostMsid), 'hostMsid', 'must be an MSID ("MSID-" and 64 upper-case hex digits)');
  const seq = options.seq ?? 1;
  checkOption(Number.isSafeInteger(seq) && seq >= 1, 'seq', 'must be an integer ≥ 1');
  const notes: string[] = [];
  const root = options.root;
  const dpkg = await collectDpkgPackages(root !== undefined ? { root } : {});
  const packages = [...dpkg.packages];
  const skippedPackages = [...dpkg.skipped];
  if (options.rpm === false) {
    notes.push('rpm: not asked');
  } else {
    const rpm = await collectRpmPackages({ ...(options.rpm !== undefined ? { rpm: options.rpm } : {}), ...(root !== undefined ? { root } : {}) });
    if ('absent' in rpm) notes.push(`rpm: ${rpm.absent}`);
    else {
      packages.push(...rpm.packages);
      skippedPackages.push(...rpm.skipped);
    }
  }
  const addresses = options.addresses ?? interfaceAddresses();
  for (const a of addresses) checkOption(canonicalIp(a) === a, 'addresses', `must hold canonical IP addresses (not ${JSON.stringify(a)})`);
  const report = canonicalReport({
    format: REPORT_FORMAT,
    kind: 'full',
    hostMsid: options.hostMsid,
    seq,
    time: (options.now ?? Date.now)(),
    os: await collectOsRelease(root !== undefined ? { root } : {}),
    kernel: await collectKernel(root !== undefined ? { root } : {}),
    addresses: [...new Set(addresses)],
    packages,
    services: await collectListeningServices(options.services),
    files: options.files === undefined ? [] : await collectFiles({ ...options.files, ...(root !== undefined ? { root } : {}) }),
  });
  return { report, skippedPackages, notes };
}

/**
 * Numbers an agent's reports. The first report, and the first after
 * {@link ReportSequencer.requestFull}, is full; later ones are deltas against
 * the last report handed out. The agent calls {@link ReportSequencer.next}
 * with each freshly collected full report and sends what it returns.
 *
 * State: `needs-full` → (next) → `synced` → (next) → `synced`; `requestFull`
 * → `needs-full`.
 */
export class ReportSequencer {
  #last: FullReport | undefined;
  #seq: number;
  #state: 'needs-full' | 'synced' = 'needs-full';

  /** @param lastSeq - the last sequence number this host used (persist it across restarts); default 0. */
  constructor(lastSeq = 0) {
    checkOption(Number.isSafeInteger(lastSeq) && lastSeq >= 0, 'lastSeq', 'must be an integer ≥ 0');
    this.#seq = lastSeq;
  }

  /** The last sequence number handed out. */
  get seq(): number {
    return this.#seq;
  }

  /** `needs-full` or `synced`. */
  get state(): 'needs-full' | 'synced' {
    return this.#state;
  }

  /**
   * The report to send for the freshly collected `current` (its own `seq` is
   * replaced): full when the center needs one, else the delta since the last.
   */
  next(current: FullReport): ConfigurationReport {
    const seq = ++this.#seq;
    const full: FullReport = { ...current, seq };
    const out: ConfigurationReport = this.#state === 'needs-full' || this.#last === undefined ? full : { ...diffReports(this.#last, full), seq };
    this.#last = full;
    this.#state = 'synced';
    return out;
  }

  /**
   * The center asked for a full report (a gap, a divergence, or a stale
   * number): the next report is full and numbered above `expectSeqAbove`
   * when given.
   */
  requestFull(expectSeqAbove?: number): void {
    if (expectSeqAbove !== undefined && expectSeqAbove > this.#seq) this.#seq = expectSeqAbove;
    this.#state = 'needs-full';
  }
}
