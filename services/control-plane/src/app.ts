import { catalogRoutes } from '@allot/gate';
import { governanceConfigRoutes } from '@allot/governance';
import { type AllotApp, AppError } from '@allot/kit';
import type { SqlStore } from '@allot/kit/sql';
import { meterRoutes } from '@allot/metering';
import fp from 'fastify-plugin';
import { creditRoutes } from './routes/credits.ts';
import { type TenantRoutesOptions, tenantRoutes } from './routes/tenants.ts';
import type { ControlPlane } from './service.ts';
import { TENANT_ID } from './uplink/subjects.ts';

export interface ControlPlanePluginOptions extends Omit<TenantRoutesOptions, 'sql' | 'store'> {
  sql: SqlStore;
  controlPlane: ControlPlane;
  /**
   * Serve credit types and grants (as documents sent down). Default true; false where the data
   * plane's own credits routes are on the same port (the all-in-one process).
   */
  creditRoutes?: boolean;
}

/**
 * The control plane's HTTP API: the configuration routes (the same model and checks as a data
 * plane's, on the control plane's store: changes go down the uplink), tenants and their
 * credentials, the hub's NATS configuration, usage from the aggregates sent up.
 */
export const controlPlanePlugin = fp<ControlPlanePluginOptions>(
  async (app, options) => {
    const routes = app as unknown as AllotApp;
    // The operator acts for a tenant by naming it: `x-allot-tenant: <id>` on an operator admin key.
    app.addHook('preHandler', async (request) => {
      const asTenant = request.headers['x-allot-tenant'];
      const principal = request.principal;
      if (typeof asTenant !== 'string' || !principal) return;
      if (principal.tenant !== options.operator || !principal.scopes.includes('admin')) {
        throw new AppError('forbidden', 'x-allot-tenant: only an operator admin key acts for another tenant');
      }
      if (!TENANT_ID.test(asTenant)) throw new AppError('invalid_request', 'x-allot-tenant: not a tenant id');
      request.principal = { ...principal, tenant: asTenant };
    });
    const config = { store: options.controlPlane.store, replica: options.controlPlane.replica };
    catalogRoutes(routes, config);
    governanceConfigRoutes(routes, config);
    meterRoutes(routes, config);
    if (options.creditRoutes !== false) creditRoutes(routes, config);
    tenantRoutes(routes, { ...options, store: options.controlPlane.store });
  },
  { name: 'allot-control-plane', fastify: '5.x', dependencies: ['allot-auth'] },
);
