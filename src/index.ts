/**
 * gatesock: encrypted, TCP-like byte streams between programs behind NAT and
 * firewalls, relayed by a scalable gateway system.
 *
 * The root entry re-exports the layers that exist so far (each also on its
 * own subpath: `gatesock/socket`, `gatesock/relay`, `gatesock/session`,
 * `gatesock/transport`, …). The typed errors come with every layer.
 *
 * @packageDocumentation
 */
export * from './transport/index.js';
export * from './session/index.js';
export * from './relay/index.js';
export * from './socket/index.js';
