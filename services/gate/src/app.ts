import type { WindowClock } from '@allot/governance';
import type { AllotApp } from '@allot/kit';
import type { ConfigReplica, ConfigStore } from '@allot/kit/config-store';
import type { HotState } from '@allot/kit/hot';
import type { SqlStore } from '@allot/kit/sql';
import fp from 'fastify-plugin';
import type { Catalog } from './catalog.ts';
import type { GateEngine } from './engine.ts';
import { catalogRoutes } from './routes/catalog.ts';
import { decisionRoutes } from './routes/decisions.ts';
import { entitlementRoutes } from './routes/entitlements.ts';

export interface GatePluginOptions {
  /** false: leave the configuration routes to the control plane in front (the all-in-one process). */
  configRoutes?: boolean;
  engine: GateEngine;
  catalog: Catalog;
  store: ConfigStore;
  replica: ConfigReplica;
  hot: HotState;
  sql: SqlStore;
  windows: WindowClock;
}

/** The gate's HTTP API: decisions, settle and release; the catalog; effective entitlements. */
export const gatePlugin = fp<GatePluginOptions>(
  async (app, options) => {
    const routes = app as unknown as AllotApp;
    decisionRoutes(routes, options);
    if (options.configRoutes !== false) catalogRoutes(routes, options);
    entitlementRoutes(routes, options);
  },
  { name: 'allot-gate', fastify: '5.x', dependencies: ['allot-auth'] },
);
