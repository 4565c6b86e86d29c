/**
 * Configuration documents, versioned per tenant, and their in-memory replica kept current by
 * push (see store.ts and replica.ts). The typed model is in @allot/contracts (config).
 */
export { type ConfigChangeListener, ConfigReplica, type ConfigReplicaOptions } from './replica.ts';
export { type DocumentRoutesOptions, documentRoutes } from './routes.ts';
export {
  type AuditEntry,
  CONFIG_CHANGED_SUBJECT,
  type ConfigDocument,
  ConfigStore,
  type ConfigStoreOptions,
  canonicalJson,
  configMigrations,
  migrateConfig,
} from './store.ts';
