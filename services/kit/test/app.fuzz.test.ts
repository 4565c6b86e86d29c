import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type AllotApp, createApp } from '../src/app.ts';
import { StaticApiKeyStore } from '../src/auth.ts';

const key = 'allot_fuzz_key_000000000000000';
let app: AllotApp;
const stored: unknown[] = [];

beforeAll(async () => {
  app = await createApp({
    service: 'fuzz',
    logLevel: false,
    apiKeys: new StaticApiKeyStore([{ key, principal: { keyId: 'k', tenant: 't', scopes: ['admin'] } }]),
  });
  app.put(
    '/v1/things/:id',
    {
      schema: {
        params: z.object({ id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/) }),
        body: z.object({
          name: z.string().min(1).max(200),
          amount: z.union([z.number(), z.string().regex(/^-?\d+(\.\d{1,6})?$/)]),
          tags: z.array(z.string()).max(10).optional(),
        }),
      },
    },
    async (request) => {
      stored.push(request.body);
      return { id: request.params.id };
    },
  );
});
afterAll(async () => app.close());

const contentTypes = fc.constantFrom(
  'application/json',
  'text/plain',
  'application/xml',
  'application/json; charset=utf-8',
  '',
);

describe('the app shell under fuzzing', () => {
  it('answers any request with 2xx or a 4xx error body, never 5xx, and stores nothing it rejected', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 140 }),
        fc.oneof(
          fc.json(),
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        contentTypes,
        fc.boolean(),
        async (id, payload, contentType, authed) => {
          const before = stored.length;
          const headers: Record<string, string> = authed ? { authorization: `Bearer ${key}` } : {};
          if (contentType) headers['content-type'] = contentType;
          const res = await app.inject({
            method: 'PUT',
            url: `/v1/things/${encodeURIComponent(id)}`,
            headers,
            payload,
          });
          expect(res.statusCode).toBeLessThan(500);
          if (res.statusCode >= 400) {
            const body = res.json();
            expect(body).toEqual({
              code: expect.stringMatching(/^[a-z_]+$/),
              message: expect.any(String),
              requestId: expect.any(String),
            });
            expect(stored.length).toBe(before);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
