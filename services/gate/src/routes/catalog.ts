/**
 * The catalog's configuration routes: features, plans, add-ons, customers and subscriptions.
 * They write to the data plane's configuration store (the control plane will sit in front of
 * it later, with the same documents) and check what needs the rest of the configuration:
 * features exist, formulas compile, a subscription's plan and add-ons exist.
 */
import { config, id } from '@allot/contracts';
import { parseAmount } from '@allot/contracts/amount';
import type { AllotApp } from '@allot/kit';
import { type ConfigReplica, type ConfigStore, documentRoutes } from '@allot/kit/config-store';
import { z } from 'zod';
import { compileFormula, FormulaError } from '../domain/formula.ts';

export interface ConfigRoutesOptions {
  store: ConfigStore;
  replica: ConfigReplica;
}

/** An amount too large for the hot path (2^53 micro-units), named by its field. */
function amountProblem(field: string, text: string | undefined): string | null {
  if (text === undefined) return null;
  try {
    parseAmount(text);
    return null;
  } catch (error) {
    return `${field}: ${(error as Error).message}`;
  }
}

function entitlementsProblem(
  replica: ConfigReplica,
  tenant: string,
  field: string,
  list: readonly config.Entitlement[],
): string | null {
  for (const [i, e] of list.entries()) {
    if (!replica.get(tenant, 'feature', e.feature))
      return `${field}.${i}.feature: feature '${e.feature}' not found`;
    const problem = amountProblem(`${field}.${i}.limit`, e.limit);
    if (problem) return problem;
  }
  return null;
}

function planProblem(replica: ConfigReplica, tenant: string, plan: config.PlanBody): string | null {
  const entitlements = entitlementsProblem(replica, tenant, 'entitlements', plan.entitlements);
  if (entitlements) return entitlements;
  for (const [i, r] of plan.creditRates.entries()) {
    if (!replica.get(tenant, 'feature', r.feature))
      return `creditRates.${i}.feature: feature '${r.feature}' not found`;
    const rate = amountProblem(`creditRates.${i}.rate`, r.rate);
    if (rate) return rate;
    if (r.formula !== undefined) {
      try {
        compileFormula(r.formula);
      } catch (error) {
        if (error instanceof FormulaError) return `creditRates.${i}.formula: ${error.message}`;
        throw error;
      }
    }
  }
  return null;
}

export function catalogRoutes(app: AllotApp, { store, replica }: ConfigRoutesOptions): void {
  const keyParams = z.object({ key: id });
  documentRoutes(app, {
    store,
    replica,
    kind: 'feature',
    tag: 'catalog',
    noun: 'feature',
    path: '/v1/features/:key',
    params: keyParams,
    docId: (p) => p.key,
    paramsOf: (key) => ({ key }),
    body: config.featureBody,
    list: { path: '/v1/features' },
  });
  for (const kind of ['plan', 'addon'] as const) {
    documentRoutes(app, {
      store,
      replica,
      kind,
      tag: 'catalog',
      noun: kind === 'plan' ? 'plan' : 'add-on',
      path: `/v1/${kind}s/:key`,
      params: keyParams,
      docId: (p) => p.key,
      paramsOf: (key) => ({ key }),
      body: config.planBody,
      check: (tenant, _, body) => planProblem(replica, tenant, body),
      list: { path: `/v1/${kind}s` },
    });
  }
  documentRoutes(app, {
    store,
    replica,
    kind: 'customer',
    tag: 'customers',
    noun: 'customer',
    path: '/v1/customers/:customerId',
    params: z.object({ customerId: id }),
    docId: (p) => p.customerId,
    paramsOf: (customerId) => ({ customerId }),
    body: config.customerBody,
    list: { path: '/v1/customers' },
  });
  documentRoutes(app, {
    store,
    replica,
    kind: 'subscription',
    tag: 'customers',
    noun: 'subscription',
    path: '/v1/customers/:customerId/subscription',
    params: z.object({ customerId: id }),
    docId: (p) => p.customerId,
    paramsOf: (customerId) => ({ customerId }),
    body: config.subscriptionBody,
    check: (tenant, params, body) => {
      if (!replica.get(tenant, 'customer', params.customerId))
        return `customer '${params.customerId}' not found`;
      if (!replica.get(tenant, 'plan', body.plan)) return `plan: plan '${body.plan}' not found`;
      for (const [i, addon] of body.addons.entries()) {
        if (!replica.get(tenant, 'addon', addon)) return `addons.${i}: add-on '${addon}' not found`;
      }
      return entitlementsProblem(replica, tenant, 'overrides', body.overrides);
    },
  });
}
