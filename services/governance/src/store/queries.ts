/**
 * Reads for the governance routes: a budget's live counters (from the hot state, the counter
 * ids from PostgreSQL for budgets that count each value of a dimension on its own), and the
 * decision log.
 */
import type { HotScript, HotState } from '@allot/kit/hot';
import type { SqlExecutor } from '@allot/kit/sql';
import type { LimitSpec } from '../domain/limits.ts';
import { rollingBucketMs, type WindowClock } from '../domain/periods.ts';
import { parseCounterId } from '../domain/scope.ts';
import { governanceLua } from './hot-lua.ts';
import { governanceKeys } from './hot-state.ts';

const statusScript: HotScript = {
  name: 'governance.status',
  lua: `${governanceLua}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ws, rms, bms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV do
  local used, held = counter_used(ARGV[i], now, ws, rms, bms)
  out[#out + 1] = { fmt(used), fmt(held) }
end
return out
`,
};

export interface CounterStatus {
  /** The values the budget's `*` dimensions took for this counter. */
  values: Record<string, string>;
  used: bigint;
  held: bigint;
}

/** Every counter of a budget, as the hot state has it now (at most `limit`). */
export async function budgetCounters(
  deps: { hot: HotState; sql: SqlExecutor; windows: WindowClock },
  tenant: string,
  customerId: string,
  spec: LimitSpec,
  limit = 1000,
): Promise<{ window: { start: number; end: number } | null; counters: CounterStatus[] }> {
  const now = Date.now();
  const rolling = spec.period.kind === 'rolling' ? spec.period.ms : 0;
  const window = rolling > 0 ? null : deps.windows.window(spec.period, spec.timeZone, now);
  let ids = [spec.id];
  if (Object.values(spec.scope).includes('*')) {
    const since = window ? window.start : now - rolling;
    const prefix = `${spec.id}\u001f`;
    const { rows } = await deps.sql.query<{ counter_id: string }>(
      `SELECT counter_id FROM (
         SELECT counter_id FROM governance.usage
         WHERE tenant = $1 AND customer_id = $2 AND starts_with(counter_id, $3) AND window_start >= $4
         UNION
         SELECT p->>0 AS counter_id FROM governance.decisions d, jsonb_array_elements(d.parts) p
         WHERE d.tenant = $1 AND d.customer_id = $2 AND d.status = 'active' AND starts_with(p->>0, $3)
       ) c ORDER BY counter_id LIMIT $5`,
      [tenant, customerId, prefix, since, limit],
    );
    ids = rows.map((row) => row.counter_id);
  }
  if (ids.length === 0) return { window, counters: [] };
  const keys = governanceKeys(tenant, customerId);
  // The counters sit at KEYS[8], after the six keys a decision script gives the credit pool.
  const scriptKeys = [...Array.from({ length: 6 }, () => keys[0]!), ...keys];
  const bms = rolling > 0 ? rollingBucketMs(rolling) : 0;
  const reply = (await deps.hot.run(statusScript, scriptKeys, [
    String(window?.start ?? 0),
    String(rolling),
    String(bms),
    ...ids,
  ])) as [string, string][];
  return {
    window,
    counters: ids.map((cid, i) => ({
      values: parseCounterId(cid).values,
      used: BigInt(reply[i]?.[0] ?? '0'),
      held: BigInt(reply[i]?.[1] ?? '0'),
    })),
  };
}

export interface DecisionRow {
  id: string;
  customerId: string;
  at: Date | null;
  feature: string | null;
  units: bigint | null;
  dimensions: Record<string, string> | null;
  decision: 'allow' | 'deny' | null;
  reason: string | null;
  decidedBy: string | null;
  cost: bigint | null;
  creditType: string | null;
  status: string | null;
  settledCost: bigint | null;
  finishedAt: Date | null;
  expiresAt: Date | null;
}

interface Row {
  id: string;
  customer_id: string;
  at: Date | null;
  feature: string | null;
  units: string | null;
  dimensions: Record<string, string> | null;
  decision: 'allow' | 'deny' | null;
  reason: string | null;
  decided_by: string | null;
  cost: string | null;
  credit_type: string | null;
  status: string | null;
  settled_cost: string | null;
  finished_at: Date | null;
  expires_at: Date | null;
}

const big = (v: string | null) => (v === null ? null : BigInt(v));
const date = (v: Date | null) => (v === null ? null : new Date(v));

function toDecision(row: Row): DecisionRow {
  return {
    id: row.id,
    customerId: row.customer_id,
    at: date(row.at),
    feature: row.feature,
    units: big(row.units),
    dimensions: row.dimensions,
    decision: row.decision,
    reason: row.reason,
    decidedBy: row.decided_by,
    cost: big(row.cost),
    creditType: row.credit_type,
    status: row.status,
    settledCost: big(row.settled_cost),
    finishedAt: date(row.finished_at),
    expiresAt: date(row.expires_at),
  };
}

const COLUMNS = `id, customer_id, at, feature, units, dimensions, decision, reason, decided_by, cost,
  credit_type, status, settled_cost, finished_at, expires_at`;

export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

/** The decision log, newest first, keyset-paginated by (at, id). */
export async function decisionPage(
  sql: SqlExecutor,
  tenant: string,
  filter: {
    customerId?: string;
    decision?: 'allow' | 'deny';
    reason?: string;
    feature?: string;
    from?: Date;
    to?: Date;
    cursor?: string;
    limit: number;
  },
): Promise<{ decisions: DecisionRow[]; nextCursor: string | null }> {
  const where = ['tenant = $1', 'feature IS NOT NULL'];
  const params: unknown[] = [tenant];
  const add = (clause: string, value: unknown) => {
    params.push(value);
    where.push(clause.replace('?', `$${params.length}`));
  };
  if (filter.customerId) add('customer_id = ?', filter.customerId);
  if (filter.decision) add('decision = ?', filter.decision);
  if (filter.reason) add('reason = ?', filter.reason);
  if (filter.feature) add('feature = ?', filter.feature);
  if (filter.from) add('at >= ?', filter.from);
  if (filter.to) add('at < ?', filter.to);
  if (filter.cursor) {
    let at: string;
    let id: string;
    try {
      [at, id] = JSON.parse(Buffer.from(filter.cursor, 'base64url').toString('utf8')) as [string, string];
      if (typeof at !== 'string' || typeof id !== 'string' || Number.isNaN(Date.parse(at))) throw new Error();
    } catch {
      throw new InvalidCursorError('not a cursor this API handed out');
    }
    params.push(at, id);
    where.push(`(at, id) < ($${params.length - 1}::timestamptz, $${params.length})`);
  }
  params.push(filter.limit + 1);
  const { rows } = await sql.query<Row>(
    `SELECT ${COLUMNS} FROM governance.decisions WHERE ${where.join(' AND ')}
     ORDER BY at DESC, id DESC LIMIT $${params.length}`,
    params as never[],
  );
  const page = rows.slice(0, filter.limit).map(toDecision);
  const last = page[page.length - 1];
  const nextCursor =
    rows.length > filter.limit && last?.at
      ? Buffer.from(JSON.stringify([last.at.toISOString(), last.id])).toString('base64url')
      : null;
  return { decisions: page, nextCursor };
}

export async function findDecision(
  sql: SqlExecutor,
  tenant: string,
  id: string,
): Promise<DecisionRow | null> {
  const { rows } = await sql.query<Row>(
    `SELECT ${COLUMNS} FROM governance.decisions WHERE tenant = $1 AND id = $2 AND feature IS NOT NULL`,
    [tenant, id],
  );
  return rows[0] ? toDecision(rows[0]) : null;
}
