/**
 * The governance record in PostgreSQL: the decision log (every decision, and the life of each
 * reservation) and the usage of every counter per window. Applied from the hot-path stream in
 * the worker's group commit, idempotently by record id, in any order.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseAmount } from '@allot/contracts/amount';
import { migrateConfig } from '@allot/kit/config-store';
import { migrate, type SqlExecutor, type SqlStore } from '@allot/kit/sql';
import type { GovernanceRecord, Part } from '../domain/records.ts';
import { parseCounterId } from '../domain/scope.ts';

export const governanceMigrations = fileURLToPath(new URL('../../migrations', import.meta.url));

/** The governance schema, and the configuration schema its alerts read budgets from. */
export async function migrateGovernance(sql: SqlStore): Promise<string[]> {
  await migrateConfig(sql);
  return migrate(sql, { schema: 'governance', dir: governanceMigrations });
}

const TIME = (column: string) =>
  `CASE WHEN ${column} IS NULL THEN NULL ELSE to_timestamp(${column} / 1000.0) END`;

/**
 * Applies a batch of records in the caller's transaction; returns how many were new and how
 * many budget alerts they raised.
 */
export async function applyRecords(
  tx: SqlExecutor,
  records: readonly GovernanceRecord[],
): Promise<{ applied: number; alerts: number }> {
  if (records.length === 0) return { applied: 0, alerts: 0 };
  const ids = [...new Map(records.map((r) => [`${r.tenant}\u0000${r.id}`, r])).values()];
  const { rows } = await tx.query<{ tenant: string; id: string }>(
    `INSERT INTO governance.applied (tenant, id)
     SELECT tenant, id FROM json_to_recordset($1::json) AS r (tenant text, id text)
     ON CONFLICT DO NOTHING RETURNING tenant, id`,
    [JSON.stringify(ids.map((r) => ({ tenant: r.tenant, id: r.id })))],
  );
  const fresh = new Set(rows.map((row) => `${row.tenant}\u0000${row.id}`));
  const apply = ids.filter((r) => fresh.has(`${r.tenant}\u0000${r.id}`));
  if (apply.length === 0) return { applied: 0, alerts: 0 };

  const decisions = [];
  const ends = [];
  const usage = new Map<
    string,
    {
      tenant: string;
      customer_id: string;
      counter_id: string;
      window_start: number;
      used: bigint;
      overage: bigint;
    }
  >();
  const addUsage = (
    tenant: string,
    customerId: string,
    counterId: string,
    windowStart: number,
    amount: bigint,
    overage = 0n,
  ) => {
    const key = `${tenant}\u0000${customerId}\u0000${counterId}\u0000${windowStart}`;
    const row = usage.get(key);
    if (row) {
      row.used += amount;
      row.overage += overage;
    } else {
      usage.set(key, {
        tenant,
        customer_id: customerId,
        counter_id: counterId,
        window_start: windowStart,
        used: amount,
        overage,
      });
    }
  };
  for (const r of apply) {
    if (r.type === 'decision') {
      decisions.push({
        tenant: r.tenant,
        id: r.decisionId,
        customer_id: r.customerId,
        at: r.at,
        feature: r.feature,
        units: r.units,
        dimensions: r.dimensions,
        decision: r.decision,
        reason: r.reason,
        decided_by: r.decidedBy,
        cost: r.cost,
        credit_type: r.creditType,
        resource_id: r.resourceId,
        idempotency_key: r.idempotencyKey,
        request_hash: r.requestHash,
        expires_at: r.expiresAt,
        parts: r.parts,
        answer: r.answer,
        status: r.decision === 'allow' ? 'active' : null,
      });
      for (const p of r.parts) {
        if (p[1] === 'r') addUsage(r.tenant, r.customerId, p[0], windowOf(p, r.at), BigInt(p[2]));
      }
    } else if (r.type === 'settled') {
      ends.push({
        tenant: r.tenant,
        id: r.reservationId,
        customer_id: r.customerId,
        status: 'settled',
        at: r.at,
        settled_units: r.units,
        settled_cost: r.cost,
        settle_answer: r.answer,
      });
      for (const [counterId, amount, windowStart, , overage] of r.used) {
        addUsage(r.tenant, r.customerId, counterId, windowStart, BigInt(amount), BigInt(overage));
      }
    } else {
      ends.push({
        tenant: r.tenant,
        id: r.reservationId,
        customer_id: r.customerId,
        status: r.reason,
        at: r.at,
        settled_units: null,
        settled_cost: null,
        settle_answer: null,
      });
    }
  }
  if (decisions.length > 0) {
    await tx.query(
      `INSERT INTO governance.decisions AS d
         (tenant, id, customer_id, at, feature, units, dimensions, decision, reason, decided_by, cost,
          credit_type, resource_id, idempotency_key, request_hash, expires_at, parts, answer, status)
       SELECT tenant, id, customer_id, ${TIME('at')}, feature, units, dimensions, decision, reason, decided_by,
         cost, credit_type, resource_id, idempotency_key, request_hash, ${TIME('expires_at')}, parts, answer, status
       FROM json_to_recordset($1::json) AS r (tenant text, id text, customer_id text, at bigint, feature text,
         units bigint, dimensions jsonb, decision text, reason text, decided_by text, cost bigint,
         credit_type text, resource_id text, idempotency_key text, request_hash text, expires_at bigint, parts jsonb,
         answer jsonb, status text)
       ON CONFLICT (tenant, id) DO UPDATE SET
         at = excluded.at, feature = excluded.feature, units = excluded.units, dimensions = excluded.dimensions,
         decision = excluded.decision, reason = excluded.reason, decided_by = excluded.decided_by,
         cost = excluded.cost, credit_type = excluded.credit_type, resource_id = excluded.resource_id,
         idempotency_key = excluded.idempotency_key, request_hash = excluded.request_hash,
         expires_at = excluded.expires_at,
         parts = excluded.parts, answer = excluded.answer
       WHERE d.feature IS NULL`,
      [JSON.stringify(decisions)],
    );
  }
  if (ends.length > 0) {
    // A placeholder when the end overtook its decision; never back from an end to active.
    await tx.query(
      `INSERT INTO governance.decisions AS d
         (tenant, id, customer_id, status, finished_at, settled_units, settled_cost, settle_answer)
       SELECT tenant, id, customer_id, status, ${TIME('at')}, settled_units, settled_cost, settle_answer
       FROM json_to_recordset($1::json) AS r (tenant text, id text, customer_id text, status text, at bigint,
         settled_units bigint, settled_cost bigint, settle_answer jsonb)
       ON CONFLICT (tenant, id) DO UPDATE SET
         status = CASE WHEN d.status = 'settled' THEN d.status ELSE excluded.status END,
         finished_at = coalesce(d.finished_at, excluded.finished_at),
         settled_units = coalesce(excluded.settled_units, d.settled_units),
         settled_cost = coalesce(excluded.settled_cost, d.settled_cost),
         settle_answer = coalesce(excluded.settle_answer, d.settle_answer)`,
      [JSON.stringify(ends)],
    );
  }
  let alerts = 0;
  if (usage.size > 0) {
    const { rows: totals } = await tx.query<UsageTotal>(
      `INSERT INTO governance.usage AS u (tenant, customer_id, counter_id, window_start, used, overage)
       SELECT tenant, customer_id, counter_id, window_start, used, overage
       FROM json_to_recordset($1::json) AS r (tenant text, customer_id text, counter_id text, window_start bigint,
         used bigint, overage bigint)
       ORDER BY tenant, customer_id, counter_id, window_start
       ON CONFLICT (tenant, customer_id, counter_id, window_start)
       DO UPDATE SET used = u.used + excluded.used, overage = u.overage + excluded.overage, updated_at = now()
       RETURNING tenant, customer_id, counter_id, window_start, used`,
      [
        JSON.stringify(
          [...usage.values()].map((row) => ({
            ...row,
            used: row.used.toString(),
            overage: row.overage.toString(),
          })),
        ),
      ],
    );
    alerts = await queueBudgetAlerts(
      tx,
      totals.map((t) => {
        const delta =
          usage.get(`${t.tenant}\u0000${t.customer_id}\u0000${t.counter_id}\u0000${t.window_start}`)?.used ??
          0n;
        return { ...t, used: BigInt(t.used), before: BigInt(t.used) - delta };
      }),
    );
  }
  return { applied: apply.length, alerts };
}

