/**
 * Webhooks end to end: the routes, and events published to the EVENTS stream reaching a real
 * HTTP receiver on 127.0.0.1, signed, retried with backoff, once per (event, endpoint), across a
 * dispatcher restart. On PostgreSQL with NATS, and on PGlite with the embedded bus.
 */

import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AllotApp, createApp } from '../src/app.ts';
import { StaticApiKeyStore } from '../src/auth.ts';
import type { SqlStore } from '../src/sql/port.ts';
import {
  type BusFixture,
  freshEmbeddedBus,
  freshNatsBus,
  freshPgDatabase,
  freshPgliteStore,
  until,
} from '../src/testing/index.ts';
import { webhooksPlugin } from '../src/webhooks/app.ts';
import { WebhookDispatcher, type WebhookDispatcherOptions } from '../src/webhooks/dispatcher.ts';
import { type AllotEvent, eventSubject, eventsStreamConfig, publishEvent } from '../src/webhooks/events.ts';
import { verifyWebhook } from '../src/webhooks/signature.ts';

const adminKey = 'allot_webhooks_admin_key_0000000';
const readKey = 'allot_webhooks_read_key_00000000';
const otherKey = 'allot_webhooks_other_tenant_0000';
const admin = { authorization: `Bearer ${adminKey}` };
const reader = { authorization: `Bearer ${readKey}` };
const other = { authorization: `Bearer ${otherKey}` };

interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  status: number;
}

/** An HTTP receiver that answers `plan(eventId, attempt)` and records every request. */
class Receiver {
  readonly requests: Received[] = [];
  plan: (eventId: string, attempt: number) => number = () => 200;
  readonly #server: FastifyInstance = Fastify();
  url = '';

  async start(): Promise<void> {
    this.#server.removeContentTypeParser('application/json');
    this.#server.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) =>
      done(null, body),
    );
    this.#server.post('/hooks/:name', async (request, reply) => {
      const eventId = String(request.headers['allot-event-id']);
      const path = request.url;
      const seen = this.requests.filter(
        (r) => r.headers['allot-event-id'] === eventId && r.path === path,
      ).length;
      const status = this.plan(eventId, seen + 1);
      this.requests.push({ headers: request.headers, body: request.body as string, status, path });
      return reply.code(status).send(status >= 300 ? `receiver says no (${seen + 1})` : 'ok');
    });
    await this.#server.listen({ host: '127.0.0.1', port: 0 });
    const address = this.#server.server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    this.url = `http://127.0.0.1:${address.port}`;
  }

  /** What one endpoint (by its path) received of one event. */
  forEvent(eventId: string, path: string): Received[] {
    return this.requests.filter((r) => r.headers['allot-event-id'] === eventId && r.path === path);
  }

  close(): Promise<void> {
    return this.#server.close();
  }
}

