/** `GET /v1/metering/export?after=&limit=`: aggregates changed since a version, for the uplink. */
import { type AllotApp, AppError, tenantOf } from '@allot/kit';
import type { SqlStore } from '@allot/kit/sql';
import { z } from 'zod';
import type { MeterCatalog } from '../meters.ts';
import { exportAggregates } from '../store/export.ts';

export function exportRoutes(app: AllotApp, options: { sql: SqlStore; meters: MeterCatalog }): void {
  app.get(
    '/v1/metering/export',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['metering'],
        summary: 'Aggregates (never events) changed after a version, in commit order',
        querystring: z.object({
          after: z
            .string()
            .regex(/^\d{1,20}$/, 'expected the cursor of the previous page, or 0')
            .default('0'),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const meters = new Map(options.meters.meters(tenant).map((m) => [m.slug, m]));
      try {
        return await exportAggregates(options.sql, tenant, meters, request.query.after, request.query.limit);
      } catch (error) {
        if ((error as { code?: string }).code === '22003') {
          throw new AppError('invalid_request', 'query.after: out of range');
        }
        throw error;
      }
    },
  );
}
