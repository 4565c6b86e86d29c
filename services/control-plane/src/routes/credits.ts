/**
 * Credit types and grants on a control plane of its own (the all-in-one process serves the
 * data plane's routes instead): both become documents that go down the uplink, and the data
 * plane applies them through its credits engine, a grant once per idempotency key.
 */
import { credits, id } from '@allot/contracts';
import { type AllotApp, AppError, actorOf, tenantOf } from '@allot/kit';
import { type ConfigReplica, type ConfigStore, canonicalJson, documentRoutes } from '@allot/kit/config-store';
import { z } from 'zod';

export function creditRoutes(app: AllotApp, options: { store: ConfigStore; replica: ConfigReplica }): void {
  documentRoutes(app, {
    ...options,
    kind: 'credit-type',
    tag: 'credits',
    noun: 'credit type',
    path: '/v1/credit-types/:key',
    params: z.object({ key: id }),
    docId: (p) => p.key,
    paramsOf: (key) => ({ key }),
    body: credits.creditTypeBody,
    list: { path: '/v1/credit-types' },
  });

  app.post(
    '/v1/customers/:customerId/grants',
    {
      schema: {
        tags: ['credits'],
        summary: 'Grant credits: sent down to the data plane, applied once per idempotencyKey',
        params: z.object({ customerId: id }),
        body: credits.grantBody,
        response: {
          202: z.object({
            customerId: z.string(),
            idempotencyKey: z.string(),
            status: z.literal('sent'),
            version: z.number(),
          }),
        },
      },
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const { customerId } = request.params;
      const body = request.body;
      if (!options.replica.get(tenant, 'customer', customerId)) {
        throw new AppError('unprocessable', `customer '${customerId}' not found`);
      }
      const docId = `${customerId}/${body.idempotencyKey}`;
      const existing = await options.store.get(tenant, 'grant', docId);
      if (existing && canonicalJson(existing.body) !== canonicalJson(body)) {
        throw new AppError('idempotency_conflict', 'this idempotencyKey was used for another grant');
      }
      const { document } = await options.store.put(tenant, 'grant', docId, body, actorOf(request));
      await options.replica.waitFor(tenant, document.version);
      return reply.code(202).send({
        customerId,
        idempotencyKey: body.idempotencyKey,
        status: 'sent' as const,
        version: document.version,
      });
    },
  );
}
