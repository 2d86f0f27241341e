/**
 * Firewall rules for the network-device agents (issue 8, the new-host
 * trigger; seed 004 §3 ④ and §4.1): nftables rule sets generated from the
 * policy database's service rules.
 *
 * @packageDocumentation
 */
export {
  firewallForHost,
  generateForwardNftables,
  generateNftables,
  parseCidr,
  serviceRulesFor,
  type Cidr,
  type NftablesOptions,
  type ProtectedHost,
} from './nftables.js';
export type { HostPolicy, Policy, RolePolicy, ServiceRule } from '../diagnosis/policy.js';
