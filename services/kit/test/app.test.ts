import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type AllotApp, createApp } from '../src/app.ts';
import { StaticApiKeyStore } from '../src/auth.ts';
import { AppError } from '../src/errors.ts';
import type { ReadinessCheck } from '../src/health.ts';

const adminKey = 'allot_test_admin_key_0000000000';
const readKey = 'allot_test_read_key_00000000000';
const keys = new StaticApiKeyStore([
  { key: adminKey, principal: { keyId: 'a', tenant: 't1', scopes: ['admin'] } },
  { key: readKey, principal: { keyId: 'r', tenant: 't1', scopes: ['read'] } },
]);
const admin = { authorization: `Bearer ${adminKey}` };

let app: AllotApp;
afterEach(async () => app?.close());

async function build(readiness: ReadinessCheck[] = []): Promise<AllotApp> {
  app = await createApp({ service: 'test', logLevel: false, apiKeys: keys, readiness });
  app.post(
    '/v1/things/:id',
    {
      schema: {
        params: z.object({ id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/) }),
        body: z.object({ amount: z.string(), nested: z.object({ count: z.number().int() }).optional() }),
      },
    },
    async (request) => ({
      id: request.params.id,
      amount: request.body.amount,
      tenant: request.principal?.tenant,
    }),
  );
  app.get('/v1/read-only', { config: { auth: 'read' } }, async () => ({ ok: true }));
  app.get('/v1/boom', async () => {
    throw new Error('database password is hunter2');
  });
  app.get('/v1/gone', async () => {
    throw new AppError('not_found', 'thing gone not found');
  });
  return app;
}

describe('the app shell', () => {
  it('answers /healthz without a key', async () => {
    await build();
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('reports each readiness check, failing slow ones at their own timeout', async () => {
    await build([
      { name: 'fast', check: async () => {} },
      { name: 'slow', check: () => new Promise(() => {}), timeoutMs: 50 },
      { name: 'down', check: async () => Promise.reject(new Error('connection refused')) },
    ]);
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(503);
    const body = res.json();
    expect(body.status).toBe('not_ready');
    expect(body.checks.map((c: { name: string; status: string }) => [c.name, c.status])).toEqual([
      ['fast', 'ok'],
      ['slow', 'failed'],
      ['down', 'failed'],
    ]);
    expect(body.checks[1].error).toBe('timed out after 50 ms');
    expect(body.checks[2].error).toBe('connection refused');
  });

  it('is ready when every check passes', async () => {
    await build([{ name: 'db', check: async () => {} }]);
    expect((await app.inject('/readyz')).statusCode).toBe(200);
  });

  it('rejects a missing key with 401 and the error body', async () => {
    await build();
    const res = await app.inject({ method: 'POST', url: '/v1/things/x', payload: { amount: '1' } });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toEqual({
      code: 'unauthorized',
      message: expect.any(String),
      requestId: res.headers['x-request-id'],
    });
  });

  it('rejects a wrong key with 401 and a key without the scope with 403', async () => {
    await build();
    const wrong = await app.inject({ url: '/v1/read-only', headers: { authorization: 'Bearer nope' } });
    expect(wrong.statusCode).toBe(401);
    const scoped = await app.inject({
      method: 'POST',
      url: '/v1/things/x',
      headers: { authorization: `Bearer ${readKey}` },
      payload: { amount: '1' },
    });
    expect(scoped.statusCode).toBe(403);
    expect(scoped.json().code).toBe('forbidden');
    const allowed = await app.inject({
      url: '/v1/read-only',
      headers: { authorization: `Bearer ${readKey}` },
    });
    expect(allowed.statusCode).toBe(200);
  });

  it('admin implies every scope and the principal carries the key tenant', async () => {
    await build();
    expect((await app.inject({ url: '/v1/read-only', headers: admin })).statusCode).toBe(200);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/things/x',
      headers: admin,
      payload: { amount: '1' },
    });
    expect(res.json()).toEqual({ id: 'x', amount: '1', tenant: 't1' });
  });

  it('names the invalid field in a 400', async () => {
    await build();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/things/x',
      headers: admin,
      payload: { amount: 5, nested: { count: 1.5 } },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('invalid_request');
    expect(res.json().message).toMatch(/body\.amount/);
  });

  it('answers malformed JSON and a wrong content type with 4xx, never 500', async () => {
    await build();
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/things/x',
      headers: { ...admin, 'content-type': 'application/json' },
      payload: '{"amount":',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('invalid_request');
    const type = await app.inject({
      method: 'POST',
      url: '/v1/things/x',
      headers: { ...admin, 'content-type': 'application/xml' },
      payload: '<a/>',
    });
    expect(type.statusCode).toBe(415);
    expect(type.json().code).toBe('unsupported_media_type');
  });

  it('validates path parameters', async () => {
    await build();
    const res = await app.inject({
      method: 'POST',
      url: `/v1/things/${'x'.repeat(129)}`,
      headers: admin,
      payload: { amount: '1' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/params\.id/);
  });

  it('hides the details of a 500', async () => {
    await build();
    const res = await app.inject({ url: '/v1/boom', headers: admin });
    expect(res.statusCode).toBe(500);
    expect(res.json().code).toBe('internal');
    expect(res.body).not.toMatch(/hunter2/);
  });

  it('maps AppError codes to their status', async () => {
    await build();
    const res = await app.inject({ url: '/v1/gone', headers: admin });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'not_found', message: 'thing gone not found' });
  });

  it('answers unknown routes with the error body', async () => {
    await build();
    const res = await app.inject('/v1/nowhere?x=1');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'not_found', message: 'no route GET /v1/nowhere' });
  });

  it('keeps a well-formed caller request id and replaces a malformed one', async () => {
    await build();
    const kept = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'req-abc.1' } });
    expect(kept.headers['x-request-id']).toBe('req-abc.1');
    const replaced = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'bad id with spaces' } });
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('exposes Prometheus metrics including request latency by route', async () => {
    await build();
    await app.inject('/healthz');
    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.body).toMatch(/allot_http_request_duration_seconds_count\{[^}]*route="\/healthz"[^}]*\} 1/);
    expect(res.body).toMatch(/process_cpu_user_seconds_total/);
  });

  it('serves an OpenAPI document of the routes', async () => {
    await build();
    const res = await app.inject('/openapi.json');
    expect(res.statusCode).toBe(200);
    expect(Object.keys(res.json().paths)).toContain('/v1/things/{id}');
  });

  it('reports draining on /readyz while closing', async () => {
    await build();
    let status = 0;
    app.addHook('onClose', async () => {});
    const closing = app.close();
    status = (await app.inject('/readyz').catch(() => ({ statusCode: 503 }))).statusCode;
    await closing;
    expect(status).toBe(503);
  });
});
