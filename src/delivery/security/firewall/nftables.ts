/**
 * Firewall rules from the policy database (seed 004 §4.1: "from the services
 * the new host offers, make the FW's filtering rules and send them to the
 * host agent on the network device"): an nftables rule set, one `inet` table
 * whose input chain drops by default and accepts established traffic,
 * loopback, the ICMP that IPv6 needs, and exactly the services the host's
 * policy allows, from the networks it names.
 *
 * Injection safety: no text from the policy reaches the rule set unchecked.
 * Protocols come from a fixed list, ports are integers, sources are parsed
 * as CIDR networks and printed from their bytes, and the only free texts
 * (host name, descriptions) must match a small character set without quotes,
 * backslashes, semicolons, braces or line breaks. Anything else is refused
 * with `GS_ERR_SECURITY_MALFORMED_POLICY` and nothing is written.
 *
 * The output is deterministic: rules are merged per protocol and port,
 * sorted, and sources sorted by address, so equal policies give equal bytes.
 */
import { SecurityCenterError } from '../../../errors/index.js';
import type { Policy, ServiceRule } from '../diagnosis/policy.js';
import { formatIp, ipBytes } from '../report/index.js';

/** A parsed CIDR network. */
export interface Cidr {
  /** 4 for IPv4, 6 for IPv6. */
  readonly family: 4 | 6;
  /** Network address bytes (host bits zero). */
  readonly bytes: Uint8Array;
  /** Prefix length. */
  readonly prefix: number;
  /** Canonical text (`10.0.0.0/8`, `2001:db8::/32`). */
  readonly text: string;
}

function refuse(where: string, rule: string): never {
  throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', `${where} ${rule}`);
}

/**
 * Parse `addr/prefix` (or a bare address, taken as /32 or /128) strictly:
 * a canonical-or-not address, a decimal prefix without leading zeros, and no
 * host bits set. Undefined when it is not one.
 */
export function parseCidr(text: unknown): Cidr | undefined {
  if (typeof text !== 'string' || text.length > 64) return undefined;
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = ipBytes(addr);
  if (bytes === undefined) return undefined;
  const max = bytes.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) return undefined;
    prefix = Number(p);
  }
  for (let bit = prefix; bit < max; bit++) if ((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) return undefined;
  const family = bytes.length === 4 ? 4 : 6;
  return { family, bytes, prefix, text: `${formatIp(bytes)}/${prefix}` };
}

/** Text allowed in host names and rule comments: no quotes, backslashes, `;`, `#`, braces or line breaks. */
const SAFE_TEXT = /^[A-Za-z0-9 ._,:()/+@-]*$/;
const TABLE_NAME = /^[a-z][a-z0-9_]{0,30}$/;
const RULE_KEYS = ['proto', 'port', 'from', 'description'];

/** Options of {@link generateNftables}. @public */
export interface NftablesOptions {
  /** Name of the table (in family `inet`) the rule set owns and replaces. Default `gatesock`. */
  readonly table?: string;
  /** Accept ICMP and ICMPv6 echo requests (ping). Default true. */
  readonly allowPing?: boolean;
}

/** A service rule after checking: protocol, port, and the allowed sources (null: anyone). */
interface CheckedRule {
  readonly proto: 'tcp' | 'udp';
  readonly port: number;
  readonly from: Cidr[] | null;
  readonly descriptions: string[];
}

function checkRule(rule: unknown, where: string): CheckedRule {
  if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) refuse(where, 'is not an object');
  const r = rule as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!RULE_KEYS.includes(k)) refuse(where, `has an unknown key ${JSON.stringify(k.slice(0, 32))}`);
  if (r.proto !== 'tcp' && r.proto !== 'udp') refuse(`${where}.proto`, 'is not "tcp" or "udp"');
  if (typeof r.port !== 'number' || !Number.isInteger(r.port) || r.port < 1 || r.port > 65535) refuse(`${where}.port`, 'is not an integer in 1..65535');
  let from: Cidr[] | null = null;
  if (r.from !== undefined) {
    if (!Array.isArray(r.from)) refuse(`${where}.from`, 'is not a list of networks');
    if (r.from.length > 1024) refuse(`${where}.from`, 'has more than 1024 networks');
    from = r.from.map((c, i) => parseCidr(c) ?? refuse(`${where}.from[${i}]`, `${JSON.stringify(String(c).slice(0, 64))} is not a CIDR network without host bits`));
  }
  const descriptions: string[] = [];
  if (r.description !== undefined) {
    if (typeof r.description !== 'string' || r.description.length > 64 || !SAFE_TEXT.test(r.description)) {
      refuse(`${where}.description`, 'must be at most 64 letters, digits, spaces and ._,:()/+@-');
    }
    if (r.description !== '') descriptions.push(r.description);
  }
  return { proto: r.proto, port: r.port, from, descriptions };
}

