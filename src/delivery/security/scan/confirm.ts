/**
 * A remote scanner sees only how a host answers packets, so it can be wrong
 * (seed 004 §2: a filtered service, a device in front of the host). Before the
 * center acts on a scanner's finding it checks the finding against the host's
 * own reported configuration (§4.4): an open port is confirmed only when the
 * host reports a listening socket on that protocol and port, bound to the
 * scanned address or to the wildcard of its family.
 */
import { canonicalIp, type FullReport, type ServiceEntry } from '../report/index.js';
import type { NmapScan, NmapService } from './nmap.js';

/** How a scanner's open port compares with the host's report. @public */
export type FindingStatus =
  /** The host reports a socket listening there: act on it. */
  | 'confirmed'
  /** The host is known but reports no such listener (or only on another address): do not act. */
  | 'not-confirmed'
  /** No report claims the scanned address. */
  | 'unknown-host'
  /** Several hosts' reports claim the address: the center cannot tell which host it is. */
  | 'ambiguous-host';

/** One open port from the scan, judged against the reports. @public */
export interface ScanFinding {
  /** Scanned address (canonical). */
  readonly address: string;
  /** Transport. */
  readonly protocol: 'tcp' | 'udp' | 'sctp' | 'ip';
  /** Port. */
  readonly port: number;
  /** What nmap saw (`open`, `open|filtered`). */
  readonly scanState: string;
  /** nmap's service detection, null when none. */
  readonly service: NmapService | null;
  /** The host whose report claims the address; null when none or several. */
  readonly hostMsid: string | null;
  /** Verdict. */
  readonly status: FindingStatus;
  /** The reported listening socket that agrees, when confirmed. */
  readonly listener: ServiceEntry | null;
  /** One line saying why. */
  readonly reason: string;
}

/** Whether a socket bound to `bound` receives packets sent to `scanned`. */
function receives(bound: string, scanned: string): boolean {
  if (bound === scanned) return true;
  const v4 = !scanned.includes(':');
  if (v4 && bound === `::ffff:${scanned}`) return true;
  if (v4 && bound === '0.0.0.0') return true;
  // Linux's default (net.ipv6.bindv6only = 0): a socket on [::] also takes IPv4.
  if (bound === '::') return true;
  return false;
}

/**
 * Judge every open (or open|filtered) port of `scan` against the hosts' latest
 * full reports. Closed and filtered ports are not findings and are left out.
 * The result is sorted by address, protocol and port.
 * @public
 */
export function confirmFindings(scan: NmapScan, reports: Iterable<FullReport>): ScanFinding[] {
  const byAddress = new Map<string, FullReport[]>();
  for (const r of reports) {
    for (const a of r.addresses) {
      const c = canonicalIp(a);
      if (c === undefined) continue;
      const list = byAddress.get(c) ?? [];
      if (!list.includes(r)) list.push(r);
      byAddress.set(c, list);
    }
  }
  const out: ScanFinding[] = [];
  for (const host of scan.hosts) {
    for (const addr of host.addresses) {
      if (addr.type === 'mac') continue;
      for (const p of host.ports) {
        if (p.state !== 'open' && p.state !== 'open|filtered') continue;
        const base = { address: addr.addr, protocol: p.protocol, port: p.port, scanState: p.state, service: p.service };
        const owners = byAddress.get(addr.addr) ?? [];
        if (owners.length === 0) {
          out.push({ ...base, hostMsid: null, status: 'unknown-host', listener: null, reason: `no host reports the address ${addr.addr}` });
          continue;
        }
        if (owners.length > 1) {
          out.push({ ...base, hostMsid: null, status: 'ambiguous-host', listener: null, reason: `${owners.length} hosts report the address ${addr.addr}` });
          continue;
        }
        const report = owners[0]!;
        const where = `${p.protocol}/${p.port}`;
        if (p.protocol !== 'tcp' && p.protocol !== 'udp') {
          out.push({ ...base, hostMsid: report.hostMsid, status: 'not-confirmed', listener: null, reason: `agents report tcp and udp sockets only, not ${p.protocol}` });
          continue;
        }
        const samePort = report.services.filter((s) => s.proto === p.protocol && s.port === p.port);
        const listener = samePort.find((s) => receives(s.address, addr.addr));
        if (listener !== undefined) {
          const who = listener.process === null ? '' : ` (${listener.process})`;
          out.push({ ...base, hostMsid: report.hostMsid, status: 'confirmed', listener, reason: `report ${report.seq} lists ${where} listening on ${listener.address}${who}` });
        } else if (samePort.length > 0) {
          out.push({ ...base, hostMsid: report.hostMsid, status: 'not-confirmed', listener: null, reason: `report ${report.seq} lists ${where} only on ${samePort.map((s) => s.address).join(', ')}, not on ${addr.addr}` });
        } else {
          out.push({ ...base, hostMsid: report.hostMsid, status: 'not-confirmed', listener: null, reason: `report ${report.seq} lists no socket on ${where}` });
        }
      }
    }
  }
  const keyed = out.map((f) => ({ f, k: `${f.address}\u0000${f.protocol}\u0000${String(f.port).padStart(5, '0')}` }));
  return keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0)).map((x) => x.f);
}
