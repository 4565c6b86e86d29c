import { fileURLToPath } from 'node:url';
import type { Bus } from '../bus/port.ts';
import { migrate } from '../sql/migrate.ts';
import type { SqlExecutor, SqlStore } from '../sql/port.ts';

/** The configuration tables' migrations, applied to schema `config`. */
export const configMigrations = fileURLToPath(new URL('../../migrations/config', import.meta.url));

/** The same tables in another schema serve another store (the control plane's). */
export function migrateConfig(sql: SqlStore, schema = 'config'): Promise<string[]> {
  return migrate(sql, { schema, dir: configMigrations });
}

export interface ConfigStoreOptions {
  /** The schema of its tables. Default `config` (the data plane's). */
  schema?: string;
  /** Where changes are announced. Default `config.changed`. */
  subject?: string;
  /** Called after every change is committed, besides the announcement; must not throw. */
  onChange?: (tenant: string, version: number) => void;
}

/** Where a change is announced (core NATS, at most once): `{ tenant, version }`. */
export const CONFIG_CHANGED_SUBJECT = 'config.changed';

export interface ConfigDocument {
  tenant: string;
  kind: string;
  id: string;
  /** null once deleted (a tombstone: replicas learn about deletions by version like any change). */
  body: unknown;
  version: number;
  updatedAt: Date;
}

export interface AuditEntry {
  version: number;
  kind: string;
  id: string;
  action: 'put' | 'delete';
  body: unknown;
  actor: string;
  at: Date;
}

interface DocumentRow {
  tenant: string;
  kind: string;
  id: string;
  body: unknown;
  deleted: boolean;
  version: string;
  updated_at: Date;
}

function toDocument(row: DocumentRow): ConfigDocument {
  return {
    tenant: row.tenant,
    kind: row.kind,
    id: row.id,
    body: row.deleted ? null : row.body,
    version: Number(row.version),
    updatedAt: new Date(row.updated_at),
  };
}

/** JSON with object keys sorted: two bodies that mean the same compare equal. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

/**
 * The data plane's configuration documents, versioned per tenant. Every accepted change takes
 * the tenant's next version (one counter row, so a tenant's changes are totally ordered), is
 * written with it, logged in the audit table, and announced on the bus after commit. Writing
 * what is already there changes nothing and takes no version, so a retried PUT is a no-op.
 */
export class ConfigStore {
  readonly #sql: SqlStore;
  readonly #bus: Bus | undefined;

  readonly #schema: string;
  readonly #onChange: ConfigStoreOptions['onChange'];
  /** Where this store announces its changes. */
  readonly subject: string;

  constructor(sql: SqlStore, bus?: Bus, options: ConfigStoreOptions = {}) {
    this.#sql = sql;
    this.#bus = bus;
    this.#schema = options.schema ?? 'config';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(this.#schema)) throw new Error(`bad schema name ${this.#schema}`);
    this.subject = options.subject ?? CONFIG_CHANGED_SUBJECT;
    this.#onChange = options.onChange;
  }

  /** Creates or replaces a document. `changed` is false when it already held exactly this body. */
  async put(
    tenant: string,
    kind: string,
    id: string,
    body: unknown,
    actor: string,
  ): Promise<{ document: ConfigDocument; changed: boolean }> {
    const result = await this.#sql.transaction(async (tx) => {
      const current = await lockedDocument(this.#schema, tx, tenant, kind, id);
      if (current && current.body !== null && canonicalJson(current.body) === canonicalJson(body)) {
        return { document: current, changed: false };
      }
      const document = await write(this.#schema, tx, { tenant, kind, id, body, actor, action: 'put' });
      return { document, changed: true };
    });
    if (result.changed) this.#announce(tenant, result.document.version);
    return result;
  }

  /** Deletes a document; false when there was none. */
  async delete(tenant: string, kind: string, id: string, actor: string): Promise<boolean> {
    const document = await this.#sql.transaction(async (tx) => {
      const current = await lockedDocument(this.#schema, tx, tenant, kind, id);
      if (!current || current.body === null) return null;
      return write(this.#schema, tx, { tenant, kind, id, body: null, actor, action: 'delete' });
    });
    if (document) this.#announce(tenant, document.version);
    return document !== null;
  }

