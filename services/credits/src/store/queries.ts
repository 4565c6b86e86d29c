/**
 * Reads of the credits tables: balances and history for the routes, the hot state a Redis
 * rebuild starts from, and what the sweepers expire. Amounts are bigint micro-units; ledger
 * amounts are signed as described in `ledger.ts`.
 */
import type { SqlExecutor } from '@allot/kit/sql';
import {
  GRANT_COLUMNS,
  type GrantCategory,
  type GrantRecord,
  grantRecord,
  type HoldOutcome,
  type HoldStatus,
  type LedgerKind,
  type PoolMode,
} from './ledger.ts';

/**
 * Burn order (DESIGN.md): priority, then earliest expiry (never-expiring last), then promotional
 * before paid, then earliest effective, then earliest created; the id only makes it total.
 */
export const BURN_ORDER_SQL =
  "g.priority ASC, g.expires_at ASC NULLS LAST, (g.category = 'paid') ASC, g.effective_at ASC, g.created_at ASC, g.id ASC";

export interface GrantBalance {
  grantId: string;
  category: GrantCategory;
  priority: number;
  effectiveAt: Date;
  expiresAt: Date | null;
  createdAt: Date;
  costBasis: string | null;
  metadata: Record<string, unknown>;
  /** The grant's amount. */
  granted: bigint;
  /** What is left of it as the ledger knows it. */
  remaining: bigint;
}

export interface PoolBalance {
  creditType: string;
  /** '' when the pool has no resource. */
  resourceId: string;
  mode: PoolMode;
  /** Grants in effect now (not voided, not expired, effective), in burn order. */
  grants: GrantBalance[];
  /** Sum of `grants[].remaining`. */
  remaining: bigint;
  /** Sum of the active holds. */
  held: bigint;
  /** What a soft pool owes; paid off by the next grant. */
  overdraft: bigint;
  /** remaining - held - overdraft. */
  available: bigint;
}

interface GrantBalanceRow {
  id: string;
  credit_type: string;
  resource_id: string;
  category: GrantCategory;
  priority: number;
  effective_at: Date;
  expires_at: Date | null;
  created_at: Date;
  cost_basis: string | null;
  metadata: Record<string, unknown>;
  amount: string;
  remaining: string;
}

interface PoolRow {
  credit_type: string;
  resource_id: string;
  mode: PoolMode;
  overdraft: string;
  held: string;
}

const poolKey = (creditType: string, resourceId: string) => `${creditType}\u0000${resourceId}`;
const date = (value: Date | string): Date => new Date(value);
const dateOrNull = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

/**
 * Every pool of a customer with its grants in effect at `now`, in burn order. This is the
 * ledger's view: it trails the hot path by the worker's lag.
 */
export async function balances(
  sql: SqlExecutor,
  tenant: string,
  customerId: string,
  options: { now?: Date } = {},
): Promise<PoolBalance[]> {
  const now = options.now ?? new Date();
  const pools = await sql.query<PoolRow>(
    `${POOL_KEYS_SQL}
     SELECT k.credit_type, k.resource_id, coalesce(p.mode, 'hard') AS mode,
       coalesce(o.amount, 0) AS overdraft, coalesce(h.held, 0) AS held
     FROM keys k
     LEFT JOIN credits.pools p
       ON p.tenant = $1 AND p.customer_id = $2 AND p.credit_type = k.credit_type AND p.resource_id = k.resource_id
     LEFT JOIN credits.pool_overdrafts o
       ON o.tenant = $1 AND o.customer_id = $2 AND o.credit_type = k.credit_type AND o.resource_id = k.resource_id
     LEFT JOIN LATERAL (
       SELECT sum(amount) AS held FROM credits.holds
       WHERE tenant = $1 AND customer_id = $2 AND status = 'active'
         AND credit_type = k.credit_type AND resource_id = k.resource_id
     ) h ON true
     ORDER BY k.credit_type, k.resource_id`,
    [tenant, customerId],
  );
  const grants = await sql.query<GrantBalanceRow>(
    `SELECT g.id, g.credit_type, g.resource_id, g.category, g.priority, g.effective_at, g.expires_at,
       g.created_at, g.cost_basis, g.metadata, g.amount, coalesce(b.remaining, 0) AS remaining
     FROM credits.grants g
     LEFT JOIN credits.grant_balances b ON b.tenant = g.tenant AND b.grant_id = g.id
     WHERE g.tenant = $1 AND g.customer_id = $2 AND g.voided_at IS NULL AND g.expired_at IS NULL
       AND g.effective_at <= $3::timestamptz AND (g.expires_at IS NULL OR g.expires_at > $3::timestamptz)
     ORDER BY g.credit_type, g.resource_id, ${BURN_ORDER_SQL}`,
    [tenant, customerId, now],
  );
  const byPool = new Map<string, GrantBalance[]>();
  for (const row of grants.rows) {
    const key = poolKey(row.credit_type, row.resource_id);
    let list = byPool.get(key);
    if (!list) {
      list = [];
      byPool.set(key, list);
    }
    list.push({
      grantId: row.id,
      category: row.category,
      priority: row.priority,
      effectiveAt: date(row.effective_at),
      expiresAt: dateOrNull(row.expires_at),
      createdAt: date(row.created_at),
      costBasis: row.cost_basis,
      metadata: row.metadata,
      granted: BigInt(row.amount),
      remaining: BigInt(row.remaining),
    });
  }
  return pools.rows.map((pool) => {
    const poolGrants = byPool.get(poolKey(pool.credit_type, pool.resource_id)) ?? [];
    const remaining = poolGrants.reduce((sum, grant) => sum + grant.remaining, 0n);
    const held = BigInt(pool.held);
    const overdraft = BigInt(pool.overdraft);
    return {
      creditType: pool.credit_type,
      resourceId: pool.resource_id,
      mode: pool.mode,
      grants: poolGrants,
      remaining,
      held,
      overdraft,
      available: remaining - held - overdraft,
    };
  });
}

