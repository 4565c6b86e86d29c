import { generateApiKey, loadConfig, runMain, StaticApiKeyStore, serve } from '@allot/kit';
import { openStores } from '@allot/kit/stores';
import { buildMeteringApp, meteringEnv } from './standalone.ts';

/** `node --import tsx services/metering/src/server.ts`: metering alone (see standalone.ts). */
runMain('metering', async () => {
  const env = loadConfig(meteringEnv);
  const stores = await openStores(env, { dataDir: env.ALLOT_DATA_DIR, name: 'allot-metering' });
  const apiKey = env.ALLOT_API_KEY ?? generateApiKey();
  const keys = new StaticApiKeyStore([
    { key: apiKey, principal: { keyId: 'env', tenant: env.ALLOT_TENANT, scopes: ['admin'] } },
  ]);
  const app = await buildMeteringApp(env, stores, keys);
  await serve(app, { host: env.HOST, port: env.PORT, graceMs: env.SHUTDOWN_GRACE_MS });
  if (!env.ALLOT_API_KEY) process.stdout.write(`metering API key: ${apiKey}\n`);
});
