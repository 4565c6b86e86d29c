import {
  baseEnv,
  createApp,
  generateApiKey,
  loadConfig,
  runMain,
  StaticApiKeyStore,
  serve,
} from '@allot/kit';
import { openBus } from '@allot/kit/bus';
import { openHotState } from '@allot/kit/hot';
import { openSqlStore } from '@allot/kit/sql';
import { webhooksPlugin } from '@allot/kit/webhooks';
import { z } from 'zod';
import { creditsPlugin } from './app.ts';
import { startCredits } from './service.ts';

/** The credits service on its own: API, ledger worker, expiry sweeper, alerts and webhook delivery. */
runMain('credits', async () => {
  const env = loadConfig(
    baseEnv.extend({
      ALLOT_TENANT: z.string().default('default'),
      ALLOT_DATA_DIR: z.string().default('.allot/credits'),
    }),
  );
  const sql = await openSqlStore(
    env.DATABASE_URL ? { url: env.DATABASE_URL } : { dataDir: `${env.ALLOT_DATA_DIR}/pg` },
  );
  const hot = await openHotState(env.REDIS_URL ? { url: env.REDIS_URL, requireConnection: false } : {});
  const bus = await openBus(
    env.NATS_URL ? { url: env.NATS_URL, name: 'allot-credits' } : { name: 'allot-credits' },
  );
  const apiKey = env.ALLOT_API_KEY ?? generateApiKey();
  const app = await createApp({
    service: 'credits',
    logLevel: env.LOG_LEVEL,
    apiKeys: new StaticApiKeyStore([
      { key: apiKey, principal: { keyId: 'env', tenant: env.ALLOT_TENANT, scopes: ['admin'] } },
    ]),
    readiness: [
      { name: 'postgres', check: () => sql.ping() },
      { name: 'redis', check: () => hot.ping(), timeoutMs: 1000 },
      { name: 'nats', check: () => bus.ping(), timeoutMs: 1000 },
    ],
  });
  const credits = await startCredits({ sql, hot, bus, log: app.log, registry: app.metrics, webhooks: true });
  await app.register(creditsPlugin, { sql, engine: credits.engine });
  await app.register(webhooksPlugin, { sql });
  app.addHook('onClose', async () => {
    await credits.close();
    await Promise.allSettled([bus.close(), hot.close(), sql.close()]);
  });
  await serve(app, { host: env.HOST, port: env.PORT, graceMs: env.SHUTDOWN_GRACE_MS });
  if (!env.ALLOT_API_KEY) process.stdout.write(`credits API key: ${apiKey}\n`);
});
