/** The control plane's tables: tenants, what their data planes reported, their aggregates. */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { migrateConfig } from '@allot/kit/config-store';
import { migrate, type SqlExecutor, type SqlStore } from '@allot/kit/sql';
import bcrypt from 'bcryptjs';
import { tenantUser } from '../domain/nats-config.ts';

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
/** The control plane's configuration documents: the same tables as a data plane's, its own schema. */
export const CONTROL_PLANE_CONFIG_SCHEMA = 'controlplane_config';

export async function migrateControlPlane(sql: SqlStore): Promise<string[]> {
  return [
    ...(await migrateConfig(sql, CONTROL_PLANE_CONFIG_SCHEMA)),
    ...(await migrate(sql, { schema: 'controlplane', dir: MIGRATIONS })),
  ];
}

export interface Tenant {
  id: string;
  name: string;
  natsUser: string;
  createdAt: string;
  appliedVersion: number;
  health: Record<string, unknown> | null;
  lastSeen: string | null;
}

interface TenantRow {
  id: string;
  name: string;
  nats_user: string;
  created_at: Date;
  applied_version: string | null;
  health: Record<string, unknown> | null;
  last_seen: Date | null;
}

const toTenant = (r: TenantRow): Tenant => ({
  id: r.id,
  name: r.name,
  natsUser: r.nats_user,
  createdAt: new Date(r.created_at).toISOString(),
  appliedVersion: Number(r.applied_version ?? 0),
  health: r.health,
  lastSeen: r.last_seen ? new Date(r.last_seen).toISOString() : null,
});

const SELECT = `SELECT t.id, t.name, t.nats_user, t.created_at, s.applied_version, s.health, s.last_seen
  FROM controlplane.tenants t LEFT JOIN controlplane.tenant_status s ON s.tenant = t.id`;

export function newPassword(): string {
  return randomBytes(24).toString('base64url');
}

export async function hashPassword(password: string): Promise<string> {
  return bcrypt.hash(password, 10);
}

/** Creates the tenant (or rotates its password); returns it with the password, shown once. */
export async function putTenant(
  sql: SqlStore,
  id: string,
  name: string,
): Promise<{ tenant: Tenant; password: string; created: boolean }> {
  const password = newPassword();
  const hash = await hashPassword(password);
  const { rows } = await sql.query<{ created: boolean }>(
    `INSERT INTO controlplane.tenants (id, name, nats_user, password_hash) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, password_hash = excluded.password_hash
     RETURNING (xmax = 0) AS created`,
    [id, name, tenantUser(id), hash],
  );
  const tenant = await getTenant(sql, id);
  return { tenant: tenant!, password, created: rows[0]!.created };
}

/** The tenant, created if missing (its password, unknown to anyone, rotated by a PUT). */
export async function ensureTenant(sql: SqlStore, id: string, name: string): Promise<void> {
  await sql.query(
    `INSERT INTO controlplane.tenants (id, name, nats_user, password_hash) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO NOTHING`,
    [id, name, tenantUser(id), await hashPassword(newPassword())],
  );
}

export async function getTenant(sql: SqlExecutor, id: string): Promise<Tenant | null> {
  const { rows } = await sql.query<TenantRow>(`${SELECT} WHERE t.id = $1`, [id]);
  return rows[0] ? toTenant(rows[0]) : null;
}

export async function listTenants(sql: SqlExecutor): Promise<Tenant[]> {
  const { rows } = await sql.query<TenantRow>(`${SELECT} ORDER BY t.id`);
  return rows.map(toTenant);
}

/** The tenants' NATS users as the hub's server configuration needs them. */
export async function hubUsers(
  sql: SqlExecutor,
): Promise<{ tenant: string; user: string; passwordHash: string }[]> {
  const { rows } = await sql.query<{ id: string; nats_user: string; password_hash: string }>(
    'SELECT id, nats_user, password_hash FROM controlplane.tenants ORDER BY id',
  );
  return rows.map((r) => ({ tenant: r.id, user: r.nats_user, passwordHash: r.password_hash }));
}

