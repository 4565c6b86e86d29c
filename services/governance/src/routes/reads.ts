/**
 * `GET /v1/budgets/{id}/status`: every counter of a budget, live from the hot state.
 * `GET /v1/decisions` and `/v1/decisions/{id}`: the decision log, why each was allowed or
 * denied and which limit or balance decided it.
 */
import { config, id, timestamp } from '@allot/contracts';
import { formatAmount, parseAmount } from '@allot/contracts/amount';
import { type AllotApp, AppError, tenantOf } from '@allot/kit';
import type { ConfigReplica } from '@allot/kit/config-store';
import type { HotState } from '@allot/kit/hot';
import type { SqlStore } from '@allot/kit/sql';
import { z } from 'zod';
import { budgetSpec } from '../domain/limits.ts';
import type { WindowClock } from '../domain/periods.ts';
import { parseCounterId } from '../domain/scope.ts';
import {
  budgetCounters,
  type DecisionRow,
  decisionPage,
  findDecision,
  InvalidCursorError,
} from '../store/queries.ts';

export interface GovernanceReadRoutesOptions {
  sql: SqlStore;
  hot: HotState;
  replica: ConfigReplica;
  windows: WindowClock;
}

const counterView = z.object({
  scope: z.record(z.string(), z.string()).describe('the scope with * filled in'),
  period: z
    .object({ start: z.string(), end: z.string() })
    .nullable()
    .describe('the calendar period now; null for a rolling window or one that never resets'),
  limit: z.string(),
  used: z.string().describe('settled in the period (a rate limit: counted when allowed)'),
  held: z.string().describe('reserved and not yet settled (a concurrency limit: in flight)'),
  remaining: z.string(),
});

const decisionView = z.object({
  decisionId: z.string(),
  customerId: z.string(),
  at: z.string().nullable(),
  feature: z.string().nullable(),
  units: z.string().nullable(),
  dimensions: z.record(z.string(), z.string()).nullable(),
  decision: z.enum(['allow', 'deny']).nullable(),
  reason: z.string().nullable(),
  decidedBy: z.string().nullable(),
  cost: z.string().nullable(),
  creditType: z.string().nullable(),
  reservation: z
    .object({
      status: z.string().nullable(),
      expiresAt: z.string().nullable(),
      settledCost: z.string().nullable(),
      finishedAt: z.string().nullable(),
    })
    .nullable(),
});

