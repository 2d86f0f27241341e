/**
 * Checking a {@link Policy} once (when it is set) and evaluating a host
 * against it: listeners no rule allows, required files whose hash differs
 * or is missing, settings that do not hold in a reported file's content.
 */
import { SecurityCenterError } from '../../../errors/index.js';
import { checkAbsolutePath, parseCountermeasureSteps, type Countermeasure } from '../advisories/countermeasures.js';
import { parseCidr } from '../firewall/index.js';
import { describeStep, isAutomatic, type FileFinding, type Finding, type ServiceFinding, type SettingFinding } from './findings.js';
import type { HostInventory } from './inventory.js';
import type { FileRule, HostPolicy, Policy, RolePolicy, ServiceRule, SettingRule } from './policy.js';

const SHA256 = /^[0-9a-f]{64}$/;
const SETTING_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$/;

function bad(where: string, why: string, cause?: unknown): SecurityCenterError {
  return new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', `policy ${where}: ${why}`, cause === undefined ? undefined : { cause });
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One CIDR rule for the diagnosis and the firewall generator: the generator's parser. */
function checkCidr(v: unknown, where: string): void {
  if (parseCidr(v) === undefined) throw bad(where, `${JSON.stringify(v)} is not an address or a CIDR network (without host bits)`);
}

function checkSteps(v: unknown, where: string): readonly Countermeasure[] | undefined {
  if (v === undefined) return undefined;
  try {
    return parseCountermeasureSteps(v, where);
  } catch (err) {
    throw bad(where, (err as Error).message, err);
  }
}

function checkPath(v: unknown, where: string): string {
  try {
    return checkAbsolutePath(v, where);
  } catch (err) {
    throw bad(where, (err as Error).message, err);
  }
}

function checkRole(r: unknown, where: string): void {
  if (!isObj(r)) throw bad(where, 'must be an object');
  if (r.services !== undefined) {
    if (!Array.isArray(r.services) || r.services.length > 4096) throw bad(`${where}.services`, 'must be an array of at most 4096 rules');
    r.services.forEach((s: unknown, i) => {
      const w = `${where}.services[${i}]`;
      if (!isObj(s)) throw bad(w, 'must be an object');
      if (s.proto !== 'tcp' && s.proto !== 'udp') throw bad(`${w}.proto`, 'must be "tcp" or "udp"');
      if (!(Number.isInteger(s.port) && (s.port as number) >= 1 && (s.port as number) <= 65535)) throw bad(`${w}.port`, 'must be an integer 1–65535');
      if (s.from !== undefined) {
        if (!Array.isArray(s.from) || s.from.length > 1024) throw bad(`${w}.from`, 'must be an array of CIDRs');
        s.from.forEach((c: unknown, j) => checkCidr(c, `${w}.from[${j}]`));
      }
      if (s.description !== undefined && (typeof s.description !== 'string' || s.description.length > 256 || /[\u0000-\u001f]/.test(s.description))) {
        throw bad(`${w}.description`, 'must be one line of at most 256 characters');
      }
    });
  }
  if (r.files !== undefined) {
    if (!Array.isArray(r.files) || r.files.length > 4096) throw bad(`${where}.files`, 'must be an array of at most 4096 rules');
    r.files.forEach((f: unknown, i) => {
      const w = `${where}.files[${i}]`;
      if (!isObj(f)) throw bad(w, 'must be an object');
      checkPath(f.path, `${w}.path`);
      if (typeof f.sha256 !== 'string' || !SHA256.test(f.sha256)) throw bad(`${w}.sha256`, 'must be 64 lower-case hex digits');
      checkSteps(f.countermeasure, `${w}.countermeasure`);
    });
  }
  if (r.settings !== undefined) {
    if (!Array.isArray(r.settings) || r.settings.length > 4096) throw bad(`${where}.settings`, 'must be an array of at most 4096 rules');
    r.settings.forEach((s: unknown, i) => {
      const w = `${where}.settings[${i}]`;
      if (!isObj(s)) throw bad(w, 'must be an object');
      checkPath(s.path, `${w}.path`);
      if (typeof s.key !== 'string' || !SETTING_KEY.test(s.key) || s.key.length > 128) throw bad(`${w}.key`, 'must be a setting name');
      if (typeof s.value !== 'string' || s.value.length > 4096 || /[\u0000-\u001f]/.test(s.value)) throw bad(`${w}.value`, 'must be one line');
      checkSteps(s.countermeasure, `${w}.countermeasure`);
    });
  }
  if (r.allowLoopback !== undefined && typeof r.allowLoopback !== 'boolean') throw bad(`${where}.allowLoopback`, 'must be a boolean');
}

/**
 * Check a policy; `SecurityCenterError` `GS_ERR_SECURITY_MALFORMED_POLICY`
 * naming the field.
 * Every host's role and the default role must exist.
 * @public
 */
export function checkPolicy(p: unknown): Policy {
  if (!isObj(p)) throw bad('', 'must be an object');
  if (!isObj(p.roles)) throw bad('roles', 'must be an object of role name → rules');
  if (!isObj(p.hosts)) throw bad('hosts', 'must be an object of host ID → { role, … }');
  for (const [name, r] of Object.entries(p.roles)) checkRole(r, `roles.${name}`);
  for (const [id, h] of Object.entries(p.hosts)) {
    checkRole(h, `hosts.${id}`);
    const role = (h as Record<string, unknown>).role;
    if (typeof role !== 'string' || !Object.hasOwn(p.roles, role)) throw bad(`hosts.${id}.role`, `${JSON.stringify(role)} is not a role in roles`);
  }
  if (p.defaultRole !== undefined && (typeof p.defaultRole !== 'string' || !Object.hasOwn(p.roles, p.defaultRole))) {
    throw bad('defaultRole', `${JSON.stringify(p.defaultRole)} is not a role in roles`);
  }
  return p as unknown as Policy;
}

/** A host's effective rules: its role's plus its own. @public */
export interface ResolvedHostPolicy {
  /** The host's role (its own, or the policy's default role). */
  readonly role: string;
  /** Services the role allows to listen. */
  readonly services: readonly ServiceRule[];
  /** Files the role requires, with their content hashes. */
  readonly files: readonly FileRule[];
  /** Settings the role requires in configuration files. */
  readonly settings: readonly SettingRule[];
  /** True when listeners bound only to loopback are exempt from the service rules. */
  readonly allowLoopback: boolean;
}

/** The rules that apply to `hostId`, or `undefined` when the policy has none for it. @public */
export function resolveHostPolicy(policy: Policy | undefined, hostId: string): ResolvedHostPolicy | undefined {
  if (!policy) return undefined;
  const own: HostPolicy | undefined = Object.hasOwn(policy.hosts, hostId) ? policy.hosts[hostId] : undefined;
  const roleName = own?.role ?? policy.defaultRole;
  if (roleName === undefined) return undefined;
  const role: RolePolicy = policy.roles[roleName] ?? {};
  return {
    role: roleName,
    services: [...(role.services ?? []), ...(own?.services ?? [])],
    files: [...(role.files ?? []), ...(own?.files ?? [])],
    settings: [...(role.settings ?? []), ...(own?.settings ?? [])],
    allowLoopback: own?.allowLoopback ?? role.allowLoopback ?? true,
  };
}

function isLoopback(address: string): boolean {
  return address === '::1' || /^127\./.test(address) || /^::ffff:127\./i.test(address);
}

/**
 * The value of `key` in `key value` / `key=value` lines (comments `#` and
 * blank lines ignored, key case-insensitive, the last occurrence wins), or
 * `undefined` when it is not set.
 */
export function readSetting(content: string, key: string): string | undefined {
  const want = key.toLowerCase();
  let found: string | undefined;
  for (const raw of content.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^([^\s=]+)\s*(?:=\s*|\s+)(.*)$/.exec(line);
    if (m && m[1]!.toLowerCase() === want) found = m[2]!.trim();
  }
  return found;
}

/** The policy findings of one host. */
export function evaluatePolicy(inv: HostInventory, rules: ResolvedHostPolicy): Finding[] {
  const out: Finding[] = [];
  const { role } = rules;
  const seen = new Set<string>();
  for (const s of inv.services ?? []) {
    if (rules.allowLoopback && isLoopback(s.address)) continue;
    if (rules.services.some((r) => r.proto === s.proto && r.port === s.port)) continue;
    const k = `${s.proto}/${s.port}/${s.address}`;
    if (seen.has(k)) continue;
    seen.add(k);
    const steps: Countermeasure[] = [
      {
        kind: 'manual',
        instructions: `Stop ${s.process ?? 'the process'} listening on ${s.proto}/${s.port} at ${s.address} on ${inv.hostId}, or add ${s.proto}/${s.port} to the services of role "${role}". The firewall rules generated from the policy block it meanwhile.`,
      },
    ];
    const f: ServiceFinding = {
      kind: 'service-not-allowed',
      hostId: inv.hostId,
      role,
      service: s,
      countermeasure: steps,
      automatic: false,
      reason: `${inv.hostId} listens on ${s.proto}/${s.port} at ${s.address}${s.process ? ` (${s.process})` : ''}, which no service rule of role "${role}" allows.`,
    };
    out.push(f);
  }
  const files = new Map((inv.files ?? []).map((f) => [f.path, f]));
  for (const rule of rules.files) {
    const got = files.get(rule.path);
    const steps = rule.countermeasure ?? [
      { kind: 'manual' as const, instructions: `Restore ${rule.path} on ${inv.hostId} to the content the policy requires (SHA-256 ${rule.sha256}).` },
    ];
    if (got === undefined) {
      const f: FileFinding = {
        kind: 'file-missing',
        hostId: inv.hostId,
        role,
        path: rule.path,
        required: rule.sha256,
        countermeasure: steps,
        automatic: isAutomatic(steps),
        reason: `${inv.hostId} did not report ${rule.path}, which role "${role}" requires with SHA-256 ${rule.sha256}; planned: ${steps.map(describeStep).join('; ')}.`,
      };
      out.push(f);
    } else if (got.sha256 !== rule.sha256) {
      const f: FileFinding = {
        kind: 'file-mismatch',
        hostId: inv.hostId,
        role,
        path: rule.path,
        required: rule.sha256,
        reported: got.sha256,
        countermeasure: steps,
        automatic: isAutomatic(steps),
        reason: `${rule.path} on ${inv.hostId} has SHA-256 ${got.sha256}, but role "${role}" requires ${rule.sha256}; planned: ${steps.map(describeStep).join('; ')}.`,
      };
      out.push(f);
    }
  }
  for (const rule of rules.settings) {
    const content = files.get(rule.path)?.content;
    if (content === undefined) continue; // not collected: cannot be checked (docs: settings need content)
    const found = readSetting(content, rule.key);
    if (found === rule.value) continue;
    const steps = rule.countermeasure ?? [{ kind: 'config' as const, path: rule.path, set: { [rule.key]: rule.value } }];
    const f: SettingFinding = {
      kind: 'setting-mismatch',
      hostId: inv.hostId,
      role,
      path: rule.path,
      key: rule.key,
      required: rule.value,
      ...(found === undefined ? {} : { found }),
      countermeasure: steps,
      automatic: isAutomatic(steps),
      reason: `${rule.key} in ${rule.path} on ${inv.hostId} is ${found === undefined ? 'not set' : `"${found}"`}, but role "${role}" requires "${rule.value}"; planned: ${steps.map(describeStep).join('; ')}.`,
    };
    out.push(f);
  }
  return out;
}

