/**
 * The configuration report: what an agent tells the center about its host
 * (seed 004 §4.2: OS kind and version, packages and patch state, configuration
 * files with their absolute paths and contents), as JSON.
 *
 * ```text
 * { "format": "gatesock-config-report-v1",
 *   "kind": "full",            full: the whole state    | "delta": changes since seq-1
 *   "hostMsid": "MSID-…",      the reporting host; must be the channel's authenticated MSID
 *   "seq": 7,                  1, 2, 3, … per host; a delta's seq is exactly previous + 1
 *   "time": 1764000000000,     ms since the epoch, the agent's clock
 *   "os": {…}, "kernel": "6.1.0-18-amd64", "addresses": ["192.0.2.10", …],
 *   "packages": [ {manager,name,version,arch,source,sourceVersion}, … ],
 *   "services": [ {proto,address,port,process}, … ],
 *   "files":    [ {path,sha256,size,content,omitted}, … ] }
 * ```
 *
 * A delta carries `os`, `kernel`, `addresses` only when they changed (else
 * `null`), and for each collection `{ added, removed, changed }`; `removed`
 * holds the entries as the previous report had them, so the center can tell
 * a delta that does not fit its state (and ask for a full report).
 *
 * Every object has exactly the keys listed here (no extras); absent values are
 * `null`, never missing, so one JSON shape means one report.
 */

/** The `format` value of every report. @public */
export const REPORT_FORMAT = 'gatesock-config-report-v1';

/** The operating system, from os-release(5). @public */
export interface OsInfo {
  /** `ID` (`debian`, `ubuntu`, `rhel`); `linux` when the file does not say (os-release(5)). */
  readonly id: string;
  /** `VERSION_ID` (`12`, `22.04`); empty when the file has none (rolling releases, Debian sid). */
  readonly versionId: string;
  /** `NAME`; `Linux` by default. */
  readonly name: string;
  /** `PRETTY_NAME`; `Linux` by default. */
  readonly prettyName: string;
  /** `ID_LIKE`, split on spaces (`["rhel", "centos", "fedora"]`). */
  readonly idLike: readonly string[];
  /** `VERSION_CODENAME` (`bookworm`); empty when absent. */
  readonly versionCodename: string;
}

/** The package manager an entry comes from. @public */
export type PackageManager = 'dpkg' | 'rpm';

/** One installed package. @public */
export interface PackageEntry {
  /** Which database listed it. */
  readonly manager: PackageManager;
  /** Binary package name. */
  readonly name: string;
  /**
   * Installed version: Debian `[epoch:]upstream[-revision]` for dpkg,
   * `[epoch:]version-release` for rpm.
   */
  readonly version: string;
  /** Architecture (`amd64`, `all`, `x86_64`, `noarch`). */
  readonly arch: string;
  /** Source package name when it differs from `name` (dpkg `Source:`, the rpm's SOURCERPM name); else null. */
  readonly source: string | null;
  /** Version of the source package when dpkg's `Source: name (version)` gives one that differs from `version`; else null. */
  readonly sourceVersion: string | null;
}

/** One listening socket. @public */
export interface ServiceEntry {
  /** `tcp` (a socket in LISTEN) or `udp` (a bound, unconnected socket). */
  readonly proto: 'tcp' | 'udp';
  /** Local address, canonical text (`0.0.0.0`, `::`, `127.0.0.1`, `::ffff:10.0.0.1`). */
  readonly address: string;
  /** Local port, 0–65535. */
  readonly port: number;
  /** Name of a process holding the socket (`/proc/PID/comm`), null when unknown. */
  readonly process: string | null;
}

/** Why a file's content is not in the report although it exists. @public */
export type OmittedReason = 'policy' | 'too-large' | 'not-text';

/** One file of the configured collection set. @public */
export interface FileEntry {
  /** Absolute, normalised path on the host. */
  readonly path: string;
  /** SHA-256 of the bytes, 64 lower-case hex digits; null when no regular file is there. */
  readonly sha256: string | null;
  /** Size in bytes; null when no regular file is there. */
  readonly size: number | null;
  /** The text (UTF-8), only when the policy allows it and it is small enough; else null. */
  readonly content: string | null;
  /** Why `content` is null although the file exists; null otherwise. */
  readonly omitted: OmittedReason | null;
}

