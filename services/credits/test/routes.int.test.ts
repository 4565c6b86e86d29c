import { type AllotApp, createApp, StaticApiKeyStore } from '@allot/kit';
import {
  freshEmbeddedBus,
  freshEmbeddedHotState,
  freshNatsBus,
  freshPgDatabase,
  freshPgliteStore,
  freshRedisHotState,
} from '@allot/kit/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditsPlugin } from '../src/app.ts';
import { type CreditsService, startCredits } from '../src/service.ts';

const adminKey = 'allot_routes_admin_key_00000000';
const readKey = 'allot_routes_read_key_000000000';
const admin = { authorization: `Bearer ${adminKey}` };

interface Stack {
  app: AllotApp;
  credits: CreditsService;
  close(): Promise<void>;
}

async function realStack(): Promise<Stack> {
  const db = await freshPgDatabase();
  const hot = await freshRedisHotState();
  const bus = await freshNatsBus();
  return build(db.store, hot, bus.bus, async () => {
    await bus.cleanup();
    await hot.cleanup();
    await db.drop();
  });
}

async function embeddedStack(): Promise<Stack> {
  const sql = await freshPgliteStore();
  const hot = await freshEmbeddedHotState();
  const bus = await freshEmbeddedBus();
  return build(sql, hot, bus.bus, async () => {
    await bus.cleanup();
    await hot.close();
    await sql.close();
  });
}

async function build(
  sql: Parameters<typeof startCredits>[0]['sql'],
  hot: Parameters<typeof startCredits>[0]['hot'],
  bus: Parameters<typeof startCredits>[0]['bus'],
  cleanup: () => Promise<void>,
): Promise<Stack> {
  const app = await createApp({
    service: 'credits-test',
    logLevel: false,
    apiKeys: new StaticApiKeyStore([
      { key: adminKey, principal: { keyId: 'a', tenant: 'acme-ai', scopes: ['admin'] } },
      { key: readKey, principal: { keyId: 'r', tenant: 'acme-ai', scopes: ['read'] } },
    ]),
  });
  const credits = await startCredits({ sql, hot, bus });
  await app.register(creditsPlugin, { sql, engine: credits.engine });
  await app.ready();
  return {
    app,
    credits,
    async close() {
      await app.close();
      await credits.close();
      await cleanup();
    },
  };
}

