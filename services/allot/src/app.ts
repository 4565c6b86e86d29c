import { creditsPlugin, startCredits } from '@allot/credits';
import { type AllotApp, type ApiKeyStore, createApp } from '@allot/kit';
import { webhooksPlugin } from '@allot/kit/webhooks';
import type { AllotEnv } from './config.ts';
import type { Runtime } from './runtime.ts';

/** Every service in one process, on one port. It grows as services land. */
export async function buildAllot(env: AllotEnv, runtime: Runtime, apiKeys: ApiKeyStore): Promise<AllotApp> {
  const app = await createApp({
    service: 'allot',
    logLevel: env.LOG_LEVEL,
    apiKeys,
    readiness: runtime.readiness,
  });
  // The webhook dispatcher delivers every service's events; it runs once, with credits.
  const credits = await startCredits({ ...runtime, log: app.log, registry: app.metrics, webhooks: true });
  await app.register(creditsPlugin, { sql: runtime.sql, engine: credits.engine });

  // Webhook endpoints and delivery logs, for every service's events.
  await app.register(webhooksPlugin, { sql: runtime.sql });
  app.addHook('onClose', async () => {
    // Background work first (it finishes its batch), then the stores it was using.
    await credits.close();
    await runtime.close();
  });
  return app;
}
