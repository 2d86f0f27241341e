/**
 * Which agent may speak for which host: a host ID is bound to the first
 * agent MSID that reports under it (`open` enrollment), or to the one
 * enrolled for it beforehand ({@link SecurityCenter.enrollHost}; with
 * `closed` enrollment only enrolled hosts may report). Another MSID for a
 * bound host, or a bound MSID under another host ID, is refused with
 * `GS_ERR_SECURITY_WRONG_HOST`. Enrolling a bound host to another agent
 * re-binds it (re-enrolment); the host's stored reports are kept, and
 * intake does not take the old agent's as the base of the new agent's
 * (intake.ts).
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
 * How many times a host's entry is read and written again after another
 * writer (another center sharing the store) changed it first.
 * @internal
 */
export const HOST_TRIES = 16;

/**
 * Enrol a host (the caller holds the store lock): bind `hostId` to the agent
 * `msid`, not seen yet. Resolves with the stored entry. The check and the
 * write are one compare and swap ({@link ConfigurationStore.replaceHost}),
 * so of an enrolment here and another center's binding of the same agent to
 * another host, one loses and is refused.
 * @throws SecurityCenterError `GS_ERR_SECURITY_WRONG_HOST` when that agent is enrolled as another host.
 * @internal
 */
export async function enroll(config: ConfigurationStore, hostId: string, msid: string, pcid: string, device: HostEntry['device']): Promise<HostEntry> {
  const entry: HostEntry = { hostId, msid, pcid, device, firstSeen: 0, lastSeen: 0, firewall: null };
  for (let attempt = 0; attempt < HOST_TRIES; attempt++) {
    const other = await config.hostByMsid(msid);
    if (other && other.hostId !== hostId) throw new SecurityCenterError('GS_ERR_SECURITY_WRONG_HOST', `agent ${msid} is enrolled as host ${other.hostId}`);
    if (await config.replaceHost(await config.getHost(hostId), entry)) return entry;
  }
  throw new Error(`host ${hostId}: its entry changed under the enrolment ${HOST_TRIES} times in a row (other writers); nothing was stored`);
}

/**
 * Replace a stored host's nftables rule set (after a policy change) by
 * compare and swap, keeping what other writers change meanwhile. Resolves
 * false when it was given up ({@link HOST_TRIES} lost swaps in a row); a
 * host that is gone is left alone.
 * @internal
 */
export async function setFirewall(config: ConfigurationStore, host: HostEntry, firewall: string | null): Promise<boolean> {
  let current: HostEntry | undefined = host;
  for (let attempt = 0; attempt < HOST_TRIES; attempt++) {
    if (current === undefined) return true;
    if (await config.replaceHost(current, { ...current, firewall })) return true;
    current = await config.getHost(host.hostId);
  }
  return false;
}
