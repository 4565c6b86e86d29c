import { randomUUID } from 'node:crypto';
import { credits, id, idempotencyKey } from '@allot/contracts';
import { type AllotApp, AppError } from '@allot/kit';
import { z } from 'zod';
import { formatAmount, parseAmount } from '../domain/amount.ts';
import { hotGrantMeta } from '../domain/burn-order.ts';
import { GrantConflictError, type GrantRecord, insertGrant } from '../store/ledger.ts';
import { findGrant } from '../store/queries.ts';
import { type CreditsRoutesOptions, iso, tenantOf } from './context.ts';

export function grantView(grant: GrantRecord): z.infer<typeof credits.grant> {
  return {
    id: grant.id,
    customerId: grant.customerId,
    creditType: grant.creditType,
    resourceId: grant.resourceId || null,
    amount: formatAmount(grant.amount),
    category: grant.category,
    priority: grant.priority,
    effectiveAt: grant.effectiveAt.toISOString(),
    expiresAt: iso(grant.expiresAt),
    costBasis: grant.costBasis,
    metadata: grant.metadata,
    createdAt: grant.createdAt.toISOString(),
    voidedAt: iso(grant.voidedAt),
    expiredAt: iso(grant.expiredAt),
  };
}

/**
 * Adds a grant: written to PostgreSQL (the record), then made spendable in the hot state. A
 * retry with the same idempotencyKey returns the same grant and finishes whatever the first
 * attempt could not; the same key with another grant is an idempotency conflict (409). Also
 * what a data plane runs for a grant the control plane sent down.
 */
export async function addGrant(
  { sql, engine }: CreditsRoutesOptions,
  tenant: string,
  customerId: string,
  body: z.output<typeof credits.grantBody>,
): Promise<{ grant: GrantRecord; created: boolean }> {
  let stored: { grant: GrantRecord; created: boolean };
  try {
    stored = await insertGrant(sql, {
      tenant,
      id: `gr_${randomUUID()}`,
      customerId,
      creditType: body.creditType,
      resourceId: body.resourceId ?? '',
      amount: parseAmount(body.amount),
      category: body.category,
      ...(body.priority === undefined ? {} : { priority: body.priority }),
      ...(body.effectiveAt === undefined ? {} : { effectiveAt: new Date(body.effectiveAt) }),
      expiresAt: body.expiresAt ? new Date(body.expiresAt) : null,
      costBasis: body.costBasis ?? null,
      metadata: body.metadata ?? {},
      idempotencyKey: body.idempotencyKey,
    });
  } catch (error) {
    if (error instanceof GrantConflictError) throw new AppError('idempotency_conflict', error.message);
    throw error;
  }
  const grant = stored.grant;
  if (!grant.voidedAt && !grant.expiredAt) {
    await engine.addGrant({
      tenant,
      customerId: grant.customerId,
      creditType: grant.creditType,
      resourceId: grant.resourceId,
      grantId: grant.id,
      amount: grant.amount,
      meta: hotGrantMeta(grant),
    });
  }
  return stored;
}

/**
 * `POST /v1/customers/{id}/grants` adds credits: the grant is written to PostgreSQL (the
 * record), then made spendable in the hot state. A retry with the same idempotencyKey returns
 * the same grant and finishes whatever the first attempt could not.
 */
export function grantRoutes(app: AllotApp, { sql, engine }: CreditsRoutesOptions): void {
  app.post(
    '/v1/customers/:customerId/grants',
    {
      schema: {
        tags: ['credits'],
        summary: 'Grant credits to a customer',
        params: z.object({ customerId: id }),
        body: credits.grantBody,
        response: { 200: credits.grant, 201: credits.grant },
      },
    },
    async (request, reply) => {
      const stored = await addGrant(
        { sql, engine },
        tenantOf(request),
        request.params.customerId,
        request.body,
      );
      return reply.code(stored.created ? 201 : 200).send(grantView(stored.grant));
    },
  );

  app.post(
    '/v1/customers/:customerId/grants/:grantId/void',
    {
      schema: {
        tags: ['credits'],
        summary: 'Void what is left of a grant',
        params: z.object({ customerId: id, grantId: z.string().min(1).max(200) }),
        body: z.object({ idempotencyKey: idempotencyKey.optional() }).optional(),
        response: { 200: z.object({ grantId: z.string(), voided: z.string() }) },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const grant = await findGrant(sql, tenant, request.params.customerId, request.params.grantId);
      if (!grant) throw new AppError('not_found', `grant ${request.params.grantId} not found`);
      if (grant.expiredAt)
        throw new AppError('conflict', `grant ${grant.id} has expired; nothing is left to void`);
      const result = await engine.retireGrant({
        tenant,
        customerId: grant.customerId,
        creditType: grant.creditType,
        resourceId: grant.resourceId,
        grantId: grant.id,
        kind: 'voided',
      });
      if (result.status === 'expired')
        throw new AppError('conflict', `grant ${grant.id} has expired; nothing is left to void`);
      return { grantId: grant.id, voided: formatAmount(result.amount) };
    },
  );
}