interface Backend {
  name: string;
  open(): Promise<{ sql: SqlStore; bus: BusFixture; close(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'PostgreSQL and NATS',
    async open() {
      const db = await freshPgDatabase();
      const bus = await freshNatsBus();
      return {
        sql: db.store,
        bus,
        async close() {
          await bus.cleanup();
          await db.drop();
        },
      };
    },
  },
  {
    name: 'PGlite and the embedded bus',
    async open() {
      const sql = await freshPgliteStore();
      const bus = await freshEmbeddedBus();
      return {
        sql,
        bus,
        async close() {
          await bus.cleanup();
          await sql.close();
        },
      };
    },
  },
];

let sequence = 0;
function event(
  type: string,
  tenant = 'acme',
  data: Record<string, unknown> = { available: '4.5' },
): AllotEvent {
  sequence++;
  return {
    id: `evt_${Date.now().toString(36)}_${sequence}`,
    type,
    tenant,
    occurredAt: new Date().toISOString(),
    customerId: 'cust-1',
    data,
  };
}

describe.each(backends)('webhooks on $name', (backend) => {
  let stores: Awaited<ReturnType<Backend['open']>>;
  let app: AllotApp;
  let receiver: Receiver;
  const dispatchers: WebhookDispatcher[] = [];

  const fast: Partial<WebhookDispatcherOptions> = {
    retry: { initialDelayMs: 40, maxDelayMs: 200, jitter: 0.2, maxAgeMs: 60_000 },
    pollMs: 20,
    fetchExpiresMs: 100,
    timeoutMs: 2000,
  };

  async function dispatcher(options: Partial<WebhookDispatcherOptions> = {}): Promise<WebhookDispatcher> {
    const d = new WebhookDispatcher({ sql: stores.sql, bus: stores.bus.bus, ...fast, ...options });
    await d.start();
    dispatchers.push(d);
    return d;
  }

  const put = (id: string, payload: Record<string, unknown>, headers = admin) =>
    app.inject({ method: 'PUT', url: `/v1/webhooks/${id}`, headers, payload });

  async function deliveries(id: string, query = '') {
    const res = await app.inject({ url: `/v1/webhooks/${id}/deliveries${query}`, headers: reader });
    expect(res.statusCode).toBe(200);
    return res.json() as {
      deliveries: {
        eventId: string;
        status: string;
        attempts: number;
        responseCode: number | null;
        lastError: string | null;
        deliveredAt: string | null;
      }[];
      nextCursor: string | null;
    };
  }

  async function deliveryOf(id: string, eventId: string) {
    return (await deliveries(id)).deliveries.find((d) => d.eventId === eventId);
  }

  beforeAll(async () => {
    stores = await backend.open();
    await stores.bus.bus.ensureStream(eventsStreamConfig);
    receiver = new Receiver();
    await receiver.start();
    app = await createApp({
      service: 'webhooks-test',
      logLevel: false,
      apiKeys: new StaticApiKeyStore([
        { key: adminKey, principal: { keyId: 'a', tenant: 'acme', scopes: ['admin'] } },
        { key: readKey, principal: { keyId: 'r', tenant: 'acme', scopes: ['read'] } },
        { key: otherKey, principal: { keyId: 'o', tenant: 'globex', scopes: ['admin'] } },
      ]),
    });
    await app.register(webhooksPlugin, { sql: stores.sql });
    await app.ready();
  }, 60_000);

  afterEach(async () => {
    await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
    receiver.plan = () => 200;
  });

  afterAll(async () => {
    await app?.close();
    await receiver?.close();
    await stores?.close();
  });

  describe('routes', () => {
    it('creates an endpoint and shows its generated secret once', async () => {
      const created = await put('ops', { url: `${receiver.url}/hooks/ops`, events: ['credits.*'] });
      expect(created.statusCode).toBe(201);
      expect(created.json()).toMatchObject({
        id: 'ops',
        url: `${receiver.url}/hooks/ops`,
        events: ['credits.*'],
      });
      expect(created.json().secret).toMatch(/^whsec_/);

      const updated = await put('ops', { url: `${receiver.url}/hooks/ops2`, events: ['credits.*', '*'] });
      expect(updated.statusCode).toBe(200);
      expect(updated.json()).not.toHaveProperty('secret');
      expect(updated.json().url).toBe(`${receiver.url}/hooks/ops2`);

      const rotated = await put('ops', {
        url: `${receiver.url}/hooks/ops2`,
        events: ['*'],
        rotateSecret: true,
      });
      expect(rotated.json().secret).toMatch(/^whsec_/);
      expect(rotated.json().secret).not.toBe(created.json().secret);

      const own = await put('own', {
        url: 'https://example.com/x',
        events: ['credits.balance.low'],
        secret: 'my-own-secret-0123456789',
      });
      expect(own.statusCode).toBe(201);
      expect(own.json()).not.toHaveProperty('secret');

      const list = await app.inject({ url: '/v1/webhooks', headers: admin });
      expect(list.statusCode).toBe(200);
      expect(list.json().webhooks.map((w: { id: string }) => w.id)).toEqual(['ops', 'own']);
      expect(JSON.stringify(list.json())).not.toContain('whsec_');
      expect(JSON.stringify(list.json())).not.toContain('my-own-secret');

      expect(
        (await app.inject({ method: 'DELETE', url: '/v1/webhooks/own', headers: admin })).statusCode,
      ).toBe(204);
      expect(
        (await app.inject({ method: 'DELETE', url: '/v1/webhooks/own', headers: admin })).statusCode,
      ).toBe(404);
      expect(
        (await app.inject({ method: 'DELETE', url: '/v1/webhooks/ops', headers: admin })).statusCode,
      ).toBe(204);
    });

    it('rejects bad bodies with 400 naming the field, and stores nothing', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ url: 'ftp://example.com/x', events: ['*'] }, 'body.url'],
        [{ url: 'javascript:alert(1)', events: ['*'] }, 'body.url'],
        [{ url: 'not a url', events: ['*'] }, 'body.url'],
        [{ events: ['*'] }, 'body.url'],
        [{ url: 'https://example.com/x', events: [] }, 'body.events'],
        [{ url: 'https://example.com/x' }, 'body.events'],
        [{ url: 'https://example.com/x', events: ['credits.*', 'Credits Low'] }, 'body.events.1'],
        [{ url: 'https://example.com/x', events: ['*'], secret: 'short' }, 'body.secret'],
      ];
      for (const [payload, field] of cases) {
        const res = await put('bad', payload);
        expect(res.statusCode, JSON.stringify(payload)).toBe(400);
        expect(res.json().code).toBe('invalid_request');
        expect(res.json().message).toContain(field);
      }
      const badId = await put('bad id!', { url: 'https://example.com/x', events: ['*'] });
      expect(badId.statusCode).toBe(400);
      expect(badId.json().message).toContain('params.id');
      const list = await app.inject({ url: '/v1/webhooks', headers: admin });
      expect(list.json().webhooks).toEqual([]);
    });