/** A customer's pools: configured ones, and any that only a grant or an overdraft names. */
const POOL_KEYS_SQL = `
WITH keys AS (
  SELECT credit_type, resource_id FROM credits.pools WHERE tenant = $1 AND customer_id = $2
  UNION
  SELECT credit_type, resource_id FROM credits.grants WHERE tenant = $1 AND customer_id = $2
  UNION
  SELECT credit_type, resource_id FROM credits.pool_overdrafts WHERE tenant = $1 AND customer_id = $2
)`;

// ---------------------------------------------------------------------------------------------
// History

export interface LedgerEntry {
  id: string;
  creditType: string;
  resourceId: string;
  kind: LedgerKind;
  /** Signed for grant, debit, expiry, void, adjustment; a positive magnitude for release and overage. */
  amount: bigint;
  grantId: string | null;
  holdId: string | null;
  eventId: string | null;
  /** When it happened (the hot path's time for events). */
  at: Date;
  /** When it reached the ledger. */
  recordedAt: Date;
}

export interface LedgerPage {
  entries: LedgerEntry[];
  /** Pass back as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

/** A cursor that this module did not hand out. */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

export const MAX_LEDGER_PAGE = 1000;

interface LedgerRow {
  seq: string;
  id: string;
  credit_type: string;
  resource_id: string;
  kind: LedgerKind;
  amount: string;
  grant_id: string | null;
  hold_id: string | null;
  event_id: string | null;
  at: Date;
  recorded_at: Date;
}

const LEDGER_COLUMNS =
  'l.seq, l.id, l.credit_type, l.resource_id, l.kind, l.amount, l.grant_id, l.hold_id, l.event_id, l.at, l.recorded_at';

/**
 * A customer's ledger, newest first, `limit` entries from `cursor` on. Keyset pagination on the
 * ledger's sequence, so a page costs the same at any depth and entries recorded meanwhile never
 * shift a page.
 */
export async function ledgerPage(
  sql: SqlExecutor,
  tenant: string,
  customerId: string,
  options: { creditType?: string; cursor?: string | null; limit: number },
): Promise<LedgerPage> {
  const { limit } = options;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LEDGER_PAGE) {
    throw new RangeError(`limit must be an integer from 1 to ${MAX_LEDGER_PAGE}, got ${limit}`);
  }
  const before = options.cursor ? decodeCursor(options.cursor) : null;
  const params = [tenant, customerId, before, limit + 1];
  // ledger_history is (tenant, customer, credit type, seq DESC): with a credit type it is one
  // index range; without, one range per credit type (found by skipping through the index),
  // merged here, rather than sorting the customer's whole history.
  const { rows } =
    options.creditType === undefined
      ? await sql.query<LedgerRow>(
          `WITH RECURSIVE types (credit_type) AS (
             SELECT min(credit_type) FROM credits.ledger WHERE tenant = $1 AND customer_id = $2
             UNION ALL
             SELECT (SELECT min(l.credit_type) FROM credits.ledger l
                     WHERE l.tenant = $1 AND l.customer_id = $2 AND l.credit_type > t.credit_type)
             FROM types t WHERE t.credit_type IS NOT NULL
           )
           SELECT page.* FROM types t CROSS JOIN LATERAL (
             SELECT ${LEDGER_COLUMNS} FROM credits.ledger l
             WHERE l.tenant = $1 AND l.customer_id = $2 AND l.credit_type = t.credit_type
               AND ($3::bigint IS NULL OR l.seq < $3::bigint)
             ORDER BY l.seq DESC LIMIT $4
           ) page
           WHERE t.credit_type IS NOT NULL
           ORDER BY page.seq DESC LIMIT $4`,
          params,
        )
      : await sql.query<LedgerRow>(
          `SELECT ${LEDGER_COLUMNS} FROM credits.ledger l
           WHERE l.tenant = $1 AND l.customer_id = $2 AND l.credit_type = $5
             AND ($3::bigint IS NULL OR l.seq < $3::bigint)
           ORDER BY l.seq DESC LIMIT $4`,
          [...params, options.creditType],
        );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    entries: page.map((row) => ({
      id: row.id,
      creditType: row.credit_type,
      resourceId: row.resource_id,
      kind: row.kind,
      amount: BigInt(row.amount),
      grantId: row.grant_id,
      holdId: row.hold_id,
      eventId: row.event_id,
      at: date(row.at),
      recordedAt: date(row.recorded_at),
    })),
    nextCursor: rows.length > limit && last ? encodeCursor(last.seq) : null,
  };
}

