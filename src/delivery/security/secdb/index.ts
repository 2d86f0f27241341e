/**
 * The security information database: advisories, their affected packages
 * and ranges, and countermeasures (memory and SQLite stores).
 *
 * @packageDocumentation
 */
export { MemorySecurityStore } from './memory.js';
export { SECURITY_SQLITE_SCHEMA_VERSION, SqliteSecurityStore } from './sqlite.js';
export type { PutAdvisoriesResult, SecurityStore, SecurityStoreCounts } from './types.js';
