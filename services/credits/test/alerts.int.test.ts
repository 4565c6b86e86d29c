/**
 * Credit alerts end to end: spends, grants and expiries reach the ledger through the worker, and
 * low-balance, depleted, expired and recharge alerts come out on the EVENTS stream, each once
 * per crossing, re-armed when the balance comes back, recharges bounded by the monthly cap; then
 * `startCredits` with the webhook dispatcher delivers one to a receiver, signed. On PostgreSQL,
 * Redis and NATS, and on the embedded stores.
 */

import { type AllotApp, createApp, StaticApiKeyStore } from '@allot/kit';
import type { Bus, Consumer } from '@allot/kit/bus';
import type { HotState } from '@allot/kit/hot';
import type { SqlStore } from '@allot/kit/sql';
import {
  freshEmbeddedBus,
  freshEmbeddedHotState,
  freshNatsBus,
  freshPgDatabase,
  freshPgliteStore,
  freshRedisHotState,
  until,
} from '@allot/kit/testing';
import { EVENTS_STREAM, eventsStreamConfig, verifyWebhook, webhooksPlugin } from '@allot/kit/webhooks';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreditAlerts, recordAlertWork } from '../src/alerts.ts';
import { creditsPlugin } from '../src/app.ts';
import { type CreditAlertEvent, creditAlertEvent } from '../src/domain/alerts.ts';
import { type CreditsService, startCredits } from '../src/service.ts';
import { markPools } from '../src/store/alerts.ts';
import { CreditsSweeper } from '../src/sweeper.ts';
import { CreditsWorker } from '../src/worker/worker.ts';

const tenant = 'acme-ai';
const adminKey = 'allot_alerts_admin_key_000000000';
const admin = { authorization: `Bearer ${adminKey}` };
const apiKeys = new StaticApiKeyStore([
  { key: adminKey, principal: { keyId: 'a', tenant, scopes: ['admin'] } },
]);

interface Stores {
  sql: SqlStore;
  hot: HotState;
  bus: Bus;
  close(): Promise<void>;
}

const backends = [
  {
    name: 'PostgreSQL, Redis and NATS',
    async open(): Promise<Stores> {
      const db = await freshPgDatabase();
      const hot = await freshRedisHotState();
      const bus = await freshNatsBus();
      return {
        sql: db.store,
        hot,
        bus: bus.bus,
        async close() {
          await bus.cleanup();
          await hot.cleanup();
          await db.drop();
        },
      };
    },
  },
  {
    name: 'the embedded stores',
    async open(): Promise<Stores> {
      const sql = await freshPgliteStore();
      const hot = await freshEmbeddedHotState();
      const bus = await freshEmbeddedBus();
      return {
        sql,
        hot,
        bus: bus.bus,
        async close() {
          await bus.cleanup();
          await hot.close();
          await sql.close();
        },
      };
    },
  },
];

