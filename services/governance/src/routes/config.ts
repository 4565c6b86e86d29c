/**
 * Governance configuration routes: the entity tree, budgets and limits, and blocks (the kill
 * switch). They write to the configuration store; the gate has the change in memory before
 * the write returns, and every other gate process within a second (pushed, or polled).
 */
import { config, id } from '@allot/contracts';
import { parseAmount } from '@allot/contracts/amount';
import type { AllotApp } from '@allot/kit';
import { type ConfigReplica, type ConfigStore, documentRoutes } from '@allot/kit/config-store';
import { z } from 'zod';
import { isTimeZone, PeriodError, parsePeriod } from '../domain/periods.ts';
import { type Entity, entityPlacementProblem } from '../domain/scope.ts';

export interface GovernanceConfigRoutesOptions {
  store: ConfigStore;
  replica: ConfigReplica;
}

/** One customer's entity tree as the replica has it. */
export function entityTreeOf(
  replica: ConfigReplica,
  tenant: string,
  customerId: string,
): Map<string, Entity> {
  const tree = new Map<string, Entity>();
  const prefix = `${customerId}/`;
  for (const doc of replica.list(tenant, 'entity')) {
    if (!doc.id.startsWith(prefix)) continue;
    const body = doc.body as { type: string; parentId?: string };
    const entityId = doc.id.slice(prefix.length);
    tree.set(entityId, { id: entityId, type: body.type, parentId: body.parentId ?? null });
  }
  return tree;
}

function budgetProblem(replica: ConfigReplica, tenant: string, body: config.BudgetBody): string | null {
  if (!replica.get(tenant, 'customer', body.customerId))
    return `customerId: customer '${body.customerId}' not found`;
  try {
    parsePeriod(body.period);
  } catch (error) {
    if (error instanceof PeriodError) return `period: ${error.message}`;
    throw error;
  }
  if (body.timeZone !== undefined && !isTimeZone(body.timeZone)) {
    return `timeZone: '${body.timeZone}' is not an IANA time zone (like Europe/Berlin)`;
  }
  if (body.metric.startsWith('units:')) {
    const feature = body.metric.slice('units:'.length);
    if (!replica.get(tenant, 'feature', feature)) return `metric: feature '${feature}' not found`;
  }
  try {
    parseAmount(body.limit);
  } catch (error) {
    return `limit: ${(error as Error).message}`;
  }
  if (body.kind === 'concurrency' && body.limit.includes('.')) {
    return 'limit: a concurrency limit counts reservations in flight: a whole number';
  }
  if (body.kind === 'concurrency' && body.metric !== 'requests' && body.metric !== 'credits') {
    return 'metric: a concurrency limit counts reservations; leave metric out';
  }
  return null;
}

export function governanceConfigRoutes(
  app: AllotApp,
  { store, replica }: GovernanceConfigRoutesOptions,
): void {
  const entityParams = z.object({ customerId: id, entityId: id });
  documentRoutes(app, {
    store,
    replica,
    kind: 'entity',
    tag: 'governance',
    noun: 'entity',
    path: '/v1/customers/:customerId/entities/:entityId',
    params: entityParams,
    docId: (p) => `${p.customerId}/${p.entityId}`,
    paramsOf: (docId) => {
      const slash = docId.indexOf('/');
      return { customerId: docId.slice(0, slash), entityId: docId.slice(slash + 1) };
    },
    body: config.entityBody,
    check: (tenant, params, body) => {
      if (!replica.get(tenant, 'customer', params.customerId))
        return `customer '${params.customerId}' not found`;
      const tree = entityTreeOf(replica, tenant, params.customerId);
      const problem = entityPlacementProblem(tree, {
        id: params.entityId,
        type: body.type,
        parentId: body.parentId ?? null,
      });
      return problem === null ? null : `parentId: ${problem}`;
    },
    list: {
      path: '/v1/customers/:customerId/entities',
      params: z.object({ customerId: id }),
      prefix: (p) => `${p.customerId}/`,
    },
  });
  documentRoutes(app, {
    store,
    replica,
    kind: 'budget',
    tag: 'governance',
    noun: 'budget',
    path: '/v1/budgets/:budgetId',
    params: z.object({ budgetId: id }),
    docId: (p) => p.budgetId,
    paramsOf: (budgetId) => ({ budgetId }),
    body: config.budgetBody,
    check: (tenant, _, body) => budgetProblem(replica, tenant, body),
    list: { path: '/v1/budgets' },
  });
  documentRoutes(app, {
    store,
    replica,
    kind: 'block',
    tag: 'governance',
    noun: 'block',
    path: '/v1/blocks/:blockId',
    params: z.object({ blockId: id }),
    docId: (p) => p.blockId,
    paramsOf: (blockId) => ({ blockId }),
    body: config.blockBody,
    list: { path: '/v1/blocks' },
  });
}
