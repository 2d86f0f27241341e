/**
 * Import of a remote scanner's findings (seed 004 §4.4): nmap's XML output
 * (`nmap -oX FILE`, DTD `nmap.dtd`, xmloutputversion 1.05). The parts read:
 *
 * ```text
 * <nmaprun scanner="nmap" args="…" start="1764000000" version="7.94SVN">
 *   <host>
 *     <status state="up" reason="…"/>
 *     <address addr="192.0.2.10" addrtype="ipv4"/>      ipv4 | ipv6 | mac
 *     <hostnames><hostname name="web1.example" type="PTR"/></hostnames>
 *     <ports>
 *       <extraports state="closed" count="997">…</extraports>   counted only
 *       <port protocol="tcp" portid="22">
 *         <state state="open" reason="syn-ack"/>
 *         <service name="ssh" product="OpenSSH" version="9.2p1 Debian 2+deb12u3" extrainfo="…" tunnel="ssl"><cpe>…</cpe></service>
 *       </port>
 *     </ports>
 *   </host>
 * </nmaprun>
 * ```
 *
 * The file is untrusted: its size is capped before parsing; a DOCTYPE with an
 * internal subset or any ENTITY declaration is refused outright (nmap writes
 * a bare `<!DOCTYPE nmaprun>`), so the only entities left are XML's five;
 * the XML must be well-formed; nesting is capped; every field is checked for
 * its type and range. Anything else: `GS_ERR_SECURITY_MALFORMED_ADVISORY`
 * (the code for advisory and scanner files), naming the field.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { SecurityCenterError } from '../../../errors/index.js';
import { canonicalIp, isPrintable } from '../report/index.js';

/** A port's transport in nmap's output. @public */
export type NmapProtocol = 'tcp' | 'udp' | 'sctp' | 'ip';
/** A port state nmap reports. @public */
export type NmapPortState = 'open' | 'closed' | 'filtered' | 'unfiltered' | 'open|filtered' | 'closed|filtered';

/** What nmap's service detection says runs on a port. @public */
export interface NmapService {
  /** Service name (`ssh`, `http`). */
  readonly name: string;
  /** Product (`OpenSSH`), null when not detected. */
  readonly product: string | null;
  /** Product version (`9.2p1 Debian 2+deb12u3`), null when not detected. */
  readonly version: string | null;
  /** Extra information (`protocol 2.0`), null when none. */
  readonly extrainfo: string | null;
  /** `ssl` when the service was found inside TLS; else null. */
  readonly tunnel: string | null;
  /** CPE names nmap matched. */
  readonly cpe: readonly string[];
}

/** One scanned port. @public */
export interface NmapPort {
  /** Transport. */
  readonly protocol: NmapProtocol;
  /** Port number. */
  readonly port: number;
  /** State. */
  readonly state: NmapPortState;
  /** Why nmap decided the state (`syn-ack`), null when absent. */
  readonly reason: string | null;
  /** Detected service, null when none. */
  readonly service: NmapService | null;
}

/** One scanned host. @public */
export interface NmapHost {
  /** Host state. */
  readonly state: 'up' | 'down' | 'unknown' | 'skipped';
  /** Addresses; IP addresses in canonical text, MAC addresses upper-case. */
  readonly addresses: ReadonlyArray<{ readonly addr: string; readonly type: 'ipv4' | 'ipv6' | 'mac' }>;
  /** Host names nmap knows (user-given or PTR). */
  readonly hostnames: readonly string[];
  /** Ports listed one by one (the ones folded into `extraports` are not). */
  readonly ports: readonly NmapPort[];
}

/** A whole nmap run. @public */
export interface NmapScan {
  /** nmap's command line, null when absent. */
  readonly args: string | null;
  /** nmap's version, null when absent. */
  readonly version: string | null;
  /** Start of the scan, ms since the epoch; null when absent. */
  readonly start: number | null;
  /** Scanned hosts. */
  readonly hosts: readonly NmapHost[];
}

/** Limits of {@link parseNmapXml}. @public */
export interface NmapLimits {
  /** Input size in bytes. Default 32 MiB. */
  readonly maxBytes: number;
  /** Hosts. Default 65 536. */
  readonly maxHosts: number;
  /** Ports listed in the whole file. Default 1 000 000. */
  readonly maxPorts: number;
}