describe.each(backends)('credit alerts on $name', (backend) => {
  let stores: Stores;
  let app: AllotApp;
  let credits: CreditsService;
  let worker: CreditsWorker;
  let alerts: CreditAlerts;
  let sweeper: CreditsSweeper;
  let reader: Consumer;
  /** The evaluator's clock; null: the real one. */
  let clock: Date | null = null;

  beforeAll(async () => {
    stores = await backend.open();
    // The worker, evaluator and sweeper are driven by hand here, so each step is deterministic.
    credits = await startCredits({ sql: stores.sql, hot: stores.hot, bus: stores.bus, background: false });
    alerts = new CreditAlerts({ sql: stores.sql, bus: stores.bus, now: () => clock ?? new Date() });
    worker = new CreditsWorker({
      store: stores.sql,
      bus: stores.bus,
      hooks: alerts.hooks,
      fetchExpiresMs: 100,
    });
    await worker.start();
    sweeper = new CreditsSweeper({ sql: stores.sql, engine: credits.engine });
    await stores.bus.ensureStream(eventsStreamConfig);
    reader = await stores.bus.consumer(EVENTS_STREAM, { durable: 'alerts-test', ackWaitMs: 30_000 });
    app = await createApp({ service: 'alerts-test', logLevel: false, apiKeys });
    await app.register(creditsPlugin, { sql: stores.sql, engine: credits.engine });
    await app.ready();
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await worker?.stop();
    await credits?.close();
    await stores?.close();
  });

  let keys = 0;
  async function grant(
    customerId: string,
    amount: number,
    extra: Record<string, unknown> = {},
  ): Promise<string> {
    const res = await app.inject({
      method: 'POST',
      url: `/v1/customers/${customerId}/grants`,
      headers: admin,
      payload: { creditType: 'credits', amount, category: 'paid', idempotencyKey: `k${++keys}`, ...extra },
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  }

  async function configure(customerId: string, body: Record<string, unknown>): Promise<void> {
    const res = await app.inject({
      method: 'PUT',
      url: `/v1/customers/${customerId}/pools/credits`,
      headers: admin,
      payload: body,
    });
    expect(res.statusCode, res.body).toBe(200);
  }

  async function spend(customerId: string, credit: number): Promise<void> {
    const pool = { tenant, customerId, creditType: 'credits' };
    const hold = await credits.engine.reserve({
      ...pool,
      amount: BigInt(credit) * 1_000_000n,
      ttlMs: 60_000,
    });
    expect(hold.status).toBe('reserved');
    await credits.engine.settle({ ...pool, holdId: hold.holdId, amount: BigInt(credit) * 1_000_000n });
  }

  /** Everything raised since the last call, once the ledger and the evaluator caught up. */
  async function raised(customerId: string): Promise<CreditAlertEvent[]> {
    await worker.caughtUp({ timeoutMs: 10_000 });
    await alerts.drain();
    const events: CreditAlertEvent[] = [];
    for (;;) {
      const batch = await reader.fetch({ max: 100, expiresMs: 100 });
      if (batch.length === 0) break;
      for (const message of batch) {
        events.push(creditAlertEvent.parse(JSON.parse(new TextDecoder().decode(message.data))));
        await message.ack();
      }
    }
    return events.filter((e) => e.customerId === customerId);
  }

  const summary = (events: CreditAlertEvent[]) => events.map((e) => `${e.type} ${JSON.stringify(e.data)}`);

  it('fires low and depleted once per crossing and re-arms when the balance comes back', async () => {
    await configure('low', { lowBalanceThreshold: '20' });
    await grant('low', 100);
    expect(await raised('low')).toEqual([]);

    await spend('low', 85);
    const first = await raised('low');
    expect(summary(first)).toEqual(['credits.balance.low {"available":"15","threshold":"20"}']);
    expect(first[0]).toMatchObject({ tenant, customerId: 'low', creditType: 'credits', resourceId: null });

    await spend('low', 5); // still below: nothing
    expect(await raised('low')).toEqual([]);

    await grant('low', 50); // back above (60): re-armed, nothing sent
    expect(await raised('low')).toEqual([]);

    await spend('low', 45);
    const second = await raised('low');
    expect(summary(second)).toEqual(['credits.balance.low {"available":"15","threshold":"20"}']);
    expect(second[0]!.id).not.toBe(first[0]!.id);

    await spend('low', 15);
    expect(summary(await raised('low'))).toEqual(['credits.balance.depleted {"available":"0"}']);

    // Evaluating the pool again (a redelivered batch would) raises nothing new.
    await stores.sql.transaction((tx) =>
      markPools(tx, [{ tenant, customerId: 'low', creditType: 'credits', resourceId: '' }]),
    );
    expect(await raised('low')).toEqual([]);
  });

  it('counts an unsettled hold: a reservation can cross, its release re-arms', async () => {
    await configure('held', { lowBalanceThreshold: '10' });
    await grant('held', 30);
    const pool = { tenant, customerId: 'held', creditType: 'credits' };
    const hold = await credits.engine.reserve({ ...pool, amount: 25_000_000n, ttlMs: 60_000 });
    expect(summary(await raised('held'))).toEqual(['credits.balance.low {"available":"5","threshold":"10"}']);
    if (hold.status !== 'reserved') throw new Error('not reserved');
    await credits.engine.release({ ...pool, holdId: hold.holdId });
    expect(await raised('held')).toEqual([]);
    await spend('held', 25);
    expect(summary(await raised('held'))).toEqual(['credits.balance.low {"available":"5","threshold":"10"}']);
  });

  it('raises credits.grant.expired once per expired grant', async () => {
    await grant('exp', 5);
    const expiring = await grant('exp', 7, { expiresAt: new Date(Date.now() + 1200).toISOString() });
    expect(await raised('exp')).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 1300));
    await until('the expiry', async () => (await sweeper.sweepOnce()).grants > 0);
    const events = await raised('exp');
    expect(summary(events)).toEqual([`credits.grant.expired {"grantId":"${expiring}","amount":"7"}`]);

    // The same grant.expired event applied again (a redelivered batch) raises nothing.
    await stores.sql.transaction((tx) =>
      recordAlertWork(tx, [
        {
          id: `ge:${expiring}`,
          type: 'grant.expired',
          at: Date.now(),
          tenant,
          customerId: 'exp',
          creditType: 'credits',
          resourceId: '',
          grantId: expiring,
          amount: '7000000',
        },
      ]),
    );
    expect(await raised('exp')).toEqual([]);
  });

  it('requests a recharge of target - available once per crossing, bounded by the monthly cap', async () => {
    clock = new Date('2031-03-10T12:00:00Z');
    try {
      await configure('rc', { autoRecharge: { threshold: '20', target: '50', monthlyCap: '100' } });
      await grant('rc', 50);
      expect(await raised('rc')).toEqual([]);

      const requested: string[] = [];
      for (let round = 0; round < 4; round++) {
        await spend('rc', 40); // 50 -> 10
        for (const e of await raised('rc')) {
          if (e.type !== 'credits.recharge.requested') continue;
          expect(e.data).toMatchObject({
            available: '10',
            threshold: '20',
            target: '50',
            monthlyCap: '100',
            month: '2031-03',
          });
          requested.push(`${e.data.amount}${e.data.capped ? ' capped' : ''} (${e.data.monthRequested})`);
        }
        await grant('rc', 40); // the tenant fulfils it: 10 -> 50, re-armed
        expect(await raised('rc')).toEqual([]);
      }
      // 40 + 40 + 20 = the cap of 100; the fourth crossing asks for nothing.
      expect(requested).toEqual(['40 (40)', '40 (80)', '20 capped (100)']);

      // A new month: the next crossing asks again.
      clock = new Date('2031-04-01T00:00:01Z');
      await spend('rc', 45); // 50 -> 5
      const april = (await raised('rc')).filter((e) => e.type === 'credits.recharge.requested');
      expect(april.map((e) => e.data)).toEqual([
        expect.objectContaining({ amount: '45', month: '2031-04', monthRequested: '45', capped: false }),
      ]);
    } finally {
      clock = null;
    }
  });
});

