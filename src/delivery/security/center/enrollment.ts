/**
 * Which agent may speak for which host: a host ID is bound to the first
 * agent MSID that reports under it (`open` enrollment), or to the one
 * enrolled for it beforehand ({@link SecurityCenter.enrollHost}; with
 * `closed` enrollment only enrolled hosts may report). Another MSID for a
 * bound host, or a bound MSID under another host ID, is refused with
 * `GS_ERR_SECURITY_WRONG_HOST`.
 */
import { SecurityCenterError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import { checkHostInfo } from '../channel/index.js';
import type { ConfigurationStore, HostEntry } from './store.js';

/**
 * Check that the agent `msid` may report for `hostId` (the caller holds the
 * store lock). Resolves with the host's entry, or undefined for a host the
 * center does not know yet (allowed only with `open` enrollment).
 * @throws SecurityCenterError `GS_ERR_SECURITY_WRONG_HOST`.
 * @internal
 */
export async function checkReporter(config: ConfigurationStore, hostId: string, msid: string, enrollment: 'open' | 'closed' | undefined): Promise<HostEntry | undefined> {
  const byMsid = await config.hostByMsid(msid);
  if (byMsid !== undefined && byMsid.hostId !== hostId) {
    throw new SecurityCenterError('GS_ERR_SECURITY_WRONG_HOST', `agent ${msid} is enrolled as host ${byMsid.hostId}, not ${hostId}`);
  }
  const known = await config.getHost(hostId);
  if (known !== undefined && known.msid !== msid) {
    throw new SecurityCenterError('GS_ERR_SECURITY_WRONG_HOST', `host ${hostId} belongs to agent ${known.msid}; ${msid} may not report for it`);
  }
  if (known === undefined && enrollment === 'closed') {
    throw new SecurityCenterError('GS_ERR_SECURITY_WRONG_HOST', `host ${hostId} is not enrolled at this center`);
  }
  return known;
}

/** Check an enrolment's arguments (before taking the store lock). @internal */
export function checkEnrollment(hostId: string, msid: string, pcid: string, device: HostEntry['device']): void {
  checkHostInfo({ host: hostId, pcid, device });
  checkOption(typeof msid === 'string' && /^MSID-[0-9A-F]{64}$/i.test(msid), 'msid', 'must be an MSID');
}

/**
 * Enrol a host (the caller holds the store lock): bind `hostId` to the agent
 * `msid`, not seen yet. Resolves with the stored entry.
 * @throws SecurityCenterError `GS_ERR_SECURITY_WRONG_HOST` when that agent is enrolled as another host.
 * @internal
 */
export async function enroll(config: ConfigurationStore, hostId: string, msid: string, pcid: string, device: HostEntry['device']): Promise<HostEntry> {
  const other = await config.hostByMsid(msid);
  if (other && other.hostId !== hostId) throw new SecurityCenterError('GS_ERR_SECURITY_WRONG_HOST', `agent ${msid} is enrolled as host ${other.hostId}`);
  const entry: HostEntry = { hostId, msid, pcid, device, firstSeen: 0, lastSeen: 0, firewall: null };
  await config.putHost(entry);
  return entry;
}
