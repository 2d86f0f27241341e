/**
 * The controller's server database (design, system 1, and "Stores"): the
 * {@link ServerStore} interface, PCID rules, a store in memory and the
 * default SQLite store.
 *
 * @packageDocumentation
 */
export {
  PCID_ATTEMPTS,
  type ServerRecord,
  type ServerStore,
  type ServerStoreOptions,
} from './types.js';
export { PCID_MAX_LENGTH, checkPcid, isValidPcid, randomPcid } from './pcid.js';
export { MemoryServerStore } from './memory.js';
export { SQLITE_SCHEMA_VERSION, SqliteServerStore } from './sqlite.js';
