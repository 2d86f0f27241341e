/**
 * The security agent: a dispatch agent for countermeasures, the collectors,
 * and the reporting loop to the security center (outward only).
 *
 * @packageDocumentation
 */
export { SecurityAgent, type CenterLink, type SecurityAgentEvents, type SecurityAgentOptions } from './agent.js';