interface UsageTotal {
  tenant: string;
  customer_id: string;
  counter_id: string;
  window_start: string;
  used: string;
}

/**
 * The thresholds the usage just applied crossed, for calendar and lifetime budgets (a rolling
 * window has no period to alert once in), queued once per counter, period and threshold.
 */
async function queueBudgetAlerts(
  tx: SqlExecutor,
  totals: readonly (Omit<UsageTotal, 'used'> & { used: bigint; before: bigint })[],
): Promise<number> {
  const budgetIds = new Map<string, { tenant: string; id: string }>();
  for (const t of totals) {
    const id = parseCounterId(t.counter_id).budgetId;
    budgetIds.set(`${t.tenant}\u0000${id}`, { tenant: t.tenant, id });
  }
  const { rows: docs } = await tx.query<{ tenant: string; id: string; body: Record<string, unknown> }>(
    `SELECT d.tenant, d.id, d.body FROM config.documents d
     JOIN json_to_recordset($1::json) AS b (tenant text, id text) ON d.tenant = b.tenant AND d.id = b.id
     WHERE d.kind = 'budget' AND NOT d.deleted`,
    [JSON.stringify([...budgetIds.values()])],
  );
  const budgets = new Map(docs.map((d) => [`${d.tenant}\u0000${d.id}`, d.body]));
  const alerts = [];
  for (const t of totals) {
    const budgetId = parseCounterId(t.counter_id).budgetId;
    const body = budgets.get(`${t.tenant}\u0000${budgetId}`);
    if (!body || (body.kind ?? 'budget') !== 'budget' || String(body.period).startsWith('rolling:')) continue;
    let limit: bigint;
    try {
      limit = parseAmount(String(body.limit));
    } catch {
      continue;
    }
    if (limit <= 0n) continue;
    for (const threshold of (body.alerts as number[] | undefined) ?? []) {
      // used >= threshold * limit, in integers: threshold has at most 6 fractional digits here.
      const mark = (limit * BigInt(Math.round(threshold * 1_000_000))) / 1_000_000n;
      if (t.before < mark && t.used >= mark) {
        alerts.push({
          tenant: t.tenant,
          id: `${budgetId}:${createHash('sha256').update(`${t.counter_id}\u0000${t.window_start}\u0000${threshold}`).digest('base64url').slice(0, 22)}`,
          budget_id: budgetId,
          customer_id: t.customer_id,
          counter_id: t.counter_id,
          window_start: t.window_start,
          threshold,
          used: t.used.toString(),
          limit: limit.toString(),
        });
      }
    }
  }
  if (alerts.length === 0) return 0;
  const { rows } = await tx.query(
    `INSERT INTO governance.alerts (tenant, id, budget_id, customer_id, counter_id, window_start, threshold, used, "limit")
     SELECT tenant, id, budget_id, customer_id, counter_id, window_start, threshold, used, "limit"
     FROM json_to_recordset($1::json) AS r (tenant text, id text, budget_id text, customer_id text, counter_id text,
       window_start bigint, threshold numeric, used bigint, "limit" bigint)
     ON CONFLICT DO NOTHING RETURNING id`,
    [JSON.stringify(alerts)],
  );
  return rows.length;
}

