import { PgStore } from './pg.ts';
import { PgliteStore } from './pglite.ts';
import type { SqlStore } from './port.ts';

export { type MigrateOptions, migrate } from './migrate.ts';
export { PgStore, type PgStoreOptions } from './pg.ts';
export { PgliteStore, type PgliteStoreOptions } from './pglite.ts';
export type { SqlExecutor, SqlResult, SqlStore, SqlValue } from './port.ts';

export interface OpenSqlStoreOptions {
  /** PostgreSQL URL (`DATABASE_URL`). Without it, the store is an embedded PGlite. */
  url?: string | undefined;
  /** Where PGlite persists; in memory when absent. Unused with `url`. */
  dataDir?: string | undefined;
  /** Pool size on PostgreSQL. */
  max?: number | undefined;
}

/**
 * PostgreSQL when a URL is given, else PGlite in-process (`npm start`, tests). A malformed
 * URL throws before any connection; PGlite is ready when this resolves.
 */
export async function openSqlStore(options: OpenSqlStoreOptions): Promise<SqlStore> {
  if (options.url !== undefined) return new PgStore({ url: options.url, max: options.max });
  return PgliteStore.open({ dataDir: options.dataDir });
}
