import { credits, id } from '@allot/contracts';
import { type AllotApp, AppError } from '@allot/kit';
import { z } from 'zod';
import { formatAmount } from '../domain/amount.ts';
import { InvalidCursorError, ledgerPage } from '../store/queries.ts';
import { type CreditsRoutesOptions, tenantOf } from './context.ts';

/** `GET /v1/customers/{id}/ledger`: append-only entries, newest first, paginated by cursor. */
export function ledgerRoutes(app: AllotApp, { sql }: CreditsRoutesOptions): void {
  app.get(
    '/v1/customers/:customerId/ledger',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['credits'],
        summary: 'Ledger history, newest first',
        params: z.object({ customerId: id }),
        querystring: credits.ledgerQuery,
        response: {
          200: z.object({ entries: z.array(credits.ledgerEntry), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request) => {
      const { creditType, cursor, limit } = request.query;
      try {
        const page = await ledgerPage(sql, tenantOf(request), request.params.customerId, {
          ...(creditType === undefined ? {} : { creditType }),
          cursor: cursor ?? null,
          limit,
        });
        return {
          entries: page.entries.map((e) => ({
            id: e.id,
            creditType: e.creditType,
            resourceId: e.resourceId || null,
            kind: e.kind,
            amount: formatAmount(e.amount),
            grantId: e.grantId,
            reservationId: e.holdId,
            at: e.at.toISOString(),
            recordedAt: e.recordedAt.toISOString(),
          })),
          nextCursor: page.nextCursor,
        };
      } catch (error) {
        if (error instanceof InvalidCursorError)
          throw new AppError('invalid_request', `query.cursor: ${error.message}`);
        throw error;
      }
    },
  );
}
