import { generateApiKey, loadConfig, runMain, StaticApiKeyStore, serve } from '@allot/kit';
import { openStores } from '@allot/kit/stores';
import { buildGateApp, gateEnv } from './standalone.ts';

/** `node --import tsx services/gate/src/server.ts`: the gate alone (see standalone.ts). */
runMain('gate', async () => {
  const env = loadConfig(gateEnv);
  const stores = await openStores(env, { dataDir: env.ALLOT_DATA_DIR, name: 'allot-gate' });
  const apiKey = env.ALLOT_API_KEY ?? generateApiKey();
  const keys = new StaticApiKeyStore([
    { key: apiKey, principal: { keyId: 'env', tenant: env.ALLOT_TENANT, scopes: ['admin'] } },
  ]);
  const app = await buildGateApp(env, stores, keys);
  await serve(app, { host: env.HOST, port: env.PORT, graceMs: env.SHUTDOWN_GRACE_MS });
  if (!env.ALLOT_API_KEY) process.stdout.write(`gate API key: ${apiKey}\n`);
});
