/**
 * The uplink of a split data plane, as a process of its own (one replica per tenant): connects
 * outbound to the control plane's hub as ALLOT_TENANT, applies the configuration versions that
 * come down to the data plane's configuration store (every gate hears of them over NATS), and
 * sends health and metering's aggregates up. Nothing connects to it; it serves only probes.
 *
 * `DATABASE_URL=... REDIS_URL=... NATS_URL=... ALLOT_UPLINK_URL=nats://hub:4222 ALLOT_UPLINK_USER=acme
 *  ALLOT_UPLINK_PASSWORD=... node --import tsx services/allot/src/uplink-main.ts`
 */
import { migrateUplink } from '@allot/control-plane';
import { startCredits } from '@allot/credits';
import {
  baseEnv,
  createApp,
  loadConfig,
  runMain,
  StaticApiKeyStore,
  serve,
  urlListVariable,
  urlVariable,
} from '@allot/kit';
import { ConfigReplica, ConfigStore, migrateConfig } from '@allot/kit/config-store';
import { openStores } from '@allot/kit/stores';
import { MeterCatalog, migrateMetering } from '@allot/metering';
import { z } from 'zod';
import { idPattern } from './config.ts';
import { connectUplink } from './uplink.ts';

const uplinkEnv = baseEnv.extend({
  DATABASE_URL: urlVariable(['postgres:', 'postgresql:'], 'PostgreSQL'),
  NATS_URL: urlListVariable(['nats:', 'tls:'], 'NATS'),
  REDIS_URL: urlVariable(['redis:', 'rediss:'], 'Redis'),
  ALLOT_TENANT: z.string().regex(idPattern, 'expected 1-128 of [A-Za-z0-9._:-]'),
  ALLOT_UPLINK_URL: urlListVariable(['nats:', 'tls:'], 'NATS'),
  ALLOT_UPLINK_USER: z.string().optional(),
  ALLOT_UPLINK_PASSWORD: z.string().optional(),
});

runMain('uplink', async () => {
  const env = loadConfig(uplinkEnv);
  const stores = await openStores(env, { dataDir: '.allot/uplink', name: 'allot-uplink' });
  const app = await createApp({
    service: 'uplink',
    logLevel: env.LOG_LEVEL,
    apiKeys: new StaticApiKeyStore([]),
    readiness: stores.readiness,
  });
  await migrateConfig(stores.sql);
  await migrateMetering(stores.sql);
  await migrateUplink(stores.sql);
  // Grants that come down are applied through the credits engine; the worker runs elsewhere.
  const credits = await startCredits({ ...stores, log: app.log, background: false });
  const store = new ConfigStore(stores.sql, stores.bus);
  const replica = new ConfigReplica({ store, bus: stores.bus, log: app.log });
  await replica.start();
  const uplink = await connectUplink({
    tenant: env.ALLOT_TENANT,
    hub: { url: env.ALLOT_UPLINK_URL, user: env.ALLOT_UPLINK_USER, password: env.ALLOT_UPLINK_PASSWORD },
    sql: stores.sql,
    config: { store, replica },
    credits,
    meters: new MeterCatalog(replica),
    log: app.log,
  });
  app.addHook('onClose', async () => {
    await uplink.close();
    await replica.stop();
    await credits.close();
    await stores.close();
  });
  await serve(app, { host: env.HOST, port: env.PORT, graceMs: env.SHUTDOWN_GRACE_MS });
});