describe('startCredits with the webhook dispatcher (npm start)', () => {
  it('delivers a low-balance alert to a subscribed endpoint, signed', async () => {
    const sql = await freshPgliteStore();
    const hot = await freshEmbeddedHotState();
    const bus = await freshEmbeddedBus();
    const received: { headers: Record<string, unknown>; body: string }[] = [];
    const receiver = Fastify();
    receiver.removeContentTypeParser('application/json');
    receiver.addContentTypeParser('application/json', { parseAs: 'string' }, (_r, body, done) =>
      done(null, body),
    );
    receiver.post('/hook', async (request) => {
      received.push({ headers: request.headers, body: request.body as string });
      return 'ok';
    });
    await receiver.listen({ host: '127.0.0.1', port: 0 });
    const port = (receiver.server.address() as { port: number }).port;
    const service = await startCredits({
      sql,
      hot,
      bus: bus.bus,
      webhooks: { pollMs: 20, fetchExpiresMs: 100 },
    });
    const app = await createApp({ service: 'allot-test', logLevel: false, apiKeys });
    await app.register(creditsPlugin, { sql, engine: service.engine });
    await app.register(webhooksPlugin, { sql });
    try {
      const hook = await app.inject({
        method: 'PUT',
        url: '/v1/webhooks/alerts',
        headers: admin,
        payload: { url: `http://127.0.0.1:${port}/hook`, events: ['credits.balance.*'] },
      });
      expect(hook.statusCode).toBe(201);
      await app.inject({
        method: 'PUT',
        url: '/v1/customers/c1/pools/credits',
        headers: admin,
        payload: { lowBalanceThreshold: 5 },
      });
      await app.inject({
        method: 'POST',
        url: '/v1/customers/c1/grants',
        headers: admin,
        payload: { creditType: 'credits', amount: 10, category: 'paid', idempotencyKey: 'g1' },
      });
      const pool = { tenant, customerId: 'c1', creditType: 'credits' };
      const hold = await service.engine.reserve({ ...pool, amount: 8_000_000n, ttlMs: 60_000 });
      if (hold.status !== 'reserved') throw new Error('not reserved');
      await service.engine.settle({ ...pool, holdId: hold.holdId, amount: 8_000_000n });

      await until('the webhook', async () => received.length > 0);
      const [delivery] = received;
      const event = creditAlertEvent.parse(JSON.parse(delivery!.body));
      expect(event).toMatchObject({
        type: 'credits.balance.low',
        customerId: 'c1',
        data: { available: '2', threshold: '5' },
      });
      expect(delivery!.headers['allot-event-id']).toBe(event.id);
      expect(
        verifyWebhook(hook.json().secret, delivery!.headers['allot-signature'] as string, delivery!.body).ok,
      ).toBe(true);
      const logged = await until('the delivery log', async () => {
        const res = await app.inject({ url: '/v1/webhooks/alerts/deliveries', headers: admin });
        const first = res.json().deliveries[0];
        return first?.status === 'delivered' ? first : undefined;
      });
      expect(logged).toMatchObject({ eventId: event.id, attempts: 1, responseCode: 200 });
      expect(received).toHaveLength(1);
    } finally {
      await app.close();
      await service.close();
      await receiver.close();
      await bus.cleanup();
      await hot.close();
      await sql.close();
    }
  });
});
