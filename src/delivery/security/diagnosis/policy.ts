/**
 * The policy database's content (seed 004 §4.1: per host, its role, the
 * services it may offer and the rough settings of each service): what the
 * diagnosis engine checks besides advisories, and what the firewall
 * generator turns into nftables rules for the network-device agents.
 *
 * A host's rules are its role's rules plus its own additions. Everything
 * else a host does is a finding: a listener no rule allows, a required file
 * whose SHA-256 differs or that was not reported, a setting whose value in
 * the reported file content differs.
 *
 * @example
 * ```ts
 * const policy: Policy = {
 *   roles: {
 *     web: {
 *       services: [{ proto: 'tcp', port: 443 }, { proto: 'tcp', port: 22, from: ['10.0.0.0/8'] }],
 *       settings: [{ path: '/etc/ssh/sshd_config', key: 'PermitRootLogin', value: 'no' }],
 *     },
 *   },
 *   hosts: { 'web-1': { role: 'web' } },
 * };
 * ```
 */
import type { Countermeasure } from '../advisories/countermeasures.js';

/** A listener a role (or host) may offer. @public */
export interface ServiceRule {
  /** Transport protocol. */
  readonly proto: 'tcp' | 'udp';
  /** Port, 1–65535. */
  readonly port: number;
  /**
   * Networks (CIDR, IPv4 or IPv6) allowed to reach it; absent means anyone.
   * For the firewall generator; the diagnosis does not use it.
   */
  readonly from?: ReadonlyArray<string>;
  /** Free text shown in findings and rule comments (`"HTTPS"`). */
  readonly description?: string;
}

/** A configuration file whose bytes must be exactly the required ones. @public */
export interface FileRule {
  /** Absolute path on the host. */
  readonly path: string;
  /** Required SHA-256 of the file, 64 lower-case hex digits. */
  readonly sha256: string;
  /** What to do when it differs; default: a manual countermeasure naming the file. */
  readonly countermeasure?: ReadonlyArray<Countermeasure>;
}

/**
 * A setting that must hold in a configuration file written as `key value`
 * or `key=value` lines (sshd_config, sysctl.conf, login.defs…). Checked only
 * when the host reports the file's content; the last occurrence of the key
 * wins (as sshd does not, but sysctl does — state the value you need once).
 * @public
 */
export interface SettingRule {
  /** Absolute path on the host. */
  readonly path: string;
  /** Setting name, compared case-insensitively (sshd_config keys are case-insensitive). */
  readonly key: string;
  /** Required value, compared exactly after trimming. */
  readonly value: string;
  /** What to do when it differs; default `{ kind: 'config', path, set: { [key]: value } }`. */
  readonly countermeasure?: ReadonlyArray<Countermeasure>;
}

/** The rules of one role. @public */
export interface RolePolicy {
  /** Listeners hosts of this role may offer. */
  readonly services?: ReadonlyArray<ServiceRule>;
  /** Files that must have exactly these bytes. */
  readonly files?: ReadonlyArray<FileRule>;
  /** Settings that must hold. */
  readonly settings?: ReadonlyArray<SettingRule>;
  /**
   * Whether listeners bound only to loopback (127.0.0.0/8, ::1) are exempt
   * from the service rules. Default `true`: they cannot be reached from the
   * network, which is what the service rules guard.
   */
  readonly allowLoopback?: boolean;
}

/** One host's entry: its role, and rules added to the role's for this host only. @public */
export interface HostPolicy extends RolePolicy {
  /** Name of a role in {@link Policy.roles}. */
  readonly role: string;
}

/** The whole policy database. @public */
export interface Policy {
  /** Roles by name. */
  readonly roles: Readonly<Record<string, RolePolicy>>;
  /** Hosts by host ID. A host not listed gets {@link Policy.defaultRole}, or no policy checks. */
  readonly hosts: Readonly<Record<string, HostPolicy>>;
  /** Role of hosts not listed in `hosts`; absent means they get no policy checks. */
  readonly defaultRole?: string;
}
