import { BudgetAlerts, governanceRecordApplier, migrateGovernance } from '@allot/governance';
import {
  baseEnv,
  createApp,
  generateApiKey,
  loadConfig,
  runMain,
  StaticApiKeyStore,
  serve,
} from '@allot/kit';
import { openStores } from '@allot/kit/stores';
import { webhooksPlugin } from '@allot/kit/webhooks';
import { z } from 'zod';
import { creditsPlugin } from './app.ts';
import { startCredits } from './service.ts';

/**
 * The credits service on its own: API, the hot-path stream worker (credit events and the
 * gate's decision records), expiry sweeper, alerts and webhook delivery.
 */
runMain('credits', async () => {
  const env = loadConfig(
    baseEnv.extend({
      ALLOT_TENANT: z.string().default('default'),
      ALLOT_DATA_DIR: z.string().default('.allot/credits'),
    }),
  );
  const { sql, hot, bus, readiness, close } = await openStores(env, {
    dataDir: env.ALLOT_DATA_DIR,
    name: 'allot-credits',
  });
  const apiKey = env.ALLOT_API_KEY ?? generateApiKey();
  const app = await createApp({
    service: 'credits',
    logLevel: env.LOG_LEVEL,
    apiKeys: new StaticApiKeyStore([
      { key: apiKey, principal: { keyId: 'env', tenant: env.ALLOT_TENANT, scopes: ['admin'] } },
    ]),
    readiness,
  });
  await migrateGovernance(sql);
  const budgetAlerts = new BudgetAlerts({ sql, bus, log: app.log });
  await budgetAlerts.start();
  const credits = await startCredits({
    sql,
    hot,
    bus,
    log: app.log,
    registry: app.metrics,
    webhooks: true,
    records: governanceRecordApplier({ log: app.log, onAlerts: () => budgetAlerts.wake() }),
  });
  await app.register(creditsPlugin, { sql, engine: credits.engine });
  await app.register(webhooksPlugin, { sql });
  app.addHook('onClose', async () => {
    await credits.close();
    await budgetAlerts.stop();
    await close();
  });
  await serve(app, { host: env.HOST, port: env.PORT, graceMs: env.SHUTDOWN_GRACE_MS });
  if (!env.ALLOT_API_KEY) process.stdout.write(`credits API key: ${apiKey}\n`);
});