    it('needs admin to configure, read to see deliveries, and keeps tenants apart', async () => {
      expect((await put('x', { url: 'https://example.com/x', events: ['*'] }, reader)).statusCode).toBe(403);
      expect((await app.inject({ url: '/v1/webhooks', headers: reader })).statusCode).toBe(403);
      expect((await app.inject({ url: '/v1/webhooks' })).statusCode).toBe(401);
      await put('mine', { url: 'https://example.com/x', events: ['*'] });
      expect((await app.inject({ url: '/v1/webhooks/mine/deliveries', headers: reader })).statusCode).toBe(
        200,
      );
      expect((await app.inject({ url: '/v1/webhooks', headers: other })).json().webhooks).toEqual([]);
      expect((await app.inject({ url: '/v1/webhooks/mine/deliveries', headers: other })).statusCode).toBe(
        404,
      );
      expect(
        (await app.inject({ method: 'DELETE', url: '/v1/webhooks/mine', headers: other })).statusCode,
      ).toBe(404);
      const bad = await app.inject({ url: '/v1/webhooks/mine/deliveries?cursor=nope', headers: reader });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().message).toContain('query.cursor');
      await app.inject({ method: 'DELETE', url: '/v1/webhooks/mine', headers: admin });
    });
  });

  describe('delivery', () => {
    it('retries a failing receiver with backoff and delivers once, signed, with attempts=3 in the log', async () => {
      const created = await put('credits-hook', {
        url: `${receiver.url}/hooks/credits`,
        events: ['credits.*'],
      });
      const secret = created.json().secret as string;
      await put('other-types', {
        url: `${receiver.url}/hooks/other`,
        events: ['governance.*', 'credits.grant.expired'],
      });
      await put('other-tenant', { url: `${receiver.url}/hooks/globex`, events: ['*'] }, other);
      await dispatcher();

      const low = event('credits.balance.low');
      receiver.plan = (eventId, attempt) => (eventId === low.id && attempt <= 2 ? 503 : 200);
      await publishEvent(stores.bus.bus, low);

      const delivered = await until('the delivery', async () => {
        const d = await deliveryOf('credits-hook', low.id);
        return d?.status === 'delivered' ? d : undefined;
      });
      expect(delivered).toMatchObject({ attempts: 3, responseCode: 200, lastError: null });
      expect(delivered.deliveredAt).not.toBeNull();

      const requests = receiver.forEvent(low.id, '/hooks/credits');
      expect(requests.map((r) => r.status)).toEqual([503, 503, 200]);
      expect(requests.map((r) => r.headers['allot-delivery-attempt'])).toEqual(['1', '2', '3']);
      for (const request of requests) {
        expect(request.headers['content-type']).toBe('application/json');
        expect(request.headers['allot-event-type']).toBe('credits.balance.low');
        expect(JSON.parse(request.body)).toEqual(low);
        const verified = verifyWebhook(secret, request.headers['allot-signature'] as string, request.body);
        expect(verified.ok).toBe(true);
        expect(
          verifyWebhook('whsec_someone_else_0000', request.headers['allot-signature'] as string, request.body)
            .ok,
        ).toBe(false);
      }
      // Only the subscribed endpoint of the event's tenant received it.
      expect(receiver.requests.filter((r) => r.headers['allot-event-id'] === low.id)).toHaveLength(3);
      expect(await deliveryOf('other-types', low.id)).toBeUndefined();
      expect(
        (await app.inject({ url: '/v1/webhooks/other-tenant/deliveries', headers: other })).json().deliveries,
      ).toEqual([]);

      // The same event again (past the stream's duplicate window, say): nothing is sent twice.
      await stores.bus.bus.publish(eventSubject(low.type), new TextEncoder().encode(JSON.stringify(low)), {
        msgId: 'again',
      });
      const before = dispatchers[0]!.stats.events;
      await until('the copy to be read', async () => dispatchers[0]!.stats.events > before);
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(receiver.forEvent(low.id, '/hooks/credits')).toHaveLength(3);
      expect((await deliveries('credits-hook')).deliveries.filter((d) => d.eventId === low.id)).toHaveLength(
        1,
      );
      for (const id of ['credits-hook', 'other-types'])
        await app.inject({ method: 'DELETE', url: `/v1/webhooks/${id}`, headers: admin });
      await app.inject({ method: 'DELETE', url: '/v1/webhooks/other-tenant', headers: other });
    });

    it('resumes a retry after a dispatcher restart, from the delivery log', async () => {
      await put('restart-hook', {
        url: `${receiver.url}/hooks/restart`,
        events: ['credits.balance.depleted'],
      });
      const depleted = event('credits.balance.depleted', 'acme', { available: '0' });
      receiver.plan = (eventId, attempt) => (eventId === depleted.id && attempt <= 2 ? 500 : 200);
      // Slow retries, so the first dispatcher is surely stopped between attempts 1 and 2.
      const first = await dispatcher({
        retry: { initialDelayMs: 400, maxDelayMs: 400, jitter: 0, maxAgeMs: 60_000 },
      });
      await publishEvent(stores.bus.bus, depleted);
      await until('the first attempt', async () => {
        const d = await deliveryOf('restart-hook', depleted.id);
        return d?.attempts === 1 && d.lastError !== null ? d : undefined;
      });
      await first.stop();
      dispatchers.splice(dispatchers.indexOf(first), 1);
      const pending = await deliveryOf('restart-hook', depleted.id);
      expect(pending).toMatchObject({ status: 'pending', attempts: 1, responseCode: 500 });
      expect(pending?.lastError).toContain('HTTP 500');
      expect(receiver.forEvent(depleted.id, '/hooks/restart')).toHaveLength(1);

      const second = await dispatcher();
      const delivered = await until('the delivery after the restart', async () => {
        const d = await deliveryOf('restart-hook', depleted.id);
        return d?.status === 'delivered' ? d : undefined;
      });
      expect(delivered.attempts).toBe(3);
      expect(receiver.forEvent(depleted.id, '/hooks/restart').map((r) => r.status)).toEqual([500, 500, 200]);
      // The stream message was acknowledged by the first dispatcher: the second added nothing.
      expect(second.stats.deliveriesAdded).toBe(0);
      await app.inject({ method: 'DELETE', url: '/v1/webhooks/restart-hook', headers: admin });
    });

    it('gives up at the maximum age and logs the last error', async () => {
      await put('broken-hook', { url: `${receiver.url}/hooks/broken`, events: ['credits.grant.expired'] });
      const expired = event('credits.grant.expired', 'acme', { grantId: 'g1', amount: '3' });
      receiver.plan = (eventId) => (eventId === expired.id ? 500 : 200);
      await dispatcher({ retry: { initialDelayMs: 30, maxDelayMs: 60, jitter: 0, maxAgeMs: 400 } });
      await publishEvent(stores.bus.bus, expired);
      const failed = await until('the delivery to fail', async () => {
        const d = await deliveryOf('broken-hook', expired.id);
        return d?.status === 'failed' ? d : undefined;
      });
      expect(failed.attempts).toBeGreaterThanOrEqual(3);
      expect(failed.attempts).toBe(receiver.forEvent(expired.id, '/hooks/broken').length);
      expect(failed.lastError).toMatch(/^HTTP 500: receiver says no/);
      expect(failed.deliveredAt).toBeNull();
      await app.inject({ method: 'DELETE', url: '/v1/webhooks/broken-hook', headers: admin });
    });

    it('records a receiver that cannot be reached, and pages the log', async () => {
      // A port nothing listens on.
      const closed = Fastify();
      await closed.listen({ host: '127.0.0.1', port: 0 });
      const port = (closed.server.address() as { port: number }).port;
      await closed.close();
      await put('nowhere', { url: `http://127.0.0.1:${port}/hooks`, events: ['credits.balance.low'] });
      await dispatcher({
        retry: { initialDelayMs: 10_000, maxDelayMs: 10_000, jitter: 0, maxAgeMs: 60_000 },
      });
      const events = [event('credits.balance.low'), event('credits.balance.low')];
      for (const e of events) await publishEvent(stores.bus.bus, e);
      await until('both first attempts', async () => {
        const log = await deliveries('nowhere');
        return log.deliveries.length === 2 && log.deliveries.every((d) => d.attempts === 1 && d.lastError);
      });
      const first = await deliveries('nowhere', '?limit=1');
      expect(first.deliveries).toHaveLength(1);
      expect(first.deliveries[0]).toMatchObject({ status: 'pending', responseCode: null });
      expect(first.deliveries[0]!.lastError).toMatch(/ECONNREFUSED/);
      const second = await deliveries('nowhere', `?limit=1&cursor=${first.nextCursor}`);
      expect(second.deliveries).toHaveLength(1);
      expect(second.nextCursor).toBeNull();
      expect(new Set([first.deliveries[0]!.eventId, second.deliveries[0]!.eventId])).toEqual(
        new Set(events.map((e) => e.id)),
      );
      await app.inject({ method: 'DELETE', url: '/v1/webhooks/nowhere', headers: admin });
    });

    it('terminates a malformed message and keeps going', async () => {
      await put('after-junk', { url: `${receiver.url}/hooks/junk`, events: ['credits.balance.low'] });
      const d = await dispatcher();
      await stores.bus.bus.publish(
        'events.credits.balance.low',
        new TextEncoder().encode('{"not":"an event"}'),
      );
      const good = event('credits.balance.low');
      await publishEvent(stores.bus.bus, good);
      await until(
        'the good event',
        async () => (await deliveryOf('after-junk', good.id))?.status === 'delivered',
      );
      expect(d.stats.malformed).toBe(1);
    });
  });
});
