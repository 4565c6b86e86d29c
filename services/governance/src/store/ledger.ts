/**
 * The governance record in PostgreSQL: the decision log (every decision, and the life of each
 * reservation) and the usage of every counter per window. Applied from the hot-path stream in
 * the worker's group commit, idempotently by record id, in any order.
 */
import { fileURLToPath } from 'node:url';
import { migrate, type SqlExecutor, type SqlStore } from '@allot/kit/sql';
import type { GovernanceRecord, Part } from '../domain/records.ts';

export const governanceMigrations = fileURLToPath(new URL('../../migrations', import.meta.url));

export function migrateGovernance(sql: SqlStore): Promise<string[]> {
  return migrate(sql, { schema: 'governance', dir: governanceMigrations });
}

const TIME = (column: string) =>
  `CASE WHEN ${column} IS NULL THEN NULL ELSE to_timestamp(${column} / 1000.0) END`;

/** Applies a batch of records in the caller's transaction; returns how many were new. */
export async function applyRecords(tx: SqlExecutor, records: readonly GovernanceRecord[]): Promise<number> {
  if (records.length === 0) return 0;
  const ids = [...new Map(records.map((r) => [`${r.tenant}\u0000${r.id}`, r])).values()];
  const { rows } = await tx.query<{ tenant: string; id: string }>(
    `INSERT INTO governance.applied (tenant, id)
     SELECT tenant, id FROM json_to_recordset($1::json) AS r (tenant text, id text)
     ON CONFLICT DO NOTHING RETURNING tenant, id`,
    [JSON.stringify(ids.map((r) => ({ tenant: r.tenant, id: r.id })))],
  );
  const fresh = new Set(rows.map((row) => `${row.tenant}\u0000${row.id}`));
  const apply = ids.filter((r) => fresh.has(`${r.tenant}\u0000${r.id}`));
  if (apply.length === 0) return 0;

  const decisions = [];
  const ends = [];
  const usage = new Map<
    string,
    { tenant: string; customer_id: string; counter_id: string; window_start: number; used: bigint }
  >();
  const addUsage = (
    tenant: string,
    customerId: string,
    counterId: string,
    windowStart: number,
    amount: bigint,
  ) => {
    const key = `${tenant}\u0000${customerId}\u0000${counterId}\u0000${windowStart}`;
    const row = usage.get(key);
    if (row) row.used += amount;
    else
      usage.set(key, {
        tenant,
        customer_id: customerId,
        counter_id: counterId,
        window_start: windowStart,
        used: amount,
      });
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
      for (const [counterId, amount, windowStart] of r.used) {
        addUsage(r.tenant, r.customerId, counterId, windowStart, BigInt(amount));
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
  if (usage.size > 0) {
    await tx.query(
      `INSERT INTO governance.usage AS u (tenant, customer_id, counter_id, window_start, used)
       SELECT tenant, customer_id, counter_id, window_start, used
       FROM json_to_recordset($1::json) AS r (tenant text, customer_id text, counter_id text, window_start bigint, used bigint)
       ORDER BY tenant, customer_id, counter_id, window_start
       ON CONFLICT (tenant, customer_id, counter_id, window_start)
       DO UPDATE SET used = u.used + excluded.used, updated_at = now()`,
      [JSON.stringify([...usage.values()].map((row) => ({ ...row, used: row.used.toString() })))],
    );
  }
  return apply.length;
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
