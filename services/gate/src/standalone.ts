/**
 * The gate as a deployment of its own: decisions, settle and release, the catalog and the
 * governance configuration, with the credits and governance engines as libraries. It runs no
 * background work: the hot-path stream worker (services/credits/src/worker/main.ts, or the
 * credits service) applies what it publishes, in another process.
 */
import { startCredits } from '@allot/credits';
import { governancePlugin, migrateGovernance } from '@allot/governance';
import { type AllotApp, type ApiKeyStore, baseEnv, createApp, envBoolean } from '@allot/kit';
import type { Stores } from '@allot/kit/stores';
import { z } from 'zod';
import { gatePlugin } from './app.ts';
import { startGate } from './service.ts';

export const gateEnv = baseEnv.extend({
  ALLOT_TENANT: z.string().default('default'),
  ALLOT_DATA_DIR: z.string().default('.allot/gate'),
  /** When the hot state is unreachable: allow without reserving (true) or answer 503 (false, default). */
  ALLOT_FAIL_OPEN: envBoolean.default(false),
});
export type GateEnv = z.output<typeof gateEnv>;

export async function buildGateApp(
  env: Pick<GateEnv, 'LOG_LEVEL' | 'ALLOT_FAIL_OPEN'>,
  stores: Stores,
  apiKeys: ApiKeyStore,
): Promise<AllotApp> {
  const app = await createApp({
    service: 'gate',
    logLevel: env.LOG_LEVEL,
    apiKeys,
    readiness: stores.readiness,
  });
  await migrateGovernance(stores.sql);
  const credits = await startCredits({ ...stores, log: app.log, registry: app.metrics, background: false });
  const gate = await startGate({ ...stores, credits, failOpen: env.ALLOT_FAIL_OPEN, log: app.log });
  const shared = {
    store: gate.config,
    replica: gate.replica,
    hot: stores.hot,
    sql: stores.sql,
    windows: gate.windows,
  };
  await app.register(gatePlugin, { ...shared, engine: gate.engine, catalog: gate.catalog });
  await app.register(governancePlugin, shared);
  app.addHook('onClose', async () => {
    await gate.close();
    await credits.close();
    await stores.close();
  });
  return app;
}
