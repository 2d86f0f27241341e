/**
 * Remote scanner findings (issue 8, the fourth trigger; seed 004 §4.4):
 * nmap XML import and the confirmation of each open port against the host's
 * own reported configuration.
 *
 * @packageDocumentation
 */
export {
  DEFAULT_NMAP_LIMITS,
  parseNmapXml,
  type NmapHost,
  type NmapLimits,
  type NmapPort,
  type NmapPortState,
  type NmapProtocol,
  type NmapScan,
  type NmapService,
} from './nmap.js';
export { confirmFindings, type FindingStatus, type ScanFinding } from './confirm.js';
