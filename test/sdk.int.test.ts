/**
 * The TypeScript SDK against a running stack (the all-in-one app listening, real backends):
 * every route it knows exists in the server's OpenAPI document and is called here; retries
 * reuse the idempotency key; `withReservation` settles, and releases when the work throws or
 * is aborted; `llm` and `meteredStream` settle from the reported usage, also when a stream is
 * stopped early; the allow cache is opt-in and never keeps a deny.
 */

import { until } from '@allot/kit/testing';
import { Allot, AllotError, DeniedError, ROUTES } from '@allot/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AllotRig, KEYS, openAllot } from './support/allot-app.ts';

describe('the SDK', () => {
  let rig: AllotRig;
  let allot: Allot;
  let origin: string;
  beforeAll(async () => {
    rig = await openAllot('real');
    origin = await rig.app.listen({ host: '127.0.0.1', port: 0 });
    allot = new Allot({ baseUrl: origin, apiKey: KEYS.admin });
  }, 60_000);
  afterAll(() => rig?.close());

  const available = async () => Number((await allot.customers.balances('acme')).balances[0]!.available);

  it('knows only routes the server documents', async () => {
    const doc = (await (await fetch(`${origin}/openapi.json`)).json()) as { paths: Record<string, object> };
    const shape = (p: string) => p.replace(/\{[^}]+\}/g, '{}');
    const missing = ROUTES.filter((route) => {
      const [method, path] = route.split(' ') as [string, string];
      return !Object.entries(doc.paths).some(
        ([p, ops]) => shape(p) === shape(path) && method.toLowerCase() in ops,
      );
    });
    expect(missing).toEqual([]);
  });

  it('configures, decides, settles, reads and meters through every route', async () => {
    expect((await allot.whoami()).scopes).toEqual(['admin']);
    await allot.creditTypes.put('credits', { name: 'Credits' });
    await allot.features.put('llm-tokens', { name: 'LLM tokens', type: 'metered' });
    expect((await allot.features.get('llm-tokens')).type).toBe('metered');
    expect((await allot.features.list()).items.map((f) => f.key)).toContain('llm-tokens');
    const plan = {
      name: 'Pro',
      entitlements: [{ feature: 'llm-tokens' }],
      creditRates: [{ feature: 'llm-tokens', creditType: 'credits', rate: '0.001' }],
    };
    await allot.plans.put('pro', plan);
    await allot.addons.put('extra', { name: 'Extra', entitlements: [], creditRates: [] });
    expect((await allot.plans.get('pro')).name).toBe('Pro');
    expect((await allot.plans.list()).items).toHaveLength(1);
    await allot.customers.put('acme', { name: 'Acme' });
    await allot.customers.subscribe('acme', { plan: 'pro' });
    expect((await allot.customers.get('acme')).name).toBe('Acme');
    expect((await allot.customers.list()).items.map((c) => c.customerId)).toEqual(['acme']);
    expect((await allot.customers.subscription('acme')).plan).toBe('pro');
    await allot.customers.grant('acme', {
      creditType: 'credits',
      amount: '100',
      category: 'paid',
      idempotencyKey: 'g1',
    });
    await allot.customers.grant('acme', {
      creditType: 'credits',
      amount: '100',
      category: 'paid',
      idempotencyKey: 'g1',
    });
    expect(await available()).toBe(100);
    await allot.customers.putEntity('acme', 't1', { type: 'team' });
    await allot.customers.putEntity('acme', 'a7', { type: 'agent', parentId: 't1' });
    expect((await allot.customers.entities('acme')).items).toHaveLength(2);
    await allot.budgets.put('team', {
      customerId: 'acme',
      scope: { team: 't1' },
      period: 'month',
      limit: '50',
    });
    expect((await allot.budgets.get('team')).customerId).toBe('acme');
    expect((await allot.budgets.list()).items).toHaveLength(1);
    await allot.meters.put('settled', {
      eventType: 'allot.reservation.settled',
      aggregation: 'SUM',
      valueProperty: '$.units',
    });
    expect((await allot.meters.list()).items).toHaveLength(1);

    const d = await allot.decide({
      customerId: 'acme',
      feature: 'llm-tokens',
      units: 2000,
      dimensions: { agent: 'a7' },
    });
    expect(d).toMatchObject({ decision: 'allow', cost: { amount: '2' } });
    const batch = await allot.decideBatch([
      { customerId: 'acme', feature: 'llm-tokens', units: 1000 },
      { customerId: 'nobody', feature: 'x' },
    ]);
    expect(batch.decisions).toHaveLength(2);
    expect((await allot.settle(d.reservationId!, { units: 1000 })).settled).toBe('1');
    const second = (batch.decisions[0] as { reservationId: string }).reservationId;
    expect((await allot.release(second)).status).toBe('released');
    expect(await available()).toBe(99);
    expect((await allot.customers.entitlements('acme')).entitlements.map((e) => e.feature)).toContain(
      'llm-tokens',
    );
    expect((await allot.customers.entitlement('acme', 'llm-tokens')).enabled).toBe(true);
    expect((await allot.customers.ledger('acme')).entries.length).toBeGreaterThan(1);
    expect((await allot.budgets.status('team')).counters[0]!.used).toBe('1');
    await until('the burn', async () => (await allot.budgets.history('team')).points.length === 1);
    await allot.blocks.put('stop', { scope: { agent: 'a7' } });
    expect((await allot.blocks.list()).items).toHaveLength(1);
    expect(
      (
        await allot.decide({
          customerId: 'acme',
          feature: 'llm-tokens',
          units: 1,
          dimensions: { agent: 'a7' },
        })
      ).reason,
    ).toBe('blocked');
    await allot.blocks.delete('stop');
    await allot.ingest({
      id: 'e1',
      source: 'sdk',
      type: 'allot.reservation.settled',
      subject: 'acme',
      data: { units: 7 },
    });
    await until('usage queryable', async () => {
      const q = await allot.meters.query('settled', { groupBy: ['subject'] });
      return q.data[0]?.value === 1007;
    });
    // The export waits for every older transaction of the cluster to end: poll.
    await until('the export', async () => (await allot.exportAggregates()).aggregates.length > 0);
    const log = await allot.decisionLog({ customerId: 'acme', limit: 5 });
    expect(log.decisions.length).toBeGreaterThan(0);
    expect((await allot.decisionById(log.decisions[0]!.decisionId)).decisionId).toBe(
      log.decisions[0]!.decisionId,
    );
    const error = await allot.features.get('nope').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AllotError);
    expect(error).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('withReservation settles the actual usage, and releases when the work throws or is aborted', async () => {
    const before = await available();
    const done = await allot.withReservation(
      { customerId: 'acme', feature: 'llm-tokens', units: 3000 },
      async (d) => {
        expect(d.decision).toBe('allow');
        return 1500;
      },
    );
    expect(done.settlement).toMatchObject({ settled: '1.5', released: '1.5' });
    expect(await available()).toBe(before - 1.5);
    await expect(
      allot.withReservation({ customerId: 'acme', feature: 'llm-tokens', units: 3000 }, async () => {
        throw new Error('the model call failed');
      }),
    ).rejects.toThrow('the model call failed');
    const controller = new AbortController();
    await expect(
      allot.withReservation(
        { customerId: 'acme', feature: 'llm-tokens', units: 3000 },
        async (_, signal) => {
          controller.abort(new Error('user cancelled'));
          return signal.aborted ? 0 : 1;
        },
        { signal: controller.signal },
      ),
    ).rejects.toThrow('user cancelled');
    const balance = (await allot.customers.balances('acme')).balances[0]!;
    expect(Number(balance.available)).toBe(before - 1.5);
    expect(balance.held).toBe('0');
    await expect(
      allot.withReservation({ customerId: 'nobody', feature: 'llm-tokens', units: 1 }, async () => 1),
    ).rejects.toBeInstanceOf(DeniedError);
  });

  it('llm settles from the reported usage; a stream stopped early settles what it used', async () => {
    const before = await available();
    const { response, settlement } = await allot.llm(
      { customerId: 'acme', feature: 'llm-tokens', maxTokens: 4000, promptTokens: 200 },
      async () => ({
        text: 'hi',
        usage: { input_tokens: 200, output_tokens: 300 },
      }),
    );
    expect(response.text).toBe('hi');
    expect(settlement?.settled).toBe('0.5');
    async function* tokens() {
      for (let i = 0; i < 1000; i++) yield { delta: `t${i}` };
    }
    let seen = 0;
    for await (const _chunk of allot.meteredStream(
      { customerId: 'acme', feature: 'llm-tokens', maxTokens: 1000, promptTokens: 100 },
      () => tokens(),
    )) {
      if (++seen === 400) break; // the consumer stops early
    }
    await until(
      'the early stop settled',
      async () => (await allot.customers.balances('acme')).balances[0]!.held === '0',
    );
    // 0.5 for the call, 0.5 for the stream (100 prompt tokens + 400 streamed).
    expect(await available()).toBeCloseTo(before - 1, 6);
  });

  it('retries reuse the idempotency key, and the allow cache is opt-in and keeps no deny', async () => {
    let calls = 0;
    const bodies: string[] = [];
    const flaky = new Allot({
      baseUrl: origin,
      apiKey: KEYS.admin,
      retryDelayMs: 1,
      fetch: async (url, init) => {
        calls++;
        bodies.push(String(init?.body ?? ''));
        const res = await fetch(url, init);
        // The first answer is lost on the way back, as after a network failure.
        if (calls === 1) throw new TypeError('fetch failed');
        return res;
      },
    });
    const before = await available();
    const d = await flaky.decide({ customerId: 'acme', feature: 'llm-tokens', units: 1000 });
    expect(calls).toBe(2);
    expect(bodies[0]).toBe(bodies[1]);
    expect(await available()).toBe(before - 1);
    await allot.release(d.reservationId!);

    const cached = new Allot({ baseUrl: origin, apiKey: KEYS.admin, cacheAllowsMs: 60_000 });
    expect((await cached.allowed('acme', 'llm-tokens')).decision).toBe('allow');
    await allot.blocks.put('stop-all', { scope: { customerId: 'acme' } });
    expect((await cached.allowed('acme', 'llm-tokens')).decision).toBe('allow'); // kept
    expect((await allot.allowed('acme', 'llm-tokens')).reason).toBe('blocked'); // no cache
    await allot.blocks.delete('stop-all');
  });
});
