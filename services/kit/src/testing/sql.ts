import { randomBytes } from 'node:crypto';
import { PgStore } from '../sql/pg.ts';
import { PgliteStore } from '../sql/pglite.ts';

/** The server test databases are created on; its own database only runs CREATE and DROP DATABASE. */
export const testDatabaseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface FreshPgDatabase {
  url: string;
  store: PgStore;
  /** Closes `store`, ends any other connection to the database, and drops it. */
  drop(): Promise<void>;
}

/** A new empty database (`allot_t_<random>`), so a test never sees another's rows or schemas. */
export async function freshPgDatabase(): Promise<FreshPgDatabase> {
  const name = `allot_t_${randomBytes(6).toString('hex')}`;
  await onServer(`CREATE DATABASE ${name}`);
  const url = new URL(testDatabaseUrl);
  url.pathname = `/${name}`;
  const store = new PgStore({ url: url.href });
  return {
    url: url.href,
    store,
    async drop() {
      await store.close();
      // FORCE terminates connections a test leaked, which would otherwise block the drop.
      await onServer(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** An in-memory PGlite: nothing to drop, `close()` frees it. */
export function freshPgliteStore(): Promise<PgliteStore> {
  return PgliteStore.open();
}

async function onServer(statement: string): Promise<void> {
  const server = new PgStore({ url: testDatabaseUrl, max: 1 });
  try {
    await server.query(statement);
  } finally {
    await server.close();
  }
}
