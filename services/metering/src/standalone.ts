/**
 * Metering's API as a deployment of its own: event ingest, meters, usage queries and the
 * export. With `METERING_WORKER=false` it only ingests and reads, and the workers
 * (services/metering/src/worker/main.ts) run as processes of their own.
 */
import { type AllotApp, type ApiKeyStore, baseEnv, createApp, envBoolean } from '@allot/kit';
import type { Stores } from '@allot/kit/stores';
import { z } from 'zod';
import { meteringPlugin } from './app.ts';
import { startMetering } from './service.ts';
import { DEFAULT_PARTITIONS } from './stream.ts';

export const meteringEnv = baseEnv.extend({
  ALLOT_TENANT: z.string().default('default'),
  ALLOT_DATA_DIR: z.string().default('.allot/metering'),
  /** Also run the worker in this process. */
  METERING_WORKER: envBoolean.default(true),
  METERING_PARTITIONS: z.coerce.number().int().min(1).max(256).default(DEFAULT_PARTITIONS),
  METERING_LATENESS_MS: z.coerce
    .number()
    .int()
    .min(60_000)
    .default(7 * 86_400_000),
});
export type MeteringEnv = z.output<typeof meteringEnv>;

export async function buildMeteringApp(
  env: Pick<MeteringEnv, 'LOG_LEVEL' | 'METERING_WORKER' | 'METERING_PARTITIONS' | 'METERING_LATENESS_MS'>,
  stores: Stores,
  apiKeys: ApiKeyStore,
): Promise<AllotApp> {
  const app = await createApp({
    service: 'metering',
    logLevel: env.LOG_LEVEL,
    apiKeys,
    readiness: stores.readiness,
  });
  const metering = await startMetering({
    sql: stores.sql,
    bus: stores.bus,
    worker: env.METERING_WORKER,
    partitions: env.METERING_PARTITIONS,
    latenessMs: env.METERING_LATENESS_MS,
    log: app.log,
    registry: app.metrics,
  });
  await app.register(meteringPlugin, { sql: stores.sql, metering });
  app.addHook('onClose', async () => {
    await metering.close();
    await stores.close();
  });
  return app;
}
