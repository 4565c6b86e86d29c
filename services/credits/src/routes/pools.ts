import { credits, id } from '@allot/contracts';
import type { AllotApp } from '@allot/kit';
import { z } from 'zod';
import { formatAmount, parseAmount } from '../domain/amount.ts';
import { upsertPool } from '../store/ledger.ts';
import { type CreditsRoutesOptions, tenantOf } from './context.ts';

const micros = (value: string | undefined) => (value === undefined ? null : parseAmount(value));
const decimal = (value: bigint | null) => (value === null ? null : formatAmount(value));

/** `PUT /v1/customers/{id}/pools/{creditType}`: hard or soft, low-balance alert and auto-recharge. */
export function poolRoutes(app: AllotApp, { sql, engine }: CreditsRoutesOptions): void {
  app.put(
    '/v1/customers/:customerId/pools/:creditType',
    {
      schema: {
        tags: ['credits'],
        summary: 'Configure a credit pool',
        params: z.object({ customerId: id, creditType: id }),
        body: credits.poolBody,
        response: {
          200: z.object({
            customerId: z.string(),
            creditType: z.string(),
            resourceId: z.string().nullable(),
            mode: z.enum(['hard', 'soft']),
            lowBalanceThreshold: z.string().nullable(),
            autoRecharge: z
              .object({ threshold: z.string(), target: z.string(), monthlyCap: z.string().nullable() })
              .nullable(),
          }),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const { customerId, creditType } = request.params;
      const body = request.body;
      const record = await upsertPool(sql, {
        tenant,
        customerId,
        creditType,
        resourceId: body.resourceId ?? '',
        mode: body.mode,
        lowBalanceThreshold: micros(body.lowBalanceThreshold),
        rechargeThreshold: micros(body.autoRecharge?.threshold),
        rechargeTarget: micros(body.autoRecharge?.target),
        rechargeMonthlyCap: micros(body.autoRecharge?.monthlyCap),
      });
      await engine.setMode({
        tenant,
        customerId,
        creditType,
        resourceId: record.resourceId,
        mode: record.mode,
      });
      return {
        customerId,
        creditType,
        resourceId: record.resourceId || null,
        mode: record.mode,
        lowBalanceThreshold: decimal(record.lowBalanceThreshold),
        autoRecharge:
          record.rechargeThreshold !== null && record.rechargeTarget !== null
            ? {
                threshold: formatAmount(record.rechargeThreshold),
                target: formatAmount(record.rechargeTarget),
                monthlyCap: decimal(record.rechargeMonthlyCap),
              }
            : null,
      };
    },
  );
}
