/**
 * The policy database's document ({@link PolicyDocument}): checking one, and
 * what it says for one host — its action settings, the configuration files
 * its agent must report, and its generated nftables rule set.
 */
import { SecurityCenterError } from '../../../errors/index.js';
import { MAX_REQUESTED_FILES, type RequestedFile } from '../channel/index.js';
import { checkPolicy, resolveHostPolicy } from '../diagnosis/index.js';
import { firewallForHost } from '../firewall/index.js';
import { checkConfigRoot, checkUpgradeCommand } from './countermeasure.js';
import type { ActionSettings, PolicyDocument } from './store.js';

/** The document of a center whose policy database is empty. @internal */
export const EMPTY_POLICY: PolicyDocument = Object.freeze({ policy: null, defaults: Object.freeze({}), hosts: Object.freeze({}) });

const HOST_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function checkSettings(s: unknown, where: string): ActionSettings {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', `${where} must be an object`);
  const o = s as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'upgradeCommand' && k !== 'configRoot') throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', `${where}.${k} is not a setting`);
  return {
    ...(o.upgradeCommand !== undefined ? { upgradeCommand: checkUpgradeCommand(o.upgradeCommand, `${where}.upgradeCommand`) } : {}),
    ...(o.configRoot !== undefined ? { configRoot: checkConfigRoot(o.configRoot, `${where}.configRoot`) } : {}),
  };
}

/**
 * Check a policy document (policy database content): the diagnosis policy
 * (`checkPolicy`) and every action setting.
 * @throws SecurityCenterError `GS_ERR_SECURITY_MALFORMED_POLICY`.
 * @public
 */
export function checkPolicyDocument(doc: unknown): PolicyDocument {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', 'the policy document must be an object');
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['policy', 'defaults', 'hosts'].includes(k)) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', `the policy document has an unknown key ${JSON.stringify(k)}`);
  const policy = o.policy === undefined || o.policy === null ? null : checkPolicy(o.policy);
  const defaults = o.defaults === undefined ? {} : checkSettings(o.defaults, 'defaults');
  const hosts: Record<string, ActionSettings> = {};
  if (o.hosts !== undefined) {
    if (typeof o.hosts !== 'object' || o.hosts === null || Array.isArray(o.hosts)) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', 'hosts must be an object of host ID → settings');
    for (const [h, s] of Object.entries(o.hosts)) {
      if (!HOST_ID_RE.test(h)) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', `hosts: ${JSON.stringify(h.slice(0, 40))} is not a host ID`);
      hosts[h] = checkSettings(s, `hosts.${h}`);
    }
  }
  return { policy, defaults, hosts };
}

/** How the center acts on `hostId`: the document's defaults under the host's own settings. @internal */
export function settingsFor(doc: PolicyDocument, hostId: string): ActionSettings {
  return { ...doc.defaults, ...(doc.hosts[hostId] ?? {}) };
}

/** The files this host's policy needs reported: required files (hash), files with settings (content too). @internal */
export function requestedFiles(doc: PolicyDocument, hostId: string): RequestedFile[] {
  let rules;
  try {
    rules = resolveHostPolicy(doc.policy ?? undefined, hostId);
  } catch {
    return [];
  }
  if (!rules) return [];
  const out = new Map<string, boolean>();
  for (const f of rules.files) out.set(f.path, out.get(f.path) ?? false);
  for (const s of rules.settings) out.set(s.path, true);
  return [...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).slice(0, MAX_REQUESTED_FILES).map(([path, content]) => ({ path, content }));
}

/** The host's nftables rule set from the policy, or null (no policy, none for it, or it failed: `onError` gets why). @internal */
export function firewallFor(doc: PolicyDocument, hostId: string, onError: (err: Error) => void): string | null {
  if (doc.policy === null) return null;
  try {
    return firewallForHost(doc.policy, hostId) ?? null;
  } catch (err) {
    onError(err as Error);
    return null;
  }
}