const CURSOR_PREFIX = 'l1.';

function encodeCursor(seq: string): string {
  return Buffer.from(`${CURSOR_PREFIX}${seq}`).toString('base64url');
}

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const seq = text.startsWith(CURSOR_PREFIX) ? text.slice(CURSOR_PREFIX.length) : '';
  if (!/^[1-9]\d{0,18}$/.test(seq))
    throw new InvalidCursorError(`invalid ledger cursor ${JSON.stringify(cursor)}`);
  return seq;
}

// ---------------------------------------------------------------------------------------------
// Rebuild

export interface HotGrant {
  grantId: string;
  remaining: bigint;
  priority: number;
  category: GrantCategory;
  effectiveAt: Date;
  expiresAt: Date | null;
  createdAt: Date;
}

export interface HotHold {
  holdId: string;
  amount: bigint;
  expiresAt: Date;
  idempotencyKey: string | null;
}

export interface RetiredGrant {
  grantId: string;
  kind: 'voided' | 'expired';
  /** What the void or expiry took off the grant. */
  amount: bigint;
  at: Date;
}

export interface HotPoolState {
  creditType: string;
  resourceId: string;
  mode: PoolMode;
  overdraft: bigint;
  /**
   * Grants no expiry or void has reached, in burn order, with remaining > 0 or an expiry still to
   * come (a depleted grant that expires must still be found by the expiry sweep); those not yet
   * effective and those past their expiry are included with their times.
   */
  grants: HotGrant[];
  /** Grants voided or expired, so that retiring one again answers as the first time. */
  retired: RetiredGrant[];
  /** Active holds, past their TTL or not: the hot path's sweeper expires those. */
  holds: HotHold[];
}

export interface FinishedHold {
  holdId: string;
  creditType: string;
  resourceId: string;
  status: Exclude<HoldStatus, 'active'>;
  /** The reserved amount. */
  amount: bigint;
  /** Debited by the settle (null unless settled). */
  settled: bigint | null;
  overage: bigint | null;
  /** What the settle or release answered, as its event said (null only for rows older than migration 002). */
  outcome: HoldOutcome | null;
  idempotencyKey: string | null;
  finishedAt: Date;
}

export interface CustomerHotState {
  tenant: string;
  customerId: string;
  pools: HotPoolState[];
  /** Holds finished within `finishedWithinMs`, so a retried settle or release answers as before. */
  finishedHolds: FinishedHold[];
}

export const DEFAULT_FINISHED_WITHIN_MS = 24 * 60 * 60 * 1000;

const HOLD_COLUMNS =
  'id, credit_type, resource_id, status, amount, expires_at, idempotency_key, settled, overage, outcome, finished_at';

/**
 * Everything a Redis rebuild of one customer needs, read in one transaction if `sql` is one.
 * It reflects the events the worker has applied: the caller adds what is still on the stream.
 */
