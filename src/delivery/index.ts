/**
 * gatesock/delivery — the reliable multicast updater (signed updates to many
 * hosts at once over UDP multicast; docs/delivery.md), and the
 * verifiable dispatcher (signed bundles run on relay-server agents, with
 * per-agent evidence in signed reports; docs/dispatch.md), and the security
 * agents and center (configuration reports, advisories, diagnosis and
 * countermeasures through dispatch).
 *
 * @packageDocumentation
 */
export * from './update/index.js';
export * from './dispatch/index.js';
export * from './security/index.js';
// The errors this layer throws (DeliveryError and the rest), and what its
// options and results are made of, so that this entry point is self-contained.
export * from '../errors/index.js';
export type { Clock, DatagramAddress, DatagramSocket, DatagramSocketEvents } from '../transport/index.js';
export { IdentityKey, type Aead, type CryptoBackend, type CryptoBackendName, type CryptoOption } from '../session/index.js';
export {
  ObjectEncoder,
  type CoderFactory,
  type EncodedSymbol,
  type ErasureCoder,
  type ObjectBlockSource,
  type ObjectCodeOptions,
  type ObjectLayout,
  type SymbolsOptions,
} from '../fec/index.js';