function compareBytes(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  for (let i = 0; i < a.bytes.length; i++) if (a.bytes[i] !== b.bytes[i]) return a.bytes[i]! - b.bytes[i]!;
  return a.prefix - b.prefix;
}

/** Merge rules per protocol and port: anyone wins over a list; lists are united. */
function merge(rules: CheckedRule[]): CheckedRule[] {
  const by = new Map<string, CheckedRule>();
  for (const r of rules) {
    const k = `${r.proto}/${r.port}`;
    const had = by.get(k);
    if (had === undefined) {
      by.set(k, { ...r, from: r.from === null ? null : [...r.from], descriptions: [...r.descriptions] });
      continue;
    }
    const from = had.from === null || r.from === null ? null : [...had.from, ...r.from];
    by.set(k, { ...had, from, descriptions: [...had.descriptions, ...r.descriptions] });
  }
  return [...by.values()]
    .map((r) => {
      const from = r.from === null ? null : [...new Map(r.from.map((c) => [c.text, c])).values()].sort(compareBytes);
      return { ...r, from, descriptions: [...new Set(r.descriptions)].sort() };
    })
    .sort((a, b) => (a.proto === b.proto ? a.port - b.port : a.proto < b.proto ? -1 : 1));
}

/**
 * The accept lines of one merged rule. `to` restricts the destination (the
 * forward chain's protected host) per family; a family the host has no
 * address in gets no line.
 */
function ruleLines(r: CheckedRule, to?: { readonly v4: string[]; readonly v6: string[] }): string[] {
  const match = `${r.proto} dport ${r.port}`;
  const comment = r.descriptions.length === 0 ? '' : ` comment "${r.descriptions.join(', ').slice(0, 120)}"`;
  const lines: string[] = [];
  for (const [family, keyword] of [[4, 'ip'], [6, 'ip6']] as const) {
    const dst = to === undefined ? undefined : family === 4 ? to.v4 : to.v6;
    if (dst !== undefined && dst.length === 0) continue;
    const daddr = dst === undefined ? '' : `${keyword} daddr { ${dst.join(', ')} } `;
    if (r.from === null) {
      // Without a destination, one line covers both families.
      if (dst === undefined) return [`${match} accept${comment}`];
      lines.push(`${daddr}${match} accept${comment}`);
      continue;
    }
    const nets = r.from.filter((c) => c.family === family).map((c) => c.text);
    if (nets.length > 0) lines.push(`${daddr}${match} ${keyword} saddr { ${nets.join(', ')} } accept${comment}`);
  }
  if (lines.length === 0) lines.push(`# ${r.proto}/${r.port}: the policy allows no source`);
  return lines;
}

function checkName(host: unknown, what: string): asserts host is string {
  if (typeof host !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(host)) refuse(what, 'must be 1-128 letters, digits and ._:-');
}

function checkTable(table: unknown): asserts table is string {
  if (typeof table !== 'string' || !TABLE_NAME.test(table)) refuse('table name', 'must be a lower-case letter then up to 30 of a-z, 0-9 and _');
}

function checkRules(services: unknown, where: string): CheckedRule[] {
  if (!Array.isArray(services)) refuse(`${where}: services`, 'is not a list');
  return merge(services.map((s, i) => checkRule(s, `${where}: services[${i}]`)));
}

/** The file around one chain: replace the table atomically (declare, delete, re-create: one transaction). */
function ruleSet(comment: string, table: string, chain: string, body: string[]): string {
  return [
    '#!/usr/sbin/nft -f',
    `# ${comment}: generated from the policy database, do not edit`,
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    `\tchain ${chain} {`,
    ...body.map((l) => `\t\t${l}`),
    '\t}',
    '}',
    '',
  ].join('\n');
}

/**
 * The nftables rule set (for `nft -f`) that lets in exactly `services` on a
 * host, replacing the table atomically (declare, delete, re-create: one
 * transaction, so the host is never without rules).
 *
 * @param host - a name for the header comment (the host ID or MSID); letters, digits and `._:-` only
 * @example
 * ```ts
 * const text = generateNftables('web-1', [{ proto: 'tcp', port: 443 }, { proto: 'tcp', port: 22, from: ['10.0.0.0/8'] }]);
 * await writeFile('/etc/nftables.d/gatesock.nft', text); // then: nft -f that file
 * ```
 * @public
 */
export function generateNftables(host: string, services: ReadonlyArray<ServiceRule>, options: NftablesOptions = {}): string {
  checkName(host, 'host name');
  const table = options.table ?? 'gatesock';
  checkTable(table);
  const rules = checkRules(services, `host ${host}`);
  return ruleSet(`gatesock firewall for host ${host}`, table, 'input', [
    'type filter hook input priority filter; policy drop;',
    'ct state invalid drop',
    'ct state established,related accept',
    'iif "lo" accept',
    '# IPv6 needs neighbour and router discovery (RFC 4890 §4.4.1)',
    'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept',
    ...(options.allowPing === false ? [] : ['icmp type echo-request accept', 'icmpv6 type echo-request accept']),
    ...rules.flatMap((r) => ruleLines(r)),
  ]);
}

