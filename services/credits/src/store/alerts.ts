/**
 * The alert tables (migration 003): pools marked for evaluation, each (pool, kind)'s state, and
 * the alerts outbox that is also the alert history. Amounts are bigint micro-units.
 */
import type { SqlExecutor } from '@allot/kit/sql';
import type { AlertState, BalanceAlertKind, PoolKey, RechargePolicy } from '../domain/alerts.ts';

/** Marks pools for evaluation inside the caller's transaction. Locks rows in key order. */
export async function markPools(tx: SqlExecutor, pools: readonly PoolKey[]): Promise<void> {
  if (pools.length === 0) return;
  await tx.query(
    `INSERT INTO credits.alert_pending AS a (tenant, customer_id, credit_type, resource_id)
     SELECT DISTINCT tenant, customer_id, credit_type, resource_id
     FROM json_to_recordset($1::json) AS p (tenant text, customer_id text, credit_type text, resource_id text)
     ORDER BY tenant, customer_id, credit_type, resource_id
     ON CONFLICT (tenant, customer_id, credit_type, resource_id) DO UPDATE SET marked_at = now()`,
    [JSON.stringify(pools.map(poolRow))],
  );
}

/** Claims (deletes) up to `limit` marks no other evaluator holds; part of the caller's transaction. */
export async function claimMarkedPools(tx: SqlExecutor, limit: number): Promise<PoolKey[]> {
  const { rows } = await tx.query<PoolRow>(
    `DELETE FROM credits.alert_pending a
     USING (
       SELECT tenant, customer_id, credit_type, resource_id FROM credits.alert_pending
       ORDER BY marked_at LIMIT $1 FOR UPDATE SKIP LOCKED
     ) c
     WHERE a.tenant = c.tenant AND a.customer_id = c.customer_id AND a.credit_type = c.credit_type
       AND a.resource_id = c.resource_id
     RETURNING a.tenant, a.customer_id, a.credit_type, a.resource_id`,
    [limit],
  );
  return rows.map((row) => ({
    tenant: row.tenant,
    customerId: row.customer_id,
    creditType: row.credit_type,
    resourceId: row.resource_id,
  }));
}

export interface PoolAlertView extends PoolKey {
  /** remaining (grants in effect) - held (active holds) - overdraft, as the ledger has it. */
  available: bigint;
  lowBalanceThreshold: bigint | null;
  recharge: RechargePolicy | null;
  states: Partial<Record<BalanceAlertKind, AlertState>>;
}

/**
 * Each pool's available balance as the ledger has it at `now` (the same figure as `balances`),
 * its alert settings, and its alert states, locked until the caller's transaction ends.
 */
export async function poolAlertViews(
  tx: SqlExecutor,
  pools: readonly PoolKey[],
  now: Date,
): Promise<PoolAlertView[]> {
  if (pools.length === 0) return [];
  const keys = JSON.stringify(pools.map(poolRow));
  const balances = await tx.query<
    PoolRow & {
      remaining: string;
      held: string;
      overdraft: string;
      low_balance_threshold: string | null;
      recharge_threshold: string | null;
      recharge_target: string | null;
      recharge_monthly_cap: string | null;
    }
  >(
    `SELECT k.tenant, k.customer_id, k.credit_type, k.resource_id,
       p.low_balance_threshold, p.recharge_threshold, p.recharge_target, p.recharge_monthly_cap,
       coalesce(o.amount, 0) AS overdraft,
       coalesce((
         SELECT sum(b.remaining) FROM credits.grants g
         JOIN credits.grant_balances b ON b.tenant = g.tenant AND b.grant_id = g.id
         WHERE g.tenant = k.tenant AND g.customer_id = k.customer_id AND g.credit_type = k.credit_type
           AND g.resource_id = k.resource_id AND g.voided_at IS NULL AND g.expired_at IS NULL
           AND g.effective_at <= $2::timestamptz AND (g.expires_at IS NULL OR g.expires_at > $2::timestamptz)
       ), 0) AS remaining,
       coalesce((
         SELECT sum(h.amount) FROM credits.holds h
         WHERE h.tenant = k.tenant AND h.customer_id = k.customer_id AND h.status = 'active'
           AND h.credit_type = k.credit_type AND h.resource_id = k.resource_id
       ), 0) AS held
     FROM json_to_recordset($1::json) AS k (tenant text, customer_id text, credit_type text, resource_id text)
     LEFT JOIN credits.pools p ON p.tenant = k.tenant AND p.customer_id = k.customer_id
       AND p.credit_type = k.credit_type AND p.resource_id = k.resource_id
     LEFT JOIN credits.pool_overdrafts o ON o.tenant = k.tenant AND o.customer_id = k.customer_id
       AND o.credit_type = k.credit_type AND o.resource_id = k.resource_id`,
    [keys, now],
  );
  const states = await tx.query<
    PoolRow & {
      kind: BalanceAlertKind;
      fired: boolean;
      crossings: number;
      month: string | null;
      month_requested: string;
    }
  >(
    `SELECT s.tenant, s.customer_id, s.credit_type, s.resource_id, s.kind, s.fired, s.crossings, s.month,
       s.month_requested
     FROM credits.alert_state s
     JOIN json_to_recordset($1::json) AS k (tenant text, customer_id text, credit_type text, resource_id text)
       ON s.tenant = k.tenant AND s.customer_id = k.customer_id AND s.credit_type = k.credit_type
       AND s.resource_id = k.resource_id
     ORDER BY s.tenant, s.customer_id, s.credit_type, s.resource_id, s.kind
     FOR UPDATE OF s`,
    [keys],
  );
  const byPool = new Map<string, Partial<Record<BalanceAlertKind, AlertState>>>();
  for (const row of states.rows) {
    const key = rowKey(row);
    const pool = byPool.get(key) ?? {};
    pool[row.kind] = {
      fired: row.fired,
      crossings: row.crossings,
      month: row.month,
      monthRequested: BigInt(row.month_requested),
    };
    byPool.set(key, pool);
  }
  const micros = (value: string | null) => (value === null ? null : BigInt(value));
  return balances.rows.map((row) => {
    const threshold = micros(row.recharge_threshold);
    const target = micros(row.recharge_target);
    return {
      tenant: row.tenant,
      customerId: row.customer_id,
      creditType: row.credit_type,
      resourceId: row.resource_id,
      available: BigInt(row.remaining) - BigInt(row.held) - BigInt(row.overdraft),
      lowBalanceThreshold: micros(row.low_balance_threshold),
      recharge:
        threshold !== null && target !== null
          ? { threshold, target, monthlyCap: micros(row.recharge_monthly_cap) }
          : null,
      states: byPool.get(rowKey(row)) ?? {},
    };
  });
}

