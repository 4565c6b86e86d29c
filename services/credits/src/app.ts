import type { AllotApp } from '@allot/kit';
import fp from 'fastify-plugin';
import { balanceRoutes } from './routes/balances.ts';
import type { CreditsRoutesOptions } from './routes/context.ts';
import { creditTypeRoutes } from './routes/credit-types.ts';
import { grantRoutes } from './routes/grants.ts';
import { ledgerRoutes } from './routes/ledger.ts';
import { poolRoutes } from './routes/pools.ts';

/** The credits HTTP API: credit types, grants, pools, balances and the ledger. */
export const creditsPlugin = fp<CreditsRoutesOptions>(
  async (app, options) => {
    const routes = app as unknown as AllotApp;
    creditTypeRoutes(routes, options);
    grantRoutes(routes, options);
    poolRoutes(routes, options);
    balanceRoutes(routes, options);
    ledgerRoutes(routes, options);
  },
  { name: 'allot-credits', fastify: '5.x', dependencies: ['allot-auth'] },
);
