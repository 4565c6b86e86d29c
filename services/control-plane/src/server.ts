/**
 * The control plane as a deployment of its own, on its own PostgreSQL, connected to its hub
 * (NATS) as the control plane's user: the configuration API (credit types and grants
 * included), tenants and their credentials, the audit log, usage from the aggregates sent up,
 * and the web UI. The operator's key (ALLOT_API_KEY, tenant ALLOT_TENANT) acts for a tenant
 * with `x-allot-tenant: <id>`.
 *
 * `DATABASE_URL=... ALLOT_HUB_URL=nats://... ALLOT_HUB_PASSWORD=... node --import tsx services/control-plane/src/server.ts`
 */
import {
  baseEnv,
  createApp,
  generateApiKey,
  loadConfig,
  runMain,
  StaticApiKeyStore,
  serve,
  urlListVariable,
  urlVariable,
} from '@allot/kit';
import { NatsBus } from '@allot/kit/bus';
import { openSqlStore } from '@allot/kit/sql';
import { z } from 'zod';
import { controlPlanePlugin } from './app.ts';
import { startControlPlane } from './service.ts';
import { hashPassword } from './store/tenants.ts';
import { serveUi } from './ui.ts';

const env = baseEnv.extend({
  DATABASE_URL: urlVariable(['postgres:', 'postgresql:'], 'PostgreSQL'),
  ALLOT_TENANT: z.string().default('operator'),
  ALLOT_HUB_URL: urlListVariable(['nats:', 'tls:'], 'NATS'),
  ALLOT_HUB_USER: z.string().default('control-plane'),
  ALLOT_HUB_PASSWORD: z.string().min(16),
  /** The hub's URL as data planes reach it (shown with their credentials). Default ALLOT_HUB_URL. */
  ALLOT_HUB_PUBLIC_URL: z.string().optional(),
});

runMain('control plane', async () => {
  const config = loadConfig(env);
  const sql = await openSqlStore({ url: config.DATABASE_URL, max: 8 });
  const hub = await NatsBus.connect({
    url: config.ALLOT_HUB_URL,
    user: config.ALLOT_HUB_USER,
    pass: config.ALLOT_HUB_PASSWORD,
    name: 'allot-control-plane',
    jetstream: false,
  });
  const apiKey = config.ALLOT_API_KEY ?? generateApiKey();
  const app = await createApp({
    service: 'control-plane',
    logLevel: config.LOG_LEVEL,
    apiKeys: new StaticApiKeyStore([
      { key: apiKey, principal: { keyId: 'operator', tenant: config.ALLOT_TENANT, scopes: ['admin'] } },
    ]),
    readiness: [
      { name: 'postgres', check: () => sql.ping() },
      { name: 'hub', check: () => hub.ping() },
    ],
  });
  const controlPlane = await startControlPlane({ sql, hub, log: app.log });
  await serveUi(app, app.log);
  await app.register(controlPlanePlugin, {
    sql,
    controlPlane,
    operator: config.ALLOT_TENANT,
    hubUrl: config.ALLOT_HUB_PUBLIC_URL ?? config.ALLOT_HUB_URL,
    controlPlaneUser: {
      user: config.ALLOT_HUB_USER,
      passwordHash: await hashPassword(config.ALLOT_HUB_PASSWORD),
    },
  });
  app.addHook('onClose', async () => {
    await controlPlane.close();
    await Promise.allSettled([hub.close(), sql.close()]);
  });
  await serve(app, { host: config.HOST, port: config.PORT, graceMs: config.SHUTDOWN_GRACE_MS });
  if (!config.ALLOT_API_KEY) process.stdout.write(`control plane operator key: ${apiKey}\n`);
});