export async function recordAck(sql: SqlExecutor, tenant: string, version: number): Promise<void> {
  await sql.query(
    `INSERT INTO controlplane.tenant_status (tenant, applied_version, last_seen) VALUES ($1, $2, now())
     ON CONFLICT (tenant) DO UPDATE SET applied_version = greatest(controlplane.tenant_status.applied_version, excluded.applied_version), last_seen = now()`,
    [tenant, version],
  );
}

export async function recordHealth(
  sql: SqlExecutor,
  tenant: string,
  health: Record<string, unknown>,
): Promise<void> {
  await sql.query(
    `INSERT INTO controlplane.tenant_status (tenant, health, last_seen) VALUES ($1, $2::jsonb, now())
     ON CONFLICT (tenant) DO UPDATE SET health = excluded.health, last_seen = now()`,
    [tenant, JSON.stringify(health)],
  );
}

export interface UplinkAggregate {
  meter: string;
  meterVersion: number;
  customerId: string;
  windowStart: string;
  groupBy: Record<string, string | null>;
  value: string;
  count: number;
  version: string;
}

/** Upserts what a data plane exported; an older version never replaces a newer one. */
export async function storeAggregates(
  sql: SqlExecutor,
  tenant: string,
  rows: readonly UplinkAggregate[],
): Promise<number> {
  if (rows.length === 0) return 0;
  // The last of several copies of a key in one message wins (they come in version order).
  const byKey = new Map<string, UplinkAggregate>();
  for (const r of rows) {
    byKey.set(JSON.stringify([r.meter, r.meterVersion, r.customerId, r.windowStart, r.groupBy]), r);
  }
  const unique = [...byKey.entries()];
  const result = await sql.query(
    `INSERT INTO controlplane.aggregates AS a
       (tenant, meter, meter_version, customer_id, window_start, group_by, group_key, value, count, version)
     SELECT $1, m, mv, c, ws::timestamptz, g::jsonb, gk, v, n, ver
     FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::numeric[], $9::bigint[], $10::numeric[])
       AS r (m, mv, c, ws, g, gk, v, n, ver)
     ON CONFLICT (tenant, meter, meter_version, customer_id, window_start, group_key) DO UPDATE SET
       value = excluded.value, count = excluded.count, version = excluded.version, group_by = excluded.group_by
     WHERE a.version < excluded.version`,
    [
      tenant,
      unique.map(([, r]) => r.meter),
      unique.map(([, r]) => r.meterVersion),
      unique.map(([, r]) => r.customerId),
      unique.map(([, r]) => r.windowStart),
      unique.map(([, r]) => JSON.stringify(r.groupBy)),
      unique.map(([key]) => key),
      unique.map(([, r]) => r.value),
      unique.map(([, r]) => r.count),
      unique.map(([, r]) => r.version),
    ],
  );
  return result.rowCount;
}

/** Usage per window from the exported aggregates, for the control plane's analytics. */
export async function usageSeries(
  sql: SqlExecutor,
  tenant: string,
  query: {
    meter: string;
    customerId?: string;
    from?: Date;
    to?: Date;
    windowSize: 'MINUTE' | 'HOUR' | 'DAY';
  },
): Promise<{ windowStart: string; customerId: string; value: number }[]> {
  const unit = query.windowSize === 'MINUTE' ? 'minute' : query.windowSize === 'HOUR' ? 'hour' : 'day';
  const params: unknown[] = [tenant, query.meter];
  const where = ['tenant = $1', 'meter = $2'];
  if (query.customerId) {
    params.push(query.customerId);
    where.push(`customer_id = $${params.length}`);
  }
  if (query.from) {
    params.push(query.from);
    where.push(`window_start >= $${params.length}`);
  }
  if (query.to) {
    params.push(query.to);
    where.push(`window_start < $${params.length}`);
  }
  const { rows } = await sql.query<{ ws: Date; customer_id: string; value: string }>(
    `SELECT date_trunc('${unit}', window_start, 'UTC') AS ws, customer_id, sum(value)::text AS value
     FROM controlplane.aggregates WHERE ${where.join(' AND ')}
     AND meter_version = (SELECT max(meter_version) FROM controlplane.aggregates WHERE tenant = $1 AND meter = $2)
     GROUP BY 1, 2 ORDER BY 1, 2`,
    params as never,
  );
  return rows.map((r) => ({
    windowStart: new Date(r.ws).toISOString(),
    customerId: r.customer_id,
    value: Number(r.value),
  }));
}
