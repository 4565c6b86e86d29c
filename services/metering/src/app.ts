import type { AllotApp } from '@allot/kit';
import type { SqlStore } from '@allot/kit/sql';
import fp from 'fastify-plugin';
import { eventRoutes } from './routes/events.ts';
import { exportRoutes } from './routes/export.ts';
import { meterRoutes } from './routes/meters.ts';
import { queryRoutes } from './routes/query.ts';
import type { MeteringService } from './service.ts';

export interface MeteringPluginOptions {
  /** false: leave the configuration routes to the control plane in front (the all-in-one process). */
  configRoutes?: boolean;
  sql: SqlStore;
  metering: MeteringService;
  /** Most events in one request. Default 10,000. */
  maxEvents?: number;
  /** Largest request body. Default 16 MiB. */
  bodyLimit?: number;
}

/** The metering HTTP API: event ingest, meters, usage queries, the aggregate export. */
export const meteringPlugin = fp<MeteringPluginOptions>(
  async (app, options) => {
    const routes = app as unknown as AllotApp;
    const { metering } = options;
    eventRoutes(routes, {
      ingest: metering.ingest,
      meters: metering.meters,
      latenessMs: metering.latenessMs,
      futureMs: 86_400_000,
      maxEvents: options.maxEvents ?? 10_000,
      bodyLimit: options.bodyLimit ?? 16 * 1024 * 1024,
    });
    if (options.configRoutes !== false) meterRoutes(routes, metering.config);
    queryRoutes(routes, { sql: options.sql, meters: metering.meters });
    exportRoutes(routes, { sql: options.sql, meters: metering.meters });
  },
  { name: 'allot-metering', fastify: '5.x', dependencies: ['allot-auth'] },
);