  async get(tenant: string, kind: string, id: string): Promise<ConfigDocument | null> {
    const { rows } = await this.#sql.query<DocumentRow>(
      `SELECT * FROM ${this.#schema}.documents WHERE tenant = $1 AND kind = $2 AND id = $3 AND NOT deleted`,
      [tenant, kind, id],
    );
    return rows[0] ? toDocument(rows[0]) : null;
  }

  /** The tenant's live documents of one kind, by id; `idPrefix` narrows (`acme/` for one customer's entities). */
  async list(tenant: string, kind: string, idPrefix = ''): Promise<ConfigDocument[]> {
    const { rows } = await this.#sql.query<DocumentRow>(
      `SELECT * FROM ${this.#schema}.documents
       WHERE tenant = $1 AND kind = $2 AND NOT deleted AND starts_with(id, $3)
       ORDER BY id`,
      [tenant, kind, idPrefix],
    );
    return rows.map(toDocument);
  }

  /** Documents (tombstones included) changed after `version`, in version order. */
  async changesSince(tenant: string, version: number, limit = 5000): Promise<ConfigDocument[]> {
    const { rows } = await this.#sql.query<DocumentRow>(
      `SELECT * FROM ${this.#schema}.documents WHERE tenant = $1 AND version > $2 ORDER BY version LIMIT $3`,
      [tenant, version, limit],
    );
    return rows.map(toDocument);
  }

  /** Every tenant's current version. */
  async versions(): Promise<Map<string, number>> {
    const { rows } = await this.#sql.query<{ tenant: string; version: string }>(
      `SELECT tenant, version FROM ${this.#schema}.versions`,
    );
    return new Map(rows.map((row) => [row.tenant, Number(row.version)]));
  }

  /** The audit log, newest first. */
  async audit(tenant: string, options: { before?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    const { rows } = await this.#sql.query<{
      version: string;
      kind: string;
      id: string;
      action: 'put' | 'delete';
      body: unknown;
      actor: string;
      at: Date;
    }>(
      `SELECT version, kind, id, action, body, actor, at FROM ${this.#schema}.audit
       WHERE tenant = $1 AND version < $2 ORDER BY version DESC LIMIT $3`,
      [tenant, options.before ?? Number.MAX_SAFE_INTEGER, options.limit ?? 100],
    );
    return rows.map((row) => ({ ...row, version: Number(row.version), at: new Date(row.at) }));
  }

  #announce(tenant: string, version: number): void {
    this.#onChange?.(tenant, version);
    try {
      this.#bus?.notify(this.subject, Buffer.from(JSON.stringify({ tenant, version })));
    } catch {
      // At most once by design: replicas also poll, so a lost announcement costs a poll interval.
    }
  }
}

async function lockedDocument(
  schema: string,
  tx: SqlExecutor,
  tenant: string,
  kind: string,
  id: string,
): Promise<ConfigDocument | null> {
  const { rows } = await tx.query<DocumentRow>(
    `SELECT * FROM ${schema}.documents WHERE tenant = $1 AND kind = $2 AND id = $3 FOR UPDATE`,
    [tenant, kind, id],
  );
  return rows[0] ? toDocument(rows[0]) : null;
}

async function write(
  schema: string,
  tx: SqlExecutor,
  change: {
    tenant: string;
    kind: string;
    id: string;
    body: unknown;
    actor: string;
    action: 'put' | 'delete';
  },
): Promise<ConfigDocument> {
  const { rows: versions } = await tx.query<{ version: string }>(
    `INSERT INTO ${schema}.versions AS v (tenant, version) VALUES ($1, 1)
     ON CONFLICT (tenant) DO UPDATE SET version = v.version + 1
     RETURNING version`,
    [change.tenant],
  );
  const version = Number(versions[0]!.version);
  const body = change.body === null ? null : JSON.stringify(change.body);
  const { rows } = await tx.query<DocumentRow>(
    `INSERT INTO ${schema}.documents (tenant, kind, id, body, deleted, version, updated_at)
     VALUES ($1, $2, $3, $4::jsonb, $5, $6, now())
     ON CONFLICT (tenant, kind, id) DO UPDATE
       SET body = excluded.body, deleted = excluded.deleted, version = excluded.version, updated_at = excluded.updated_at
     RETURNING *`,
    [change.tenant, change.kind, change.id, body, change.body === null, version],
  );
  await tx.query(
    `INSERT INTO ${schema}.audit (tenant, version, kind, id, action, body, actor, at)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, now())`,
    [change.tenant, version, change.kind, change.id, change.action, body, change.actor],
  );
  return toDocument(rows[0]!);
}
