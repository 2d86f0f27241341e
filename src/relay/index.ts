/**
 * The gateway system (design, system 1): the controller's server database
 * and the operator's PKI, with the controller and gateway engines to follow.
 *
 * @packageDocumentation
 */
export * from './store/index.js';
export * from './pki.js';
