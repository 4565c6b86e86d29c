import { creditsPlugin, startCredits } from '@allot/credits';
import { gatePlugin, startGate } from '@allot/gate';
import {
  BudgetAlerts,
  governancePlugin,
  governanceRecordApplier,
  migrateGovernance,
} from '@allot/governance';
import { type AllotApp, type ApiKeyStore, createApp } from '@allot/kit';
import type { Stores } from '@allot/kit/stores';
import { webhooksPlugin } from '@allot/kit/webhooks';
import { type MeteringService, meteringPlugin, startMetering } from '@allot/metering';
import type { AllotEnv } from './config.ts';

const running = new WeakMap<AllotApp, { metering: MeteringService }>();

/** The services behind an app `buildAllot` made (tests wait on their workers). */
export function servicesOf(app: AllotApp): { metering: MeteringService } {
  const found = running.get(app);
  if (!found) throw new Error('not an app buildAllot made');
  return found;
}

/** Every service in one process, on one port. It grows as services land. */
export async function buildAllot(env: AllotEnv, stores: Stores, apiKeys: ApiKeyStore): Promise<AllotApp> {
  const app = await createApp({
    service: 'allot',
    logLevel: env.LOG_LEVEL,
    apiKeys,
    readiness: stores.readiness,
  });
  // An embedded hot state starts empty with this process, and no other process publishes to
  // its in-process stream: nothing can still be in flight, so a first load need not wait.
  if (stores.hot.kind === 'embedded') await stores.hot.call('SET', 'allot:credits:epoch', '0');
  // The governance tables first: the hot-path worker (run by credits) applies decisions to them.
  await migrateGovernance(stores.sql);
  const budgetAlerts = new BudgetAlerts({ sql: stores.sql, bus: stores.bus, log: app.log });
  // The webhook dispatcher delivers every service's events; it runs once, with credits.
  const credits = await startCredits({
    ...stores,
    log: app.log,
    registry: app.metrics,
    webhooks: true,
    records: governanceRecordApplier({ log: app.log, onAlerts: () => budgetAlerts.wake() }),
  });
  await budgetAlerts.start();
  const gate = await startGate({ ...stores, credits, failOpen: env.ALLOT_FAIL_OPEN, log: app.log });
  await app.register(creditsPlugin, { sql: stores.sql, engine: credits.engine });
  const shared = {
    store: gate.config,
    replica: gate.replica,
    hot: stores.hot,
    sql: stores.sql,
    windows: gate.windows,
  };
  await app.register(gatePlugin, { ...shared, engine: gate.engine, catalog: gate.catalog });
  await app.register(governancePlugin, shared);
  // Metering reads its meters from the same configuration replica as the gate.
  const metering = await startMetering({
    sql: stores.sql,
    bus: stores.bus,
    config: { store: gate.config, replica: gate.replica },
    log: app.log,
    registry: app.metrics,
  });
  await app.register(meteringPlugin, { sql: stores.sql, metering });
  running.set(app, { metering });

  // Webhook endpoints and delivery logs, for every service's events.
  await app.register(webhooksPlugin, { sql: stores.sql });
  app.addHook('onClose', async () => {
    // Background work first (it finishes its batch), then the stores it was using.
    await metering.close();
    await gate.close();
    await credits.close();
    await budgetAlerts.stop();
    await stores.close();
  });
  return app;
}
