/**
 * `GET /v1/customers/{id}/entitlements` and `.../entitlements/{feature}`: what the customer may
 * use, after plan, add-ons and overrides, with the usage of metered limits in the current
 * period.
 */
import { id } from '@allot/contracts';
import { formatAmount } from '@allot/contracts/amount';
import { budgetCounters, type WindowClock } from '@allot/governance';
import { type AllotApp, AppError, tenantOf } from '@allot/kit';
import type { HotState } from '@allot/kit/hot';
import type { SqlStore } from '@allot/kit/sql';
import { z } from 'zod';
import type { Catalog, CustomerView } from '../catalog.ts';

const entitlementView = z.object({
  feature: z.string(),
  type: z.string().nullable(),
  enabled: z.boolean(),
  value: z.union([z.number(), z.string()]).nullable(),
  limit: z.string().nullable(),
  resetPeriod: z.string(),
  softLimit: z.boolean(),
  usage: z
    .object({ used: z.string(), held: z.string(), remaining: z.string(), periodEnd: z.string().nullable() })
    .nullable()
    .describe('metered features with a limit: what the current period used so far'),
});

export function entitlementRoutes(
  app: AllotApp,
  deps: { catalog: Catalog; hot: HotState; sql: SqlStore; windows: WindowClock },
): void {
  async function view(tenant: string, customer: CustomerView, feature: string) {
    const e = customer.entitlements.get(feature)!;
    const spec = customer.entitlementLimits.get(feature);
    let usage: z.infer<typeof entitlementView>['usage'] = null;
    if (spec) {
      const { window, counters } = await budgetCounters(deps, tenant, customer.id, spec).catch(
        (error: unknown) => {
          throw new AppError('unavailable', `usage unavailable: ${(error as Error).message}`);
        },
      );
      const c = counters[0] ?? { used: 0n, held: 0n };
      const inUse = c.used + c.held;
      usage = {
        used: formatAmount(c.used),
        held: formatAmount(c.held),
        remaining: formatAmount(spec.limit > inUse ? spec.limit - inUse : 0n),
        periodEnd: window && window.end < Number.MAX_SAFE_INTEGER ? new Date(window.end).toISOString() : null,
      };
    }
    return {
      feature,
      type: deps.catalog.tenant(tenant).feature(feature)?.type ?? null,
      enabled: e.enabled,
      value: e.value,
      limit: e.limit === null ? null : formatAmount(e.limit),
      resetPeriod: e.resetPeriod,
      softLimit: e.softLimit,
      usage,
    };
  }

  function customerOf(tenant: string, customerId: string): CustomerView {
    const customer = deps.catalog.tenant(tenant).customer(customerId);
    if (!customer) throw new AppError('not_found', `customer ${customerId} not found`);
    return customer;
  }

  app.get(
    '/v1/customers/:customerId/entitlements',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['customers'],
        summary: "A customer's effective entitlements, with usage",
        params: z.object({ customerId: id }),
        response: { 200: z.object({ entitlements: z.array(entitlementView) }) },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const customer = customerOf(tenant, request.params.customerId);
      const features = [...customer.entitlements.keys()].sort();
      return { entitlements: await Promise.all(features.map((f) => view(tenant, customer, f))) };
    },
  );

  app.get(
    '/v1/customers/:customerId/entitlements/:feature',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['customers'],
        summary: "One of a customer's effective entitlements, with usage",
        params: z.object({ customerId: id, feature: id }),
        response: { 200: entitlementView },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const customer = customerOf(tenant, request.params.customerId);
      if (!customer.entitlements.has(request.params.feature)) {
        throw new AppError(
          'not_found',
          `customer ${customer.id} has no entitlement to ${request.params.feature}`,
        );
      }
      return view(tenant, customer, request.params.feature);
    },
  );
}
