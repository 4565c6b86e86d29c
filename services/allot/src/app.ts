import { creditsPlugin, startCredits } from '@allot/credits';
import { type AllotApp, type ApiKeyStore, createApp } from '@allot/kit';
import type { Stores } from '@allot/kit/stores';
import { webhooksPlugin } from '@allot/kit/webhooks';
import type { AllotEnv } from './config.ts';

/** Every service in one process, on one port. It grows as services land. */
export async function buildAllot(env: AllotEnv, stores: Stores, apiKeys: ApiKeyStore): Promise<AllotApp> {
  const app = await createApp({
    service: 'allot',
    logLevel: env.LOG_LEVEL,
    apiKeys,
    readiness: stores.readiness,
  });
  // The webhook dispatcher delivers every service's events; it runs once, with credits.
  const credits = await startCredits({ ...stores, log: app.log, registry: app.metrics, webhooks: true });
  await app.register(creditsPlugin, { sql: stores.sql, engine: credits.engine });

  // Webhook endpoints and delivery logs, for every service's events.
  await app.register(webhooksPlugin, { sql: stores.sql });
  app.addHook('onClose', async () => {
    // Background work first (it finishes its batch), then the stores it was using.
    await credits.close();
    await stores.close();
  });
  return app;
}