export async function customerHotState(
  sql: SqlExecutor,
  tenant: string,
  customerId: string,
  options: { now?: Date; finishedWithinMs?: number } = {},
): Promise<CustomerHotState> {
  const now = options.now ?? new Date();
  const finishedSince = new Date(now.getTime() - (options.finishedWithinMs ?? DEFAULT_FINISHED_WITHIN_MS));
  const pools = await sql.query<Omit<PoolRow, 'held'>>(
    `${POOL_KEYS_SQL}
     SELECT k.credit_type, k.resource_id, coalesce(p.mode, 'hard') AS mode, coalesce(o.amount, 0) AS overdraft
     FROM keys k
     LEFT JOIN credits.pools p
       ON p.tenant = $1 AND p.customer_id = $2 AND p.credit_type = k.credit_type AND p.resource_id = k.resource_id
     LEFT JOIN credits.pool_overdrafts o
       ON o.tenant = $1 AND o.customer_id = $2 AND o.credit_type = k.credit_type AND o.resource_id = k.resource_id
     ORDER BY k.credit_type, k.resource_id`,
    [tenant, customerId],
  );
  const grants = await sql.query<
    Omit<GrantBalanceRow, 'cost_basis' | 'metadata' | 'amount'> & {
      voided_at: Date | null;
      expired_at: Date | null;
      retired_amount: string | null;
    }
  >(
    `SELECT g.id, g.credit_type, g.resource_id, g.category, g.priority, g.effective_at, g.expires_at,
       g.created_at, g.voided_at, g.expired_at, g.retired_amount, coalesce(b.remaining, 0) AS remaining
     FROM credits.grants g
     LEFT JOIN credits.grant_balances b ON b.tenant = g.tenant AND b.grant_id = g.id
     WHERE g.tenant = $1 AND g.customer_id = $2
       AND (g.voided_at IS NOT NULL OR g.expired_at IS NOT NULL OR b.remaining > 0 OR g.expires_at IS NOT NULL)
     ORDER BY g.credit_type, g.resource_id, ${BURN_ORDER_SQL}`,
    [tenant, customerId],
  );
  const holds = await sql.query<{
    id: string;
    credit_type: string;
    resource_id: string;
    status: HoldStatus;
    amount: string;
    expires_at: Date;
    idempotency_key: string | null;
    settled: string | null;
    overage: string | null;
    outcome: HoldOutcome | null;
    finished_at: Date | null;
  }>(
    `SELECT ${HOLD_COLUMNS} FROM credits.holds
     WHERE tenant = $1 AND customer_id = $2 AND status = 'active'
     UNION ALL
     SELECT ${HOLD_COLUMNS} FROM credits.holds
     WHERE tenant = $1 AND customer_id = $2 AND status <> 'active' AND finished_at >= $3::timestamptz
     ORDER BY id`,
    [tenant, customerId, finishedSince],
  );

  const state = new Map<string, HotPoolState>();
  for (const pool of pools.rows) {
    state.set(poolKey(pool.credit_type, pool.resource_id), {
      creditType: pool.credit_type,
      resourceId: pool.resource_id,
      mode: pool.mode,
      overdraft: BigInt(pool.overdraft),
      grants: [],
      retired: [],
      holds: [],
    });
  }
  const poolOf = (creditType: string, resourceId: string): HotPoolState => {
    const key = poolKey(creditType, resourceId);
    let pool = state.get(key);
    if (!pool) {
      // A hold on a pool nothing else names (no grant, no settings): a hard pool by default.
      pool = { creditType, resourceId, mode: 'hard', overdraft: 0n, grants: [], retired: [], holds: [] };
      state.set(key, pool);
    }
    return pool;
  };
  for (const row of grants.rows) {
    const pool = poolOf(row.credit_type, row.resource_id);
    const retiredAt = row.voided_at ?? row.expired_at;
    if (retiredAt !== null) {
      pool.retired.push({
        grantId: row.id,
        kind: row.voided_at === null ? 'expired' : 'voided',
        amount: BigInt(row.retired_amount ?? 0),
        at: date(retiredAt),
      });
      continue;
    }
    pool.grants.push({
      grantId: row.id,
      remaining: BigInt(row.remaining),
      priority: row.priority,
      category: row.category,
      effectiveAt: date(row.effective_at),
      expiresAt: dateOrNull(row.expires_at),
      createdAt: date(row.created_at),
    });
  }
  const finishedHolds: FinishedHold[] = [];
  for (const row of holds.rows) {
    if (row.status === 'active') {
      poolOf(row.credit_type, row.resource_id).holds.push({
        holdId: row.id,
        amount: BigInt(row.amount),
        expiresAt: date(row.expires_at),
        idempotencyKey: row.idempotency_key,
      });
    } else {
      finishedHolds.push({
        holdId: row.id,
        creditType: row.credit_type,
        resourceId: row.resource_id,
        status: row.status,
        amount: BigInt(row.amount),
        settled: row.settled === null ? null : BigInt(row.settled),
        overage: row.overage === null ? null : BigInt(row.overage),
        outcome: row.outcome,
        idempotencyKey: row.idempotency_key,
        finishedAt: date(row.finished_at ?? row.expires_at),
      });
    }
  }
  return { tenant, customerId, pools: [...state.values()], finishedHolds };
}

