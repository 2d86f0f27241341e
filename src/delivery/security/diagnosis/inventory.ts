/**
 * The input of the diagnosis engine: what the center knows about one host,
 * in the engine's own terms. The agents' collectors produce reports in their
 * own format (src/delivery/security/report); the center converts each report
 * into a {@link HostInventory} before handing it to the engine, so the engine
 * does not depend on the wire format.
 *
 * Seed 004 §4.2: OS kind and version, patch state, configuration file paths
 * and contents are what the configuration database holds per host.
 *
 * @packageDocumentation
 */

/** One installed package as the host's package manager lists it. @public */
export interface InventoryPackage {
  /** Binary package name as installed (`dpkg-query -W -f '${Package}'`, `rpm -q --qf '%{NAME}'`). */
  readonly name: string;
  /**
   * Installed version in the ecosystem's own syntax (Debian `[epoch:]upstream[-revision]`,
   * RPM `[epoch:]version-release`). Checked by the engine; a string that is not a version
   * is rejected with `GS_ERR_SECURITY_BAD_VERSION`.
   */
  readonly version: string;
  /**
   * Source package name when it differs from `name` (dpkg `${source:Package}`; RPM source
   * RPM name without version). Debian OSV records name the *source* package, so matching
   * uses this when present and `name` otherwise.
   */
  readonly source?: string;
  /**
   * Version of the source package when it differs from `version` (dpkg
   * `${source:Version}`: binNMUs add `+bN` to the binary version, and some
   * sources build binaries with versions of their own, e.g. `gcc-defaults`).
   * Advisories name source versions, so matching uses this when present.
   */
  readonly sourceVersion?: string;
  /** Architecture (`amd64`, `x86_64`, `all`); informative. */
  readonly arch?: string;
}

/** One listening socket on the host. @public */
export interface InventoryService {
  /** Transport protocol. */
  readonly proto: 'tcp' | 'udp';
  /** Port number, 0–65535. */
  readonly port: number;
  /** Local address it listens on (`0.0.0.0`, `::`, `127.0.0.1`, …). */
  readonly address: string;
  /** Name of the listening process when known (`sshd`, `nginx`). */
  readonly process?: string;
}

/** One configuration file in the host's configured collection set. @public */
export interface InventoryFile {
  /** Absolute path on the host. */
  readonly path: string;
  /** SHA-256 of the file's bytes, 64 lower-case hex digits. */
  readonly sha256: string;
  /** The file's text, only when the policy allows collecting it. */
  readonly content?: string;
}

/**
 * Everything the diagnosis engine takes about one host.
 *
 * @example
 * ```ts
 * const inv: HostInventory = {
 *   hostId: 'web-1',
 *   os: { id: 'debian', versionId: '12', ecosystem: 'Debian:12' },
 *   packages: [{ name: 'libssl3', version: '3.0.11-1~deb12u1', source: 'openssl' }],
 * };
 * ```
 * @public
 */
export interface HostInventory {
  /** The host's identity at the center (the agent's authenticated name). */
  readonly hostId: string;
  /** Operating system: os-release `ID`, `VERSION_ID`, and the OSV ecosystem it maps to (`Debian:12`, `Ubuntu:22.04:LTS`, `Red Hat:9`…). */
  readonly os: { readonly id: string; readonly versionId: string; readonly ecosystem: string };
  /** Running kernel release (`uname -r`). */
  readonly kernel?: string;
  /** Installed packages. */
  readonly packages: ReadonlyArray<InventoryPackage>;
  /** Listening services. */
  readonly services?: ReadonlyArray<InventoryService>;
  /** Collected configuration files. */
  readonly files?: ReadonlyArray<InventoryFile>;
}