/** The window (calendar) or bucket (rolling) an allowed decision's rate part counted in. */
function windowOf(p: Part, at: number): number {
  const [, , , ws, rms, bms] = p;
  return rms > 0 ? Math.floor(at / bms) * bms : ws;
}

/** What a rebuild of one customer's governance hot state needs from PostgreSQL. */
export interface GovernanceSnapshot {
  reservations: {
    id: string;
    parts: Part[];
    expiresAt: number;
    credit: boolean;
    units: bigint;
    cost: bigint;
    dimensions: unknown;
  }[];
  /** Usage per counter and window start, for windows starting at or after `since`. */
  usage: { counterId: string; windowStart: number; used: bigint }[];
  /** Recent decisions with an idempotency key and their answers, for replays. */
  replays: { idempotencyKey: string; hash: string; answer: unknown }[];
}

export async function governanceSnapshot(
  sql: SqlExecutor,
  tenant: string,
  customerId: string,
  options: { usageSince: number; replaySince: number },
): Promise<GovernanceSnapshot> {
  const reservations = await sql.query<{
    id: string;
    parts: Part[];
    expires_at: Date;
    cost: string | null;
    credit_type: string | null;
    units: string;
    dimensions: unknown;
  }>(
    `SELECT id, parts, expires_at, cost, credit_type, units, dimensions FROM governance.decisions
     WHERE tenant = $1 AND customer_id = $2 AND status = 'active' AND feature IS NOT NULL`,
    [tenant, customerId],
  );
  const usage = await sql.query<{ counter_id: string; window_start: string; used: string }>(
    `SELECT counter_id, window_start, used FROM governance.usage
     WHERE tenant = $1 AND customer_id = $2 AND window_start >= $3`,
    [tenant, customerId, options.usageSince],
  );
  const replays = await sql.query<{ idempotency_key: string; request_hash: string | null; answer: unknown }>(
    `SELECT idempotency_key, request_hash, answer FROM governance.decisions
     WHERE tenant = $1 AND customer_id = $2 AND idempotency_key IS NOT NULL AND answer IS NOT NULL
       AND at >= to_timestamp($3 / 1000.0)`,
    [tenant, customerId, options.replaySince],
  );
  return {
    reservations: reservations.rows.map((row) => ({
      id: row.id,
      parts: row.parts,
      expiresAt: new Date(row.expires_at).getTime(),
      credit: row.credit_type !== null,
      units: BigInt(row.units),
      cost: BigInt(row.cost ?? '0'),
      dimensions: row.dimensions,
    })),
    usage: usage.rows.map((row) => ({
      counterId: row.counter_id,
      windowStart: Number(row.window_start),
      used: BigInt(row.used),
    })),
    replays: replays.rows.map((row) => ({
      idempotencyKey: row.idempotency_key,
      hash: row.request_hash ?? '',
      answer: row.answer,
    })),
  };
}
