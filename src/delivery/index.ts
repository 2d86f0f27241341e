/**
 * gatesock/delivery — the reliable multicast updater (signed updates to many
 * hosts at once over UDP multicast; docs/delivery.md), and later the
 * verifiable dispatcher and the agents.
 *
 * @packageDocumentation
 */
export * from './update/index.js';
export { DeliveryError, type DeliveryErrorCode } from '../errors/index.js';
