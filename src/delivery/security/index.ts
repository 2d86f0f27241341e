/**
 * Security agents and center (seed paper 004, docs/security-advisories.md): version
 * ordering, advisory import, the security-information database, diagnosis,
 * configuration reports and their collectors, scanner import, nftables rules,
 * notifiers, the security center and its agents.
 */
export * from './versions/index.js';
export * from './advisories/index.js';
export * from './secdb/index.js';
export * from './diagnosis/index.js';
export * from './report/index.js';
export * from './collect/index.js';
export * from './scan/index.js';
export * from './firewall/index.js';
export * from './notify/index.js';
export * from './channel/index.js';
export * from './agent/index.js';
export * from './center/index.js';
