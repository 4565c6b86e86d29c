import type { AllotApp } from '@allot/kit';
import type { ConfigReplica, ConfigStore } from '@allot/kit/config-store';
import type { HotState } from '@allot/kit/hot';
import type { SqlStore } from '@allot/kit/sql';
import fp from 'fastify-plugin';
import type { WindowClock } from './domain/periods.ts';
import { governanceConfigRoutes } from './routes/config.ts';
import { governanceReadRoutes } from './routes/reads.ts';

export interface GovernancePluginOptions {
  /** false: leave the configuration routes to the control plane in front (the all-in-one process). */
  configRoutes?: boolean;
  store: ConfigStore;
  replica: ConfigReplica;
  hot: HotState;
  sql: SqlStore;
  windows: WindowClock;
}

/** The governance HTTP API: entities, budgets and limits, blocks, budget status, the decision log. */
export const governancePlugin = fp<GovernancePluginOptions>(
  async (app, options) => {
    const routes = app as unknown as AllotApp;
    if (options.configRoutes !== false) governanceConfigRoutes(routes, options);
    governanceReadRoutes(routes, options);
  },
  { name: 'allot-governance', fastify: '5.x', dependencies: ['allot-auth'] },
);
