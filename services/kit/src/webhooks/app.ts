import fp from 'fastify-plugin';
import { z } from 'zod';
import type { AllotApp } from '../app.ts';
import { tenantOf } from '../auth.ts';
import { AppError } from '../errors.ts';
import type { SqlStore } from '../sql/port.ts';
import { migrateWebhooks } from './migrations.ts';
import {
  deleteEndpoint,
  deliveryPage,
  findEndpoint,
  InvalidDeliveryCursorError,
  listEndpoints,
  upsertEndpoint,
  type WebhookEndpoint,
} from './store.ts';

export interface WebhooksPluginOptions {
  sql: SqlStore;
}

const endpointId = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'expected 1-128 characters of A-Z a-z 0-9 . _ : -');

/** `credits.balance.low`, `credits.*` or `*`. */
export const eventPattern = z
  .string()
  .max(128)
  .regex(
    /^(\*|[a-z0-9_-]+(\.[a-z0-9_-]+)*(\.\*)?)$/,
    'expected an event type (credits.balance.low), a prefix (credits.*) or *',
  );

export const webhookBody = z.object({
  url: z
    .url({ protocol: /^https?$/, hostname: /./, message: 'expected an http:// or https:// URL' })
    .max(2048),
  events: z
    .array(eventPattern)
    .min(1, 'subscribe to at least one event type')
    .max(100)
    .describe('event types delivered: exact, a prefix like credits.*, or * for all'),
  secret: z
    .string()
    .min(16)
    .max(256)
    .optional()
    .describe('the signing secret; absent: generated on creation (returned once) and kept on update'),
  rotateSecret: z.boolean().optional().describe('replace the secret with a generated one, returned once'),
  description: z.string().max(500).optional(),
});

const webhookView = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  description: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const webhookWithSecret = webhookView.extend({
  secret: z
    .string()
    .optional()
    .describe('present only when this call generated it: store it now, it is never shown again'),
});

const deliveryView = z.object({
  eventId: z.string(),
  eventType: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number(),
  responseCode: z.number().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: z.string().nullable(),
  deliveredAt: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const errorBody = z.object({ code: z.string(), message: z.string(), requestId: z.string() });

function view(endpoint: WebhookEndpoint): z.infer<typeof webhookView> {
  return {
    id: endpoint.id,
    url: endpoint.url,
    events: endpoint.events,
    description: endpoint.description,
    createdAt: endpoint.createdAt.toISOString(),
    updatedAt: endpoint.updatedAt.toISOString(),
  };
}

/** Applies the `webhooks` migrations on registration, then serves the routes. */
export const webhooksPlugin = fp<WebhooksPluginOptions>(
  async (instance, { sql }) => {
    await migrateWebhooks(sql);
    const app = instance as unknown as AllotApp;

    app.put(
      '/v1/webhooks/:id',
      {
        schema: {
          tags: ['webhooks'],
          summary: 'Create or update a webhook endpoint',
          params: z.object({ id: endpointId }),
          body: webhookBody,
          response: { 200: webhookWithSecret, 201: webhookWithSecret, 400: errorBody },
        },
      },
      async (request, reply) => {
        const body = request.body;
        const result = await upsertEndpoint(sql, {
          tenant: tenantOf(request),
          id: request.params.id,
          url: body.url,
          events: [...new Set(body.events)],
          description: body.description ?? null,
          ...(body.secret === undefined ? {} : { secret: body.secret }),
          ...(body.rotateSecret === undefined ? {} : { rotateSecret: body.rotateSecret }),
        });
        return reply.code(result.created ? 201 : 200).send({
          ...view(result.endpoint),
          ...(result.generatedSecret === null ? {} : { secret: result.generatedSecret }),
        });
      },
    );

    app.get(
      '/v1/webhooks',
      {
        schema: {
          tags: ['webhooks'],
          summary: "The tenant's webhook endpoints (secrets are never returned)",
          response: { 200: z.object({ webhooks: z.array(webhookView) }) },
        },
      },
      async (request) => ({ webhooks: (await listEndpoints(sql, tenantOf(request))).map(view) }),
    );

    app.delete(
      '/v1/webhooks/:id',
      {
        schema: {
          tags: ['webhooks'],
          summary: 'Delete a webhook endpoint, its pending deliveries and its delivery log',
          params: z.object({ id: endpointId }),
          response: { 204: z.null(), 404: errorBody },
        },
      },
      async (request, reply) => {
        const deleted = await deleteEndpoint(sql, tenantOf(request), request.params.id);
        if (!deleted) throw new AppError('not_found', `webhook ${request.params.id} not found`);
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/v1/webhooks/:id/deliveries',
      {
        config: { auth: 'read' },
        schema: {
          tags: ['webhooks'],
          summary: "An endpoint's delivery log, newest first",
          params: z.object({ id: endpointId }),
          querystring: z.object({
            cursor: z.string().max(200).optional(),
            limit: z.coerce.number().int().min(1).max(200).default(50),
          }),
          response: {
            200: z.object({ deliveries: z.array(deliveryView), nextCursor: z.string().nullable() }),
            400: errorBody,
            404: errorBody,
          },
        },
      },
      async (request) => {
        const tenant = tenantOf(request);
        const endpoint = await findEndpoint(sql, tenant, request.params.id);
        if (!endpoint) throw new AppError('not_found', `webhook ${request.params.id} not found`);
        try {
          const page = await deliveryPage(sql, tenant, endpoint.id, {
            cursor: request.query.cursor ?? null,
            limit: request.query.limit,
          });
          return {
            deliveries: page.deliveries.map((d) => ({
              eventId: d.eventId,
              eventType: d.eventType,
              status: d.status,
              attempts: d.attempts,
              responseCode: d.responseCode,
              lastError: d.lastError,
              nextAttemptAt: d.nextAttemptAt?.toISOString() ?? null,
              deliveredAt: d.deliveredAt?.toISOString() ?? null,
              createdAt: d.createdAt.toISOString(),
              updatedAt: d.updatedAt.toISOString(),
            })),
            nextCursor: page.nextCursor,
          };
        } catch (error) {
          if (error instanceof InvalidDeliveryCursorError)
            throw new AppError('invalid_request', `query.cursor: ${error.message}`);
          throw error;
        }
      },
    );
  },
  { name: 'allot-webhooks', fastify: '5.x', dependencies: ['allot-auth'] },
);
