/**
 * Tenants and their uplink credentials, the hub's NATS configuration, each tenant's
 * connection state and the usage its data plane sent up. Operator keys only (keys of the
 * control plane's own tenant): a tenant's admin key manages its configuration, not tenants.
 */
import { id } from '@allot/contracts';
import { type AllotApp, AppError, tenantOf } from '@allot/kit';
import type { ConfigStore } from '@allot/kit/config-store';
import type { SqlStore } from '@allot/kit/sql';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { hubServerConfig } from '../domain/nats-config.ts';
import { getTenant, hubUsers, listTenants, putTenant, usageSeries } from '../store/tenants.ts';
import { TENANT_ID } from '../uplink/subjects.ts';

export interface TenantRoutesOptions {
  sql: SqlStore;
  /** The control plane's configuration store (its audit log). */
  store: ConfigStore;
  /** The tenant whose keys operate the control plane. */
  operator: string;
  /** The hub's URL as data planes reach it (shown with new credentials). */
  hubUrl: string;
  /** The control plane's own NATS user on the hub. */
  controlPlaneUser: { user: string; passwordHash: string };
  /** How old a data plane's last word may be and it still counts as connected. */
  connectedWithinMs?: number;
}

const tenantView = z.object({
  id: z.string(),
  name: z.string(),
  natsUser: z.string(),
  createdAt: z.string(),
  appliedVersion: z.number(),
  health: z.record(z.string(), z.unknown()).nullable(),
  lastSeen: z.string().nullable(),
  connected: z.boolean(),
});

export function tenantRoutes(app: AllotApp, options: TenantRoutesOptions): void {
  const operatorOnly = (request: FastifyRequest) => {
    if (tenantOf(request) !== options.operator) {
      throw new AppError('forbidden', 'only the control plane operator manages tenants');
    }
  };
  const within = options.connectedWithinMs ?? 15_000;
  const show = <T extends { lastSeen: string | null }>(t: T) => ({
    ...t,
    connected: t.lastSeen !== null && Date.now() - Date.parse(t.lastSeen) < within,
  });
  const params = z.object({
    tenantId: z
      .string()
      .regex(
        TENANT_ID,
        'expected 1-63 of a-z 0-9 _ - (a NATS subject token), starting with a letter or digit',
      ),
  });

  app.put(
    '/v1/tenants/:tenantId',
    {
      schema: {
        tags: ['control plane'],
        summary: 'Create a tenant, or rotate its uplink password (shown once)',
        params,
        body: z.object({ name: z.string().min(1).max(200) }),
        response: {
          200: z.object({
            tenant: tenantView,
            credentials: z.object({
              url: z.string(),
              user: z.string(),
              password: z.string(),
              subjects: z.string(),
            }),
          }),
        },
      },
    },
    async (request) => {
      operatorOnly(request);
      const { tenant, password } = await putTenant(options.sql, request.params.tenantId, request.body.name);
      return {
        tenant: show(tenant),
        credentials: {
          url: options.hubUrl,
          user: tenant.natsUser,
          password,
          subjects: `allot.${tenant.id}.>`,
        },
      };
    },
  );

  app.get(
    '/v1/tenants',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['control plane'],
        summary: 'Tenants with their connection state and applied configuration version',
        response: { 200: z.object({ items: z.array(tenantView) }) },
      },
    },
    async (request) => {
      operatorOnly(request);
      return { items: (await listTenants(options.sql)).map(show) };
    },
  );

  app.get(
    '/v1/tenants/:tenantId',
    {
      config: { auth: 'read' },
      schema: { tags: ['control plane'], summary: 'One tenant', params, response: { 200: tenantView } },
    },
    async (request) => {
      operatorOnly(request);
      const tenant = await getTenant(options.sql, request.params.tenantId);
      if (!tenant) throw new AppError('not_found', `tenant ${request.params.tenantId} not found`);
      return show(tenant);
    },
  );

  app.get(
    '/v1/control-plane/nats.conf',
    {
      schema: {
        tags: ['control plane'],
        summary: "The hub's nats-server configuration: a user per tenant limited to allot.<tenant>.>",
        querystring: z.object({ port: z.coerce.number().int().min(1).max(65535).optional() }),
      },
    },
    async (request, reply) => {
      operatorOnly(request);
      const config = hubServerConfig({
        controlPlane: options.controlPlaneUser,
        tenants: await hubUsers(options.sql),
        ...(request.query.port ? { port: request.query.port } : {}),
      });
      return reply.type('text/plain; charset=utf-8').send(config);
    },
  );

  app.get(
    '/v1/audit',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['control plane'],
        summary: 'Who changed what configuration, and when, newest first',
        querystring: z.object({
          before: z.coerce.number().int().min(1).optional(),
          limit: z.coerce.number().int().min(1).max(500).default(100),
        }),
        response: {
          200: z.object({
            entries: z.array(
              z.object({
                version: z.number(),
                kind: z.string(),
                id: z.string(),
                action: z.enum(['put', 'delete']),
                body: z.unknown(),
                actor: z.string(),
                at: z.string(),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const entries = await options.store.audit(tenantOf(request), {
        limit: request.query.limit,
        ...(request.query.before ? { before: request.query.before } : {}),
      });
      return { entries: entries.map((e) => ({ ...e, at: e.at.toISOString() })) };
    },
  );

  app.get(
    '/v1/analytics/usage',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['control plane'],
        summary: 'Usage per window from the aggregates the data plane sent up',
        querystring: z.object({
          meter: id,
          customerId: id.optional(),
          from: z.iso.datetime({ offset: true }).optional(),
          to: z.iso.datetime({ offset: true }).optional(),
          windowSize: z.enum(['MINUTE', 'HOUR', 'DAY']).default('HOUR'),
        }),
        response: {
          200: z.object({
            data: z.array(z.object({ windowStart: z.string(), customerId: z.string(), value: z.number() })),
          }),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const data = await usageSeries(options.sql, tenantOf(request), {
        meter: q.meter,
        windowSize: q.windowSize,
        ...(q.customerId ? { customerId: q.customerId } : {}),
        ...(q.from ? { from: new Date(q.from) } : {}),
        ...(q.to ? { to: new Date(q.to) } : {}),
      });
      return { data };
    },
  );
}