describe.each([
  ['real PostgreSQL, Redis and NATS', realStack],
  ['embedded stores', embeddedStack],
])('credits routes on %s', (_name, open) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await open();
  }, 60_000);
  afterAll(async () => stack?.close());

  const grant = (customer: string, body: Record<string, unknown>) =>
    stack.app.inject({
      method: 'POST',
      url: `/v1/customers/${customer}/grants`,
      headers: admin,
      payload: body,
    });

  it('creates a credit type', async () => {
    const res = await stack.app.inject({
      method: 'PUT',
      url: '/v1/credit-types/credits',
      headers: admin,
      payload: { name: 'Credits' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ key: 'credits', name: 'Credits', unit: null });
  });

  it('grants credits once per idempotency key and refuses the key for another body', async () => {
    const body = { creditType: 'credits', amount: '100.5', category: 'paid', idempotencyKey: 'grant-1' };
    const first = await grant('cust-a', body);
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({
      customerId: 'cust-a',
      amount: '100.5',
      category: 'paid',
      priority: 100,
    });
    const retry = await grant('cust-a', body);
    expect(retry.statusCode).toBe(200);
    expect(retry.json().id).toBe(first.json().id);
    const other = await grant('cust-a', { ...body, amount: 7 });
    expect(other.statusCode).toBe(409);
    expect(other.json().code).toBe('idempotency_conflict');
    const balances = await stack.app.inject({
      url: '/v1/customers/cust-a/balances',
      headers: { authorization: `Bearer ${readKey}` },
    });
    expect(balances.statusCode).toBe(200);
    expect(balances.json().balances).toEqual([
      expect.objectContaining({ creditType: 'credits', available: '100.5', held: '0', mode: 'hard' }),
    ]);
  });

  it('shows a reservation as held at once and its settle in the ledger, one entry per grant in burn order', async () => {
    await grant('cust-b', { creditType: 'credits', amount: 10, category: 'paid', idempotencyKey: 'b-paid' });
    await grant('cust-b', {
      creditType: 'credits',
      amount: 5,
      category: 'promotional',
      idempotencyKey: 'b-promo',
    });
    const pool = { tenant: 'acme-ai', customerId: 'cust-b', creditType: 'credits' };
    const hold = await stack.credits.engine.reserve({ ...pool, amount: 8_000_000n, ttlMs: 60_000 });
    expect(hold.status).toBe('reserved');
    const during = await stack.app.inject({ url: '/v1/customers/cust-b/balances', headers: admin });
    expect(during.json().balances[0]).toMatchObject({ available: '7', held: '8' });
    if (hold.status !== 'reserved') return;
    await stack.credits.engine.settle({ ...pool, holdId: hold.holdId, amount: 6_000_000n });
    await stack.credits.worker!.caughtUp({ timeoutMs: 10_000 });
    const after = await stack.app.inject({ url: '/v1/customers/cust-b/balances', headers: admin });
    expect(after.json().balances[0]).toMatchObject({ available: '9', held: '0' });
    const ledger = await stack.app.inject({ url: '/v1/customers/cust-b/ledger?limit=10', headers: admin });
    const entries = ledger.json().entries as { kind: string; amount: string; grantId: string | null }[];
    const debits = entries.filter((e) => e.kind === 'debit');
    expect(debits.map((d) => d.amount).sort()).toEqual(['-1', '-5']);
    expect(entries.filter((e) => e.kind === 'grant')).toHaveLength(2);
  });

  it('pages the ledger with a cursor, newest first', async () => {
    for (let i = 0; i < 5; i++) {
      await grant('cust-c', {
        creditType: 'credits',
        amount: i + 1,
        category: 'paid',
        idempotencyKey: `c-${i}`,
      });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/customers/cust-c/ledger?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await stack.app.inject({ url, headers: admin });
      expect(page.statusCode).toBe(200);
      seen.push(...page.json().entries.map((e: { amount: string }) => e.amount));
      cursor = page.json().nextCursor;
    } while (cursor);
    expect(seen).toEqual(['5', '4', '3', '2', '1']);
    const bad = await stack.app.inject({
      url: '/v1/customers/cust-c/ledger?cursor=nonsense',
      headers: admin,
    });
    expect(bad.statusCode).toBe(400);
  });

  it('voids what is left of a grant, once', async () => {
    const created = await grant('cust-d', {
      creditType: 'credits',
      amount: 3,
      category: 'paid',
      idempotencyKey: 'd-1',
    });
    const id = created.json().id;
    const voided = await stack.app.inject({
      method: 'POST',
      url: `/v1/customers/cust-d/grants/${id}/void`,
      headers: admin,
      payload: {},
    });
    expect(voided.statusCode).toBe(200);
    expect(voided.json()).toEqual({ grantId: id, voided: '3' });
    const again = await stack.app.inject({
      method: 'POST',
      url: `/v1/customers/cust-d/grants/${id}/void`,
      headers: admin,
      payload: {},
    });
    expect(again.json()).toEqual({ grantId: id, voided: '3' });
    const balances = await stack.app.inject({ url: '/v1/customers/cust-d/balances', headers: admin });
    expect(balances.json().balances[0]?.available ?? '0').toBe('0');
  });

  it('configures a soft pool', async () => {
    const res = await stack.app.inject({
      method: 'PUT',
      url: '/v1/customers/cust-e/pools/credits',
      headers: admin,
      payload: { mode: 'soft', autoRecharge: { threshold: 10, target: 100 } },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      mode: 'soft',
      autoRecharge: { threshold: '10', target: '100', monthlyCap: null },
    });
  });

  it('names the bad field and stores nothing', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ creditType: 'credits', amount: '1.1234567', category: 'paid', idempotencyKey: 'x' }, /body\.amount/],
      [
        { creditType: 'credits', amount: 0, category: 'paid', idempotencyKey: 'x' },
        /body\.amount: must be greater than 0/,
      ],
      [{ creditType: 'credits', amount: 1, category: 'gift', idempotencyKey: 'x' }, /body\.category/],
      [{ creditType: 'credits', amount: 1, category: 'paid' }, /body\.idempotencyKey/],
      [
        {
          creditType: 'credits',
          amount: 1,
          category: 'paid',
          idempotencyKey: 'x',
          effectiveAt: '2026-02-01T00:00:00Z',
          expiresAt: '2026-01-01T00:00:00Z',
        },
        /body\.expiresAt: must be after effectiveAt/,
      ],
      [{ creditType: 'bad type!', amount: 1, category: 'paid', idempotencyKey: 'x' }, /body\.creditType/],
    ];
    for (const [body, message] of cases) {
      const res = await grant('cust-f', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().message).toMatch(message);
    }
    const ledger = await stack.app.inject({ url: '/v1/customers/cust-f/ledger', headers: admin });
    expect(ledger.json().entries).toEqual([]);
  });

  it('requires admin to grant and read to see balances', async () => {
    const res = await stack.app.inject({
      method: 'POST',
      url: '/v1/customers/cust-g/grants',
      headers: { authorization: `Bearer ${readKey}` },
      payload: { creditType: 'credits', amount: 1, category: 'paid', idempotencyKey: 'g' },
    });
    expect(res.statusCode).toBe(403);
    expect((await stack.app.inject({ url: '/v1/customers/cust-g/balances' })).statusCode).toBe(401);
  });

  it('answers fuzzed grant bodies with 2xx or a 4xx error body, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            creditType: fc.oneof(fc.constant('credits'), fc.string()),
            amount: fc.oneof(fc.double(), fc.string(), fc.integer(), fc.constant('1.5')),
            category: fc.oneof(fc.constantFrom('paid', 'promotional'), fc.string()),
            priority: fc.oneof(fc.integer(), fc.double()),
            expiresAt: fc.oneof(
              fc.string(),
              fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
            ),
            idempotencyKey: fc.string(),
            metadata: fc.jsonValue(),
          },
          { requiredKeys: [] },
        ),
        async (body) => {
          const res = await grant('cust-fuzz', body);
          expect(res.statusCode).toBeLessThan(500);
        },
      ),
      { numRuns: 150 },
    );
  });
});