export interface StateChange extends PoolKey {
  kind: BalanceAlertKind;
  state: AlertState;
}

export async function saveAlertStates(tx: SqlExecutor, changes: readonly StateChange[]): Promise<void> {
  if (changes.length === 0) return;
  await tx.query(
    `INSERT INTO credits.alert_state AS s
       (tenant, customer_id, credit_type, resource_id, kind, fired, crossings, month, month_requested)
     SELECT tenant, customer_id, credit_type, resource_id, kind, fired, crossings, month, month_requested
     FROM json_to_recordset($1::json) AS c (tenant text, customer_id text, credit_type text,
       resource_id text, kind text, fired boolean, crossings integer, month text, month_requested bigint)
     ON CONFLICT (tenant, customer_id, credit_type, resource_id, kind) DO UPDATE SET
       fired = excluded.fired, crossings = excluded.crossings, month = excluded.month,
       month_requested = excluded.month_requested, updated_at = now()`,
    [
      JSON.stringify(
        changes.map((c) => ({
          ...poolRow(c),
          kind: c.kind,
          fired: c.state.fired,
          crossings: c.state.crossings,
          month: c.state.month,
          month_requested: c.state.monthRequested.toString(),
        })),
      ),
    ],
  );
}

/** An alert as the outbox holds it; `event` is the exact JSON published. */
export interface QueuedAlert extends PoolKey {
  id: string;
  type: string;
  event: string;
  occurredAt: Date;
}

/** Adds alerts to the outbox; an id already there (raised before) is left alone. */
export async function queueAlerts(tx: SqlExecutor, alerts: readonly QueuedAlert[]): Promise<void> {
  if (alerts.length === 0) return;
  await tx.query(
    `INSERT INTO credits.alerts (tenant, id, type, customer_id, credit_type, resource_id, event, occurred_at)
     SELECT tenant, id, type, customer_id, credit_type, resource_id, event, occurred_at
     FROM json_to_recordset($1::json) AS a (tenant text, id text, type text, customer_id text,
       credit_type text, resource_id text, event text, occurred_at timestamptz)
     ORDER BY tenant, id
     ON CONFLICT (tenant, id) DO NOTHING`,
    [
      JSON.stringify(
        alerts.map((a) => ({
          ...poolRow(a),
          id: a.id,
          type: a.type,
          event: a.event,
          occurred_at: a.occurredAt.toISOString(),
        })),
      ),
    ],
  );
}

export async function unpublishedAlerts(
  sql: SqlExecutor,
  limit: number,
): Promise<{ tenant: string; id: string; event: string }[]> {
  const { rows } = await sql.query<{ tenant: string; id: string; event: string }>(
    `SELECT tenant, id, event FROM credits.alerts WHERE published_at IS NULL ORDER BY seq LIMIT $1`,
    [limit],
  );
  return rows;
}

export async function markPublished(
  sql: SqlExecutor,
  alerts: readonly { tenant: string; id: string }[],
): Promise<void> {
  if (alerts.length === 0) return;
  await sql.query(
    `UPDATE credits.alerts a SET published_at = now()
     FROM json_to_recordset($1::json) AS p (tenant text, id text)
     WHERE a.tenant = p.tenant AND a.id = p.id AND a.published_at IS NULL`,
    [JSON.stringify(alerts)],
  );
}

/** Forgets published alerts raised before `before`. */
export async function pruneAlerts(sql: SqlExecutor, before: Date): Promise<number> {
  const { rowCount } = await sql.query(
    'DELETE FROM credits.alerts WHERE published_at IS NOT NULL AND created_at < $1::timestamptz',
    [before],
  );
  return rowCount;
}

interface PoolRow {
  tenant: string;
  customer_id: string;
  credit_type: string;
  resource_id: string;
}

function poolRow(pool: PoolKey): PoolRow {
  return {
    tenant: pool.tenant,
    customer_id: pool.customerId,
    credit_type: pool.creditType,
    resource_id: pool.resourceId,
  };
}

function rowKey(row: PoolRow): string {
  return [row.tenant, row.customer_id, row.credit_type, row.resource_id].join('\u0000');
}