/** Default {@link NmapLimits}. @public */
export const DEFAULT_NMAP_LIMITS: NmapLimits = Object.freeze({ maxBytes: 32 * 1024 * 1024, maxHosts: 65_536, maxPorts: 1_000_000 });

const PORT_STATES: readonly NmapPortState[] = ['open', 'closed', 'filtered', 'unfiltered', 'open|filtered', 'closed|filtered'];
const PROTOCOLS: readonly NmapProtocol[] = ['tcp', 'udp', 'sctp', 'ip'];
const HOST_STATES = ['up', 'down', 'unknown', 'skipped'] as const;
/** Elements that repeat, by path: the parser gives them as arrays even when there is one. */
const ARRAYS = new Set(['nmaprun.host', 'nmaprun.host.address', 'nmaprun.host.hostnames', 'nmaprun.host.hostnames.hostname', 'nmaprun.host.ports', 'nmaprun.host.ports.port', 'nmaprun.host.ports.port.service.cpe', 'nmaprun.host.status']);

function bad(field: string, rule: string): never {
  throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_ADVISORY', `nmap XML: ${field} ${rule}`);
}

type Node = Record<string, unknown>;
function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
/** An element that must be there, as an object (an element with neither attributes nor children parses as ''). */
function element(v: unknown, field: string): Node {
  if (v === '') return {};
  if (!isNode(v)) bad(field, 'is not an element');
  return v;
}
function elements(v: unknown, field: string): Node[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) bad(field, 'is not a list of elements');
  return v.map((x, i) => element(x, `${field}[${i}]`));
}
function attr(n: Node, name: string, field: string, max = 1024): string | null {
  const v = n[`@_${name}`];
  if (v === undefined) return null;
  if (!isPrintable(v, max)) bad(`${field}@${name}`, `is not printable text of at most ${max} characters`);
  return v;
}
function required(n: Node, name: string, field: string, max?: number): string {
  const v = attr(n, name, field, max);
  if (v === null) bad(`${field}@${name}`, 'is missing');
  return v;
}
function oneOf<T extends string>(v: string, allowed: readonly T[], field: string): T {
  if (!(allowed as readonly string[]).includes(v)) bad(field, `is not one of ${allowed.join(', ')}`);
  return v as T;
}

function parseService(n: Node, field: string): NmapService {
  const cpe = n.cpe === undefined ? [] : (Array.isArray(n.cpe) ? n.cpe : bad(`${field}.cpe`, 'is not a list')).map((c, i) => {
    if (!isPrintable(c, 512)) bad(`${field}.cpe[${i}]`, 'is not printable text');
    return c;
  });
  return {
    name: required(n, 'name', field, 128),
    product: attr(n, 'product', field),
    version: attr(n, 'version', field),
    extrainfo: attr(n, 'extrainfo', field),
    tunnel: attr(n, 'tunnel', field, 32),
    cpe,
  };
}

function parsePort(n: Node, field: string): NmapPort {
  const protocol = oneOf(required(n, 'protocol', field, 8), PROTOCOLS, `${field}@protocol`);
  const portid = required(n, 'portid', field, 8);
  if (!/^(0|[1-9][0-9]{0,4})$/.test(portid) || Number(portid) > 65535) bad(`${field}@portid`, 'is not a port number 0..65535');
  const st = element(n.state, `${field}.state`);
  const state = oneOf(required(st, 'state', `${field}.state`, 32), PORT_STATES, `${field}.state@state`);
  return {
    protocol,
    port: Number(portid),
    state,
    reason: attr(st, 'reason', `${field}.state`, 64),
    service: n.service === undefined ? null : parseService(element(n.service, `${field}.service`), `${field}.service`),
  };
}

