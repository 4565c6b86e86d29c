/**
 * Governance as a deployment of its own: entities, budgets and limits, blocks (the kill
 * switch), budget status and history, and the decision log, on the data plane's configuration
 * store (changes reach every gate by push). The hot-path worker (the credits service) applies
 * the gate's decision records and publishes the budget alerts they raise.
 *
 * `DATABASE_URL=... REDIS_URL=... NATS_URL=... node --import tsx services/governance/src/server.ts`
 */
import {
  baseEnv,
  createApp,
  generateApiKey,
  loadConfig,
  runMain,
  StaticApiKeyStore,
  serve,
} from '@allot/kit';
import { ConfigReplica, ConfigStore, migrateConfig } from '@allot/kit/config-store';
import { openStores } from '@allot/kit/stores';
import { z } from 'zod';
import { governancePlugin } from './app.ts';
import { WindowClock } from './domain/periods.ts';
import { migrateGovernance } from './store/ledger.ts';

const governanceEnv = baseEnv.extend({
  ALLOT_TENANT: z.string().default('default'),
  ALLOT_DATA_DIR: z.string().default('.allot/governance'),
});

runMain('governance', async () => {
  const env = loadConfig(governanceEnv);
  const stores = await openStores(env, { dataDir: env.ALLOT_DATA_DIR, name: 'allot-governance' });
  const apiKey = env.ALLOT_API_KEY ?? generateApiKey();
  const app = await createApp({
    service: 'governance',
    logLevel: env.LOG_LEVEL,
    apiKeys: new StaticApiKeyStore([
      { key: apiKey, principal: { keyId: 'env', tenant: env.ALLOT_TENANT, scopes: ['admin'] } },
    ]),
    readiness: stores.readiness,
  });
  await migrateConfig(stores.sql);
  await migrateGovernance(stores.sql);
  const store = new ConfigStore(stores.sql, stores.bus);
  const replica = new ConfigReplica({ store, bus: stores.bus, log: app.log });
  await replica.start();
  await app.register(governancePlugin, {
    store,
    replica,
    hot: stores.hot,
    sql: stores.sql,
    windows: new WindowClock(),
  });
  app.addHook('onClose', async () => {
    await replica.stop();
    await stores.close();
  });
  await serve(app, { host: env.HOST, port: env.PORT, graceMs: env.SHUTDOWN_GRACE_MS });
  if (!env.ALLOT_API_KEY) process.stdout.write(`governance API key: ${apiKey}\n`);
});
