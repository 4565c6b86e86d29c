import { credits, id } from '@allot/contracts';
import type { AllotApp } from '@allot/kit';
import { z } from 'zod';
import { formatAmount } from '../domain/amount.ts';
import { balances } from '../store/queries.ts';
import { type CreditsRoutesOptions, iso, tenantOf } from './context.ts';

/**
 * `GET /v1/customers/{id}/balances`: per pool, what a reservation may take now. Grants and
 * their order come from the ledger; remaining, held and available come from the hot state
 * the gate decides on, so the answer is current even while the ledger trails by a moment.
 */
export function balanceRoutes(app: AllotApp, { sql, engine }: CreditsRoutesOptions): void {
  app.get(
    '/v1/customers/:customerId/balances',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['credits'],
        summary: 'Balances per credit type',
        params: z.object({ customerId: id }),
        querystring: z.object({ creditType: id.optional() }),
        response: { 200: z.object({ customerId: z.string(), balances: z.array(credits.balance) }) },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const { customerId } = request.params;
      const pools = await balances(sql, tenant, customerId);
      const views = await Promise.all(
        pools
          .filter((pool) => !request.query.creditType || pool.creditType === request.query.creditType)
          .map(async (pool) => {
            const live = await engine.poolStatus({
              tenant,
              customerId,
              creditType: pool.creditType,
              resourceId: pool.resourceId,
            });
            // A grant the hot path does not hold (voided, expired, not yet spendable) has nothing to
            // spend, whatever the trailing ledger still says.
            const remainingOf = (grantId: string, ledger: bigint) =>
              live ? (live.remaining.get(grantId) ?? 0n) : ledger;
            const grants = pool.grants.map((g) => ({
              grantId: g.grantId,
              category: g.category,
              priority: g.priority,
              effectiveAt: g.effectiveAt.toISOString(),
              expiresAt: iso(g.expiresAt),
              granted: formatAmount(g.granted),
              remaining: formatAmount(remainingOf(g.grantId, g.remaining)),
            }));
            const remaining = pool.grants.reduce((sum, g) => sum + remainingOf(g.grantId, g.remaining), 0n);
            const held = live?.held ?? pool.held;
            const overdraft = live?.overdraft ?? pool.overdraft;
            return {
              creditType: pool.creditType,
              resourceId: pool.resourceId || null,
              mode: live?.mode ?? pool.mode,
              available: formatAmount(remaining - held - overdraft),
              held: formatAmount(held),
              overdraft: formatAmount(overdraft),
              grants,
            };
          }),
      );
      return { customerId, balances: views };
    },
  );
}