function parseHost(n: Node, field: string, budget: { ports: number }): NmapHost {
  const statuses = elements(n.status, `${field}.status`);
  if (statuses.length !== 1) bad(`${field}.status`, 'must appear once');
  const state = oneOf(required(statuses[0]!, 'state', `${field}.status`, 16), HOST_STATES, `${field}.status@state`);
  const addresses = elements(n.address, `${field}.address`).map((a, i) => {
    const f = `${field}.address[${i}]`;
    const type = oneOf(required(a, 'addrtype', f, 8), ['ipv4', 'ipv6', 'mac'] as const, `${f}@addrtype`);
    const raw = required(a, 'addr', f, 64);
    if (type === 'mac') {
      if (!/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/.test(raw)) bad(`${f}@addr`, 'is not a MAC address');
      return { addr: raw.toUpperCase(), type };
    }
    const ip = canonicalIp(raw);
    if (ip === undefined || ip.includes(':') !== (type === 'ipv6')) bad(`${f}@addr`, `is not an ${type} address`);
    return { addr: ip, type };
  });
  if (addresses.length === 0) bad(`${field}.address`, 'is missing');
  const hostnames: string[] = [];
  elements(n.hostnames, `${field}.hostnames`).forEach((hs, j) =>
    elements(hs.hostname, `${field}.hostnames[${j}].hostname`).forEach((h, i) => hostnames.push(required(h, 'name', `${field}.hostnames[${j}].hostname[${i}]`, 255))),
  );
  const ports: NmapPort[] = [];
  elements(n.ports, `${field}.ports`).forEach((ps, j) => {
    const list = elements(ps.port, `${field}.ports[${j}].port`);
    budget.ports -= list.length;
    if (budget.ports < 0) bad('file', 'lists more ports than the limit');
    list.forEach((p, i) => ports.push(parsePort(p, `${field}.ports[${j}].port[${i}]`)));
  });
  return { state, addresses, hostnames, ports };
}

/**
 * Parse and check nmap XML output.
 *
 * @example
 * ```ts
 * const scan = parseNmapXml(await readFile('scan.xml'));
 * const findings = confirmFindings(scan, latestReports);
 * ```
 * @public
 */
export function parseNmapXml(input: string | Uint8Array, limits: Partial<NmapLimits> = {}): NmapScan {
  const max = { ...DEFAULT_NMAP_LIMITS, ...limits };
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength;
  if (size > max.maxBytes) bad('file', `is ${size} bytes, more than the limit ${max.maxBytes}`);
  let xml: string;
  try {
    xml = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input);
  } catch {
    bad('file', 'is not UTF-8');
  }
  // Entity tricks (billion laughs, external entities) need declarations; nmap writes none.
  if (/<!ENTITY/i.test(xml) || /<!DOCTYPE[^>]*\[/i.test(xml)) bad('file', 'declares entities or a DOCTYPE internal subset');
  const valid = XMLValidator.validate(xml);
  if (valid !== true) bad('file', `is not well-formed XML (line ${valid.err.line}: ${valid.err.msg})`);
  let doc: unknown;
  try {
    doc = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '@_',
      parseTagValue: false,
      parseAttributeValue: false,
      trimValues: true,
      processEntities: true,
      htmlEntities: false,
      ignoreDeclaration: true,
      ignorePiTags: true,
      maxNestedTags: 16,
      isArray: (_name: string, jpath: unknown) => typeof jpath === 'string' && ARRAYS.has(jpath),
    }).parse(xml);
  } catch (err) {
    throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_ADVISORY', `nmap XML: file does not parse: ${(err as Error).message}`, { cause: err });
  }
  const root = element(element(doc, 'document').nmaprun, 'nmaprun');
  if (attr(root, 'scanner', 'nmaprun', 32) !== 'nmap') bad('nmaprun@scanner', 'is not "nmap"');
  const start = attr(root, 'start', 'nmaprun', 16);
  if (start !== null && !/^[0-9]{1,12}$/.test(start)) bad('nmaprun@start', 'is not a Unix time');
  const hostNodes = elements(root.host, 'nmaprun.host');
  if (hostNodes.length > max.maxHosts) bad('nmaprun.host', `has ${hostNodes.length} hosts, more than the limit ${max.maxHosts}`);
  const budget = { ports: max.maxPorts };
  return {
    args: attr(root, 'args', 'nmaprun', 4096),
    version: attr(root, 'version', 'nmaprun', 64),
    start: start === null ? null : Number(start) * 1000,
    hosts: hostNodes.map((h, i) => parseHost(h, `nmaprun.host[${i}]`, budget)),
  };
}
