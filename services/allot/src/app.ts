import { randomUUID } from 'node:crypto';
import {
  type ControlPlane,
  controlPlanePlugin,
  ensureTenant,
  hashPassword,
  LocalUplink,
  serveUi,
  startControlPlane,
  type UplinkAgent,
} from '@allot/control-plane';
import { type CreditsService, creditsPlugin, startCredits } from '@allot/credits';
import { gatePlugin, startGate } from '@allot/gate';
import {
  BudgetAlerts,
  governancePlugin,
  governanceRecordApplier,
  migrateGovernance,
} from '@allot/governance';
import { type AllotApp, type ApiKeyStore, createApp } from '@allot/kit';
import type { ConfigReplica, ConfigStore } from '@allot/kit/config-store';
import { HOT_EPOCH_KEY } from '@allot/kit/hot';
import type { Stores } from '@allot/kit/stores';
import { webhooksPlugin } from '@allot/kit/webhooks';
import { mcpPlugin } from '@allot/mcp';
import { exportAggregates, type MeteringService, meteringPlugin, startMetering } from '@allot/metering';
import type { AllotEnv } from './config.ts';
import { connectUplink } from './uplink.ts';

interface Running {
  metering: MeteringService;
  uplink: Uplink;
}

const running = new WeakMap<AllotApp, Running>();

/** The services behind an app `buildAllot` made (tests wait on their workers). */
export function servicesOf(app: AllotApp): Running {
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
  if (stores.hot.kind === 'embedded') await stores.hot.call('SET', HOT_EPOCH_KEY, '0');
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
  // The configuration routes belong to the control plane: in this process (the default), or a
  // remote one this data plane connects to (ALLOT_UPLINK_URL).
  await app.register(gatePlugin, {
    ...shared,
    engine: gate.engine,
    catalog: gate.catalog,
    configRoutes: false,
  });
  await app.register(governancePlugin, { ...shared, configRoutes: false });
  // Metering reads its meters from the same configuration replica as the gate.
  const metering = await startMetering({
    sql: stores.sql,
    bus: stores.bus,
    config: { store: gate.config, replica: gate.replica },
    log: app.log,
    registry: app.metrics,
  });
  await app.register(meteringPlugin, { sql: stores.sql, metering, configRoutes: false });
  const uplink = await startUplink(
    app,
    env,
    stores,
    { store: gate.config, replica: gate.replica },
    metering,
    credits,
  );
  running.set(app, { metering, uplink });

  // Agents: the MCP tools over Streamable HTTP at /mcp (and `allot mcp` over stdio).
  await app.register(mcpPlugin, { apiKeys });

  // Webhook endpoints and delivery logs, for every service's events.
  await app.register(webhooksPlugin, { sql: stores.sql });
  app.addHook('onClose', async () => {
    // Background work first (it finishes its batch), then the stores it was using.
    await uplink.close();
    await metering.close();
    await gate.close();
    await credits.close();
    await budgetAlerts.stop();
    await stores.close();
  });
  return app;
}

interface Uplink {
  /** The agent of a data plane connected to a remote control plane. */
  agent: UplinkAgent | undefined;
  controlPlane: ControlPlane | undefined;
  close(): Promise<void>;
}

/**
 * Without ALLOT_UPLINK_URL: the control plane runs here, on this process's bus, in front of the
 * data plane (its configuration routes, tenants, the hub). With it: this is a data plane
 * connected outbound to that hub as ALLOT_TENANT, applying what comes down.
 */
async function startUplink(
  app: AllotApp,
  env: AllotEnv,
  stores: Stores,
  config: { store: ConfigStore; replica: ConfigReplica },
  metering: MeteringService,
  creditsService: CreditsService,
): Promise<Uplink> {
  const exportFor = (tenant: string, after: string) =>
    exportAggregates(
      stores.sql,
      tenant,
      new Map(metering.meters.meters(tenant).map((m) => [m.slug, m])),
      after,
      50,
    );
  if (env.ALLOT_UPLINK_URL) {
    const connected = await connectUplink({
      tenant: env.ALLOT_TENANT,
      hub: { url: env.ALLOT_UPLINK_URL, user: env.ALLOT_UPLINK_USER, password: env.ALLOT_UPLINK_PASSWORD },
      sql: stores.sql,
      config,
      credits: creditsService,
      meters: metering.meters,
      log: app.log,
    });
    return { agent: connected.agent, controlPlane: undefined, close: connected.close };
  }
  const local = new LocalUplink({
    bus: stores.bus,
    sql: stores.sql,
    ...config,
    exportAggregates: exportFor,
    log: app.log,
  });
  const controlPlane = await startControlPlane({
    sql: stores.sql,
    hub: stores.bus,
    log: app.log,
    replica: (store) => local.waitingReplica({ store, log: app.log }),
  });
  await local.start((await controlPlane.store.versions()).keys());
  await ensureTenant(stores.sql, env.ALLOT_TENANT, env.ALLOT_TENANT);
  await serveUi(app, app.log);
  await app.register(controlPlanePlugin, {
    sql: stores.sql,
    controlPlane,
    operator: env.ALLOT_TENANT,
    creditRoutes: false,
    hubUrl: env.NATS_URL ?? 'in-process',
    controlPlaneUser: {
      user: 'control-plane',
      passwordHash: await hashPassword(env.ALLOT_HUB_PASSWORD ?? randomUUID()),
    },
  });
  return {
    agent: undefined,
    controlPlane,
    async close() {
      await local.stop();
      await controlPlane.close();
    },
  };
}
