/**
 * The security information database: advisories, their affected packages
 * and ranges, and countermeasures (memory, SQLite and PostgreSQL stores).
 *
 * @packageDocumentation
 */
export { MemorySecurityStore } from './memory.js';
export { SECURITY_SQLITE_SCHEMA_VERSION, SqliteSecurityStore } from './sqlite.js';
export {
  PostgresSecurityStore,
  SECURITY_POSTGRES_SCHEMA_VERSION,
  inTransaction,
  isPostgresUrl,
  openPostgres,
  type PostgresClient,
  type PostgresPool,
  type PostgresQueryResult,
  type PostgresTarget,
} from './postgres.js';
export type { PutAdvisoriesResult, SecurityStore, SecurityStoreCounts } from './types.js';
