import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type RunnableMigration, Umzug, type UmzugStorage } from 'umzug';
import { quoteIdentifier } from './encode.ts';
import type { SqlExecutor, SqlStore } from './port.ts';

export interface MigrateOptions {
  /** The service's schema, e.g. `credits`; created if missing. */
  schema: string;
  /** Absolute path of the service's `migrations/` folder. */
  dir: string;
}

/** `001_create_ledger.sql`: three digits, so name order is apply order. */
const MIGRATION_FILE = /^(\d{3})_[a-z0-9_]+\.sql$/;

/**
 * Applies the pending `NNN_name.sql` files of `dir` to `schema`, in order, and returns the
 * names it applied (`001_create_ledger`, ...).
 *
 * Each migration runs in its own transaction, together with its row in
 * `<schema>.schema_migrations` and with `search_path` set to the schema, so a failure
 * leaves the schema at the last migration that succeeded. Each of those transactions first
 * takes an advisory lock keyed on the schema and only then asks what is applied, so
 * processes migrating at once take turns and apply every migration once.
 *
 * A migration file holds plain statements: no BEGIN/COMMIT, nothing that refuses to run in
 * a transaction (`CREATE INDEX CONCURRENTLY`).
 */
export async function migrate(store: SqlStore, options: MigrateOptions): Promise<string[]> {
  const schema = quoteIdentifier('schema', options.schema);
  const migrations = await readMigrations(options.dir, schema);
  const storage = migrationsTable(schema);
  const applied: string[] = [];
  for (;;) {
    const step = await store.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`allot.migrate.${options.schema}`]);
      await tx.query(
        `CREATE SCHEMA IF NOT EXISTS ${schema};
         CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
           name text PRIMARY KEY,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      return new Umzug({ migrations, context: tx, storage, logger: undefined }).up({ step: 1 });
    });
    if (step.length === 0) return applied;
    applied.push(...step.map((migration) => migration.name));
  }
}

async function readMigrations(dir: string, schema: string): Promise<RunnableMigration<SqlExecutor>[]> {
  const files = (await readdir(dir)).filter((file) => file.endsWith('.sql')).sort();
  const numbers = new Set<string>();
  const migrations: RunnableMigration<SqlExecutor>[] = [];
  for (const file of files) {
    const number = MIGRATION_FILE.exec(file)?.[1];
    if (number === undefined) {
      throw new Error(`migration ${join(dir, file)}: expected a name like 001_create_ledger.sql`);
    }
    // Two branches that each added migration 004 must be renumbered, not applied in a guessed order.
    if (numbers.has(number)) throw new Error(`migrations in ${dir}: more than one numbered ${number}`);
    numbers.add(number);
    const path = join(dir, file);
    const sql = await readFile(path, 'utf8');
    migrations.push({
      name: file.slice(0, -'.sql'.length),
      path,
      up: async ({ context: tx }) => {
        await tx.query(`SET LOCAL search_path TO ${schema}, public`);
        await tx.query(sql);
      },
    });
  }
  return migrations;
}

/** Umzug's record of what is applied, written through the port in the migration's own transaction. */
function migrationsTable(schema: string): UmzugStorage<SqlExecutor> {
  const table = `${schema}.schema_migrations`;
  return {
    async executed({ context: tx }) {
      const { rows } = await tx.query<{ name: string }>(`SELECT name FROM ${table} ORDER BY name`);
      return rows.map((row) => row.name);
    },
    async logMigration({ name, context: tx }) {
      await tx.query(`INSERT INTO ${table} (name) VALUES ($1)`, [name]);
    },
    async unlogMigration({ name, context: tx }) {
      await tx.query(`DELETE FROM ${table} WHERE name = $1`, [name]);
    },
  };
}
