import { credits, id } from '@allot/contracts';
import type { AllotApp } from '@allot/kit';
import { z } from 'zod';
import { upsertCreditType } from '../store/ledger.ts';
import { type CreditsRoutesOptions, tenantOf } from './context.ts';

/** `PUT /v1/credit-types/{key}`: a custom currency ("credits", "gpu-minutes"). */
export function creditTypeRoutes(app: AllotApp, { sql }: CreditsRoutesOptions): void {
  app.put(
    '/v1/credit-types/:key',
    {
      schema: {
        tags: ['credits'],
        summary: 'Create or update a credit type',
        params: z.object({ key: id }),
        body: credits.creditTypeBody,
        response: { 200: credits.creditType },
      },
    },
    async (request) => {
      const record = await upsertCreditType(sql, {
        tenant: tenantOf(request),
        key: request.params.key,
        name: request.body.name,
        unit: request.body.unit ?? null,
      });
      return {
        key: record.key,
        name: record.name,
        unit: record.unit,
        createdAt: record.createdAt.toISOString(),
        updatedAt: record.updatedAt.toISOString(),
      };
    },
  );
}
