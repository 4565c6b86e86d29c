import { type AllotApp, type ApiKeyStore, createApp } from '@allot/kit';
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
  app.addHook('onClose', async () => runtime.close());
  return app;
}
