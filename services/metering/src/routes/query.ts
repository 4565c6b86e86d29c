/**
 * `GET /api/v1/meters/{slug}/query` (OpenMeter's shape) and `GET /v1/meters/{slug}/query`:
 * usage from the minute aggregates. `from`/`to` (RFC 3339, on whole minutes), `windowSize`
 * (MINUTE, HOUR, DAY), `windowTimeZone` (IANA, default UTC), `subject` and `groupBy`
 * (repeatable), `filterGroupBy[<name>]=<value>`.
 */
import { id, timestamp } from '@allot/contracts';
import { isTimeZone } from '@allot/governance';
import { type AllotApp, AppError, tenantOf } from '@allot/kit';
import type { SqlStore } from '@allot/kit/sql';
import { z } from 'zod';
import type { MeterCatalog } from '../meters.ts';
import { queryUsage } from '../store/queries.ts';

const many = z
  .union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).max(100)])
  .optional()
  .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));

const usageQuery = z.looseObject({
  from: timestamp.optional(),
  to: timestamp.optional(),
  windowSize: z.enum(['MINUTE', 'HOUR', 'DAY']).optional(),
  windowTimeZone: z.string().max(64).default('UTC'),
  subject: many,
  groupBy: many,
});

const usageRow = z.object({
  value: z.number(),
  windowStart: z.string(),
  windowEnd: z.string(),
  subject: z.string().nullable(),
  groupBy: z.record(z.string(), z.string().nullable()),
});

export function queryRoutes(app: AllotApp, options: { sql: SqlStore; meters: MeterCatalog }): void {
  for (const url of ['/api/v1/meters/:slug/query', '/v1/meters/:slug/query']) {
    app.get(
      url,
      {
        config: { auth: 'read' },
        schema: {
          tags: ['metering'],
          summary: "A meter's usage per window, subject and group (OpenMeter-compatible)",
          params: z.object({ slug: id }),
          querystring: usageQuery,
          response: {
            200: z.object({
              from: z.string().nullable(),
              to: z.string().nullable(),
              windowSize: z.string().nullable(),
              data: z.array(usageRow),
            }),
          },
        },
      },
      async (request) => {
        const tenant = tenantOf(request);
        const q = request.query;
        const meter = options.meters.meter(tenant, request.params.slug);
        if (!meter) throw new AppError('not_found', `meter ${request.params.slug} not found`);
        const from = q.from ? new Date(q.from) : undefined;
        const to = q.to ? new Date(q.to) : undefined;
        for (const [name, at] of [
          ['from', from],
          ['to', to],
        ] as const) {
          if (at && at.getTime() % 60_000 !== 0) {
            throw new AppError(
              'invalid_request',
              `query.${name}: must fall on a whole minute (usage is kept per minute)`,
            );
          }
        }
        if (from && to && from >= to) throw new AppError('invalid_request', 'query.to: must be after from');
        if (!isTimeZone(q.windowTimeZone)) {
          throw new AppError(
            'invalid_request',
            `query.windowTimeZone: unknown time zone "${q.windowTimeZone}"`,
          );
        }
        const names = new Set(meter.groupBy.map((g) => g.name));
        for (const name of q.groupBy) {
          if (name !== 'subject' && !names.has(name)) {
            throw new AppError(
              'invalid_request',
              `query.groupBy: meter ${meter.slug} has no group-by "${name}" (it has: subject${[...names].map((n) => `, ${n}`).join('')})`,
            );
          }
        }
        const filters: Record<string, string> = {};
        for (const [key, value] of Object.entries(q)) {
          const match = /^filterGroupBy\[(.+)\]$/.exec(key);
          if (!match) continue;
          const name = match[1]!;
          if (!names.has(name)) {
            throw new AppError(
              'invalid_request',
              `query.${key}: meter ${meter.slug} has no group-by "${name}"`,
            );
          }
          if (typeof value !== 'string')
            throw new AppError('invalid_request', `query.${key}: expected one value`);
          filters[name] = value;
        }
        const data = await queryUsage(options.sql, tenant, meter, {
          ...(from ? { from } : {}),
          ...(to ? { to } : {}),
          ...(q.windowSize ? { windowSize: q.windowSize } : {}),
          windowTimeZone: q.windowTimeZone,
          subjects: q.subject,
          groupBy: q.groupBy,
          filters,
        });
        return {
          from: from?.toISOString() ?? null,
          to: to?.toISOString() ?? null,
          windowSize: q.windowSize ?? null,
          data,
        };
      },
    );
  }
}