/** A host behind the network device, for {@link generateForwardNftables}. @public */
export interface ProtectedHost {
  /** Its ID (for comments): letters, digits and `._:-`. */
  readonly host: string;
  /** Its addresses (IPv4 and/or IPv6). */
  readonly addresses: ReadonlyArray<string>;
  /** What it may offer, from whom (its policy's service rules). */
  readonly services: ReadonlyArray<ServiceRule>;
}

/**
 * The rule set for a firewall in front of hosts (seed 004 §5: the provider's
 * FW between the Internet and the users' hosts): a forward chain that lets
 * new connections reach each protected host only on its allowed services,
 * from the allowed sources, and drops the rest of the new connections to it.
 * Traffic to other addresses, and replies (established/related), pass: the
 * device fences the hosts it manages and nothing else.
 * @public
 */
export function generateForwardNftables(hosts: ReadonlyArray<ProtectedHost>, options: NftablesOptions = {}): string {
  const table = options.table ?? 'gatesock_fwd';
  checkTable(table);
  if (!Array.isArray(hosts) || hosts.length > 4096) refuse('protected hosts', 'must be a list of at most 4096');
  const seen = new Map<string, string>();
  const checked = hosts.map((h, i) => {
    if (typeof h !== 'object' || h === null) refuse(`protected host ${i}`, 'is not an object');
    checkName(h.host, `protected host ${i}: host`);
    if (!Array.isArray(h.addresses) || h.addresses.length === 0 || h.addresses.length > 64) refuse(`host ${h.host}: addresses`, 'must be 1-64 addresses');
    const addrs = (h.addresses as readonly unknown[]).map((a: unknown, j: number): Cidr => {
      const c = parseCidr(a);
      if (c === undefined || c.prefix !== c.bytes.length * 8) refuse(`host ${h.host}: addresses[${j}]`, 'is not an IP address');
      const other = seen.get(c.text);
      if (other !== undefined && other !== h.host) refuse(`host ${h.host}: addresses[${j}]`, `is also host ${other}'s`);
      seen.set(c.text, h.host);
      return c;
    });
    const sorted = [...new Map(addrs.map((c) => [c.text, c])).values()].sort(compareBytes);
    const bare = (c: Cidr) => formatIp(c.bytes);
    return {
      host: h.host,
      v4: sorted.filter((c) => c.family === 4).map(bare),
      v6: sorted.filter((c) => c.family === 6).map(bare),
      rules: checkRules(h.services, `host ${h.host}`),
    };
  }).sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  const body = [
    'type filter hook forward priority filter; policy accept;',
    'ct state invalid drop',
    'ct state established,related accept',
  ];
  for (const h of checked) {
    body.push(`# host ${h.host}`);
    if (options.allowPing !== false) {
      if (h.v4.length > 0) body.push(`ip daddr { ${h.v4.join(', ')} } icmp type echo-request accept`);
      if (h.v6.length > 0) body.push(`ip6 daddr { ${h.v6.join(', ')} } icmpv6 type echo-request accept`);
    }
    body.push(...h.rules.flatMap((r) => ruleLines(r, h)));
    if (h.v4.length > 0) body.push(`ip daddr { ${h.v4.join(', ')} } drop`);
    if (h.v6.length > 0) body.push(`ip6 daddr { ${h.v6.join(', ')} } drop`);
  }
  return ruleSet(`gatesock firewall in front of ${checked.length} host(s)`, table, 'forward', body);
}

/**
 * The service rules that apply to `hostId`: its role's plus its own (the
 * policy's `defaultRole` for a host not listed). Throws
 * `GS_ERR_SECURITY_MALFORMED_POLICY` when the host's role does not exist.
 * Undefined when the host gets no policy.
 */
export function serviceRulesFor(policy: Policy, hostId: string): ServiceRule[] | undefined {
  const host = Object.hasOwn(policy.hosts, hostId) ? policy.hosts[hostId] : undefined;
  const roleName = host?.role ?? policy.defaultRole;
  if (roleName === undefined) return undefined;
  const role = Object.hasOwn(policy.roles, roleName) ? policy.roles[roleName] : undefined;
  if (role === undefined) refuse(`host ${hostId}`, `has the role ${JSON.stringify(roleName)}, which the policy does not define`);
  return [...(role.services ?? []), ...(host?.services ?? [])];
}

/**
 * The rule set for one host of the policy database (see {@link generateNftables}).
 * Undefined when the policy has nothing for the host.
 * @public
 */
export function firewallForHost(policy: Policy, hostId: string, options: NftablesOptions = {}): string | undefined {
  const rules = serviceRulesFor(policy, hostId);
  return rules === undefined ? undefined : generateNftables(hostId, rules, options);
}