export function governanceReadRoutes(app: AllotApp, options: GovernanceReadRoutesOptions): void {
  const { sql, hot, replica, windows } = options;
  const iso = (d: Date | null) => (d === null ? null : d.toISOString());
  const amount = (v: bigint | null) => (v === null ? null : formatAmount(v));
  const show = (d: DecisionRow): z.infer<typeof decisionView> => ({
    decisionId: d.id,
    customerId: d.customerId,
    at: iso(d.at),
    feature: d.feature,
    units: amount(d.units),
    dimensions: d.dimensions,
    decision: d.decision,
    reason: d.reason,
    decidedBy: d.decidedBy,
    cost: amount(d.cost),
    creditType: d.creditType,
    reservation:
      d.decision === 'allow'
        ? {
            status: d.status,
            expiresAt: iso(d.expiresAt),
            settledCost: amount(d.settledCost),
            finishedAt: iso(d.finishedAt),
          }
        : null,
  });

  app.get(
    '/v1/budgets/:budgetId/status',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['governance'],
        summary: 'A budget or limit now: each counter with its limit, used, held and remaining',
        params: z.object({ budgetId: id }),
        response: {
          200: z.object({
            budgetId: z.string(),
            customerId: z.string(),
            kind: z.string(),
            metric: z.string(),
            mode: z.string(),
            counters: z.array(counterView),
          }),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const doc = replica.get(tenant, 'budget', request.params.budgetId);
      const parsed = doc ? config.budgetBody.safeParse(doc.body) : undefined;
      if (!parsed?.success) throw new AppError('not_found', `budget ${request.params.budgetId} not found`);
      const body = parsed.data;
      const spec = budgetSpec(request.params.budgetId, { ...body, limit: parseAmount(body.limit) });
      const { window, counters } = await budgetCounters(
        { hot, sql, windows },
        tenant,
        body.customerId,
        spec,
      ).catch((error: unknown) => {
        throw new AppError('unavailable', `budget status unavailable: ${(error as Error).message}`);
      });
      return {
        budgetId: spec.id,
        customerId: body.customerId,
        kind: spec.kind,
        metric: body.metric,
        mode: spec.mode,
        counters: counters.map((c) => {
          const inUse =
            spec.kind === 'concurrency' ? c.held : spec.kind === 'rate' ? c.used : c.used + c.held;
          return {
            scope: { ...spec.scope, ...c.values },
            period:
              window && window.end < Number.MAX_SAFE_INTEGER
                ? { start: new Date(window.start).toISOString(), end: new Date(window.end).toISOString() }
                : null,
            limit: formatAmount(spec.limit),
            used: formatAmount(c.used),
            held: formatAmount(c.held),
            remaining: formatAmount(spec.limit > inUse ? spec.limit - inUse : 0n),
          };
        }),
      };
    },
  );

  app.get(
    '/v1/budgets/:budgetId/history',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['governance'],
        summary: "A budget's burn over time: what each counter used per period (or rolling bucket)",
        params: z.object({ budgetId: id }),
        querystring: z.object({ from: timestamp.optional(), to: timestamp.optional() }),
        response: {
          200: z.object({
            budgetId: z.string(),
            points: z.array(
              z.object({
                windowStart: z.string(),
                scope: z.record(z.string(), z.string()),
                used: z.string(),
                overage: z.string(),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const doc = replica.get(tenant, 'budget', request.params.budgetId);
      const parsed = doc ? config.budgetBody.safeParse(doc.body) : undefined;
      if (!parsed?.success) throw new AppError('not_found', `budget ${request.params.budgetId} not found`);
      const to = request.query.to ? Date.parse(request.query.to) : Date.now() + 1;
      const from = request.query.from ? Date.parse(request.query.from) : to - 90 * 86_400_000;
      const { rows } = await sql.query<{
        counter_id: string;
        window_start: string;
        used: string;
        overage: string;
      }>(
        `SELECT counter_id, window_start, used, overage FROM governance.usage
         WHERE tenant = $1 AND customer_id = $2 AND (counter_id = $3 OR starts_with(counter_id, $3 || chr(31)))
           AND window_start >= $4 AND window_start < $5
         ORDER BY window_start, counter_id LIMIT 5000`,
        [tenant, parsed.data.customerId, request.params.budgetId, from, to],
      );
      return {
        budgetId: request.params.budgetId,
        points: rows.map((r) => ({
          windowStart: new Date(Number(r.window_start)).toISOString(),
          scope: { ...parsed.data.scope, ...parseCounterId(r.counter_id).values },
          used: formatAmount(BigInt(r.used)),
          overage: formatAmount(BigInt(r.overage)),
        })),
      };
    },
  );

  app.get(
    '/v1/decisions',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['decisions'],
        summary: 'The decision log, newest first',
        querystring: z.object({
          customerId: id.optional(),
          decision: z.enum(['allow', 'deny']).optional(),
          reason: z.string().max(64).optional(),
          feature: id.optional(),
          from: timestamp.optional(),
          to: timestamp.optional(),
          cursor: z.string().max(500).optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
        response: { 200: z.object({ decisions: z.array(decisionView), nextCursor: z.string().nullable() }) },
      },
    },
    async (request) => {
      const q = request.query;
      try {
        const page = await decisionPage(sql, tenantOf(request), {
          ...(q.customerId ? { customerId: q.customerId } : {}),
          ...(q.decision ? { decision: q.decision } : {}),
          ...(q.reason ? { reason: q.reason } : {}),
          ...(q.feature ? { feature: q.feature } : {}),
          ...(q.from ? { from: new Date(q.from) } : {}),
          ...(q.to ? { to: new Date(q.to) } : {}),
          ...(q.cursor ? { cursor: q.cursor } : {}),
          limit: q.limit,
        });
        return { decisions: page.decisions.map(show), nextCursor: page.nextCursor };
      } catch (error) {
        if (error instanceof InvalidCursorError)
          throw new AppError('invalid_request', `query.cursor: ${error.message}`);
        throw error;
      }
    },
  );

  app.get(
    '/v1/decisions/:decisionId',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['decisions'],
        summary: 'One decision: what was asked, what was decided and why',
        params: z.object({ decisionId: z.string().min(1).max(1024) }),
        response: { 200: decisionView },
      },
    },
    async (request) => {
      const found = await findDecision(sql, tenantOf(request), request.params.decisionId);
      if (!found) throw new AppError('not_found', `decision ${request.params.decisionId} not found`);
      return show(found);
    },
  );
}