// ---------------------------------------------------------------------------------------------
// Sweepers

export interface DueGrantExpiry {
  tenant: string;
  grantId: string;
  customerId: string;
  creditType: string;
  resourceId: string;
  expiresAt: Date;
  /** As the ledger knows it; the hot path decides the amount the expiry event carries. */
  remaining: bigint;
}

/** Grants past their expiry that no `grant.expired` has reached yet (nor a void), earliest first, all tenants. */
export async function dueGrantExpiries(
  sql: SqlExecutor,
  now: Date,
  limit: number,
): Promise<DueGrantExpiry[]> {
  const { rows } = await sql.query<{
    tenant: string;
    id: string;
    customer_id: string;
    credit_type: string;
    resource_id: string;
    expires_at: Date;
    remaining: string | null;
  }>(
    `SELECT g.tenant, g.id, g.customer_id, g.credit_type, g.resource_id, g.expires_at, b.remaining
     FROM credits.grants g
     LEFT JOIN credits.grant_balances b ON b.tenant = g.tenant AND b.grant_id = g.id
     WHERE g.expired_at IS NULL AND g.voided_at IS NULL AND g.expires_at <= $1::timestamptz
     ORDER BY g.expires_at LIMIT $2`,
    [now, limit],
  );
  return rows.map((row) => ({
    tenant: row.tenant,
    grantId: row.id,
    customerId: row.customer_id,
    creditType: row.credit_type,
    resourceId: row.resource_id,
    expiresAt: date(row.expires_at),
    remaining: BigInt(row.remaining ?? 0),
  }));
}

export interface DueHoldExpiry {
  tenant: string;
  holdId: string;
  customerId: string;
  creditType: string;
  resourceId: string;
  amount: bigint;
  expiresAt: Date;
}

/** Active holds past their TTL, earliest first, all tenants. */
export async function dueHoldExpiries(sql: SqlExecutor, now: Date, limit: number): Promise<DueHoldExpiry[]> {
  const { rows } = await sql.query<{
    tenant: string;
    id: string;
    customer_id: string;
    credit_type: string;
    resource_id: string;
    amount: string;
    expires_at: Date;
  }>(
    `SELECT tenant, id, customer_id, credit_type, resource_id, amount, expires_at
     FROM credits.holds
     WHERE status = 'active' AND expires_at <= $1::timestamptz
     ORDER BY expires_at LIMIT $2`,
    [now, limit],
  );
  return rows.map((row) => ({
    tenant: row.tenant,
    holdId: row.id,
    customerId: row.customer_id,
    creditType: row.credit_type,
    resourceId: row.resource_id,
    amount: BigInt(row.amount),
    expiresAt: date(row.expires_at),
  }));
}

/**
 * Deletes up to `limit` holds that finished before `before`, oldest first; returns how many.
 * Their ledger entries stay: only the hold's own row (replays, rebuilds) goes.
 */
export async function pruneFinishedHolds(sql: SqlExecutor, before: Date, limit: number): Promise<number> {
  const { rows } = await sql.query(
    `WITH old AS (
       SELECT tenant, id FROM credits.holds
       WHERE status <> 'active' AND finished_at < $1::timestamptz
       ORDER BY finished_at LIMIT $2)
     DELETE FROM credits.holds h USING old WHERE h.tenant = old.tenant AND h.id = old.id
     RETURNING h.id`,
    [before, limit],
  );
  return rows.length;
}

/** One grant of a customer, or null. */
export async function findGrant(
  sql: SqlExecutor,
  tenant: string,
  customerId: string,
  grantId: string,
): Promise<GrantRecord | null> {
  const { rows } = await sql.query<Parameters<typeof grantRecord>[0]>(
    `SELECT ${GRANT_COLUMNS} FROM credits.grants WHERE tenant = $1 AND customer_id = $2 AND id = $3`,
    [tenant, customerId, grantId],
  );
  return rows[0] ? grantRecord(rows[0]) : null;
}
