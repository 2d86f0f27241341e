/**
 * The gateway system (design, system 1): the controller (directory and
 * load balancer, with its server database), the gateways that relay, the
 * balancing strategies, tokens and tickets, the operator's PKI, and the
 * server and client endpoints the socket API is built on.
 *
 * @packageDocumentation
 */
export * from '../errors/index.js';
// Types the options and results below are made of, so this entry point is self-contained.
export { INITIAL_WINDOW, MAX_DATA_PAYLOAD, type Certificate, type CryptoBackend, type CryptoBackendName, type Identity, type MuxClock, type MuxOptions, type Clock } from '../session/index.js';
export * from './store/index.js';
export * from './pki.js';
export { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { leastSessionsStrategy, weightedLoadStrategy, type BalancingStrategy, type GatewayLoad, type LoadWeights } from './balancing.js';
export { Controller, DEFAULT_CONTROLLER_OPTIONS, type ControllerEvents, type ControllerOptions, type GatewayStatus } from './controller.js';
export { DEFAULT_GATEWAY_OPTIONS, GATEWAY_RELAY_CHANNEL, Gateway, type GatewayEvents, type GatewayOptions } from './gateway.js';
export type { LinkOptions } from './link.js';
export type { WebSocketListenOptions } from './listen.js';
export { silentLogger, type RelayLogger } from './log.js';
export type { GatewayAddress, ServerInfo } from './messages.js';
export type { RelayEndpointOptions } from './endpoint-options.js';
export { ServerEndpoint, type RelayConnectionInfo, type ServerEndpointEvents, type ServerEndpointOptions } from './server-endpoint.js';
export { relayConnect, relayLookup, type RelayConnection } from './client-endpoint.js';