/** The whole state of a host. @public */
export interface FullReport {
  /** Always {@link REPORT_FORMAT}. */
  readonly format: typeof REPORT_FORMAT;
  /** `full`. */
  readonly kind: 'full';
  /** The reporting host. */
  readonly hostMsid: string;
  /** Sequence number, ≥ 1. */
  readonly seq: number;
  /** Collection time, ms since the epoch. */
  readonly time: number;
  /** Operating system. */
  readonly os: OsInfo;
  /** Running kernel release (`uname -r`). */
  readonly kernel: string;
  /** The host's own IP addresses (canonical text), so scanner findings can be matched to it. */
  readonly addresses: readonly string[];
  /** Installed packages. */
  readonly packages: readonly PackageEntry[];
  /** Listening sockets. */
  readonly services: readonly ServiceEntry[];
  /** Configured files. */
  readonly files: readonly FileEntry[];
}

/** Changes of one collection between two reports. @public */
export interface SetChanges<T> {
  /** Entries whose key was not there before. */
  readonly added: readonly T[];
  /** Entries (as they were) whose key is gone. */
  readonly removed: readonly T[];
  /** Entries (as they are now) whose key stayed but whose other fields changed. */
  readonly changed: readonly T[];
}

/** What changed since the report numbered `seq - 1`. @public */
export interface DeltaReport {
  /** Always {@link REPORT_FORMAT}. */
  readonly format: typeof REPORT_FORMAT;
  /** `delta`. */
  readonly kind: 'delta';
  /** The reporting host. */
  readonly hostMsid: string;
  /** Sequence number; the center applies it only on top of report `seq - 1`. */
  readonly seq: number;
  /** Collection time, ms since the epoch. */
  readonly time: number;
  /** The new OS when it changed; else null. */
  readonly os: OsInfo | null;
  /** The new kernel release when it changed; else null. */
  readonly kernel: string | null;
  /** The new address list when it changed; else null. */
  readonly addresses: readonly string[] | null;
  /** Package changes. */
  readonly packages: SetChanges<PackageEntry>;
  /** Service changes. */
  readonly services: SetChanges<ServiceEntry>;
  /** File changes. */
  readonly files: SetChanges<FileEntry>;
}

/** A configuration report, full or delta. @public */
export type ConfigurationReport = FullReport | DeltaReport;

/** Limits the center applies to reports (all inclusive). @public */
export interface ReportLimits {
  /** Encoded size in bytes. Default 16 MiB. */
  readonly maxBytes: number;
  /** Packages in a full report, or entries in one delta list. Default 65 536. */
  readonly maxPackages: number;
  /** Services. Default 4096. */
  readonly maxServices: number;
  /** Files. Default 1024. */
  readonly maxFiles: number;
  /** UTF-8 bytes of one file's `content`. Default 256 KiB. */
  readonly maxContentBytes: number;
  /** Addresses. Default 256. */
  readonly maxAddresses: number;
}

/** Default {@link ReportLimits}. @public */
export const DEFAULT_REPORT_LIMITS: ReportLimits = Object.freeze({
  maxBytes: 16 * 1024 * 1024,
  maxPackages: 65_536,
  maxServices: 4096,
  maxFiles: 1024,
  maxContentBytes: 256 * 1024,
  maxAddresses: 256,
});

/** Identity of a package entry within a report: rpm can hold several versions of one name and arch (kernels), dpkg cannot. */
export function packageKey(p: PackageEntry): string {
  return p.manager === 'rpm' ? `rpm\u0000${p.name}\u0000${p.arch}\u0000${p.version}` : `dpkg\u0000${p.name}\u0000${p.arch}`;
}

/** Identity of a service entry: protocol, address and port. */
export function serviceKey(s: ServiceEntry): string {
  return `${s.proto}\u0000${s.address}\u0000${s.port}`;
}

/** Identity of a file entry: its path. */
export function fileKey(f: FileEntry): string {
  return f.path;
}
