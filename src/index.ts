/**
 * gatesock: encrypted, TCP-like byte streams between programs behind NAT and
 * firewalls, relayed by a scalable gateway system.
 *
 * @packageDocumentation
 */
export * from './errors/index.js';
export * from './transport/index.js';
export * from './session/index.js';
