/**
 * The decision waterfall over HTTP, on the real PostgreSQL, Redis and NATS and on the embedded
 * stores: every deny reason, in the waterfall's order; all-or-nothing (a deny at the credit
 * layer leaves budgets, rate and concurrency counters untouched); settle and release;
 * idempotent retries; the decision log; scopes and tenants.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AllotRig, type Backend, basicCatalog, grant, openAllot } from './support/allot-app.ts';

interface Decision {
  decisionId: string;
  decision: 'allow' | 'deny';
  reason: string | null;
  reservationId: string | null;
  decidedBy: string | null;
  retryAfterMs: number | null;
  cost: { creditType: string; amount: string } | null;
  balance: { creditType: string; available: string } | null;
  limits: {
    id: string;
    kind: string;
    scope: Record<string, string>;
    limit: string;
    used: string;
    remaining: string;
  }[];
  config: Record<string, unknown>;
}

describe.each<Backend>(['embedded', 'real'])('the decision waterfall on %s', (backend) => {
  let rig: AllotRig;
  beforeEach(async () => {
    rig = await openAllot(backend);
    await basicCatalog(rig, ['acme', 'globex']);
    await grant(rig, 'acme', '100');
  });
  afterEach(() => rig.close());

  const decide = async (body: Record<string, unknown>) => {
    const res = await rig.call<Decision>('POST', '/v1/decisions', {
      customerId: 'acme',
      feature: 'llm-tokens',
      units: 1000,
      ...body,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  };
  const status = async (budget: string) =>
    (
      await rig.ok<{ counters: { scope: Record<string, string>; used: string; held: string }[] }>(
        'GET',
        `/v1/budgets/${budget}/status`,
      )
    ).counters;

  it('allows with the cost, the balance, the limits that applied and the config values', async () => {
    await rig.ok('PUT', '/v1/budgets/monthly', { customerId: 'acme', period: 'month', limit: '50' });
    const d = await decide({ dimensions: { user: 'u1' } });
    expect(d).toMatchObject({
      decision: 'allow',
      reason: null,
      cost: { creditType: 'credits', amount: '2' },
      balance: { creditType: 'credits', available: '98' },
      limits: [{ id: 'monthly', kind: 'budget', scope: {}, limit: '50', used: '2', remaining: '48' }],
      config: { 'max-context': 128000 },
    });
    expect(d.reservationId).toBe(d.decisionId);
  });

  it('denies an unknown customer, an unknown feature, and a feature the plan lacks', async () => {
    expect(await decide({ customerId: 'nobody' })).toMatchObject({
      decision: 'deny',
      reason: 'customer_not_found',
    });
    expect(await decide({ feature: 'no-such-feature' })).toMatchObject({ reason: 'feature_not_found' });
    expect(await decide({ feature: 'export' })).toMatchObject({
      reason: 'not_entitled',
      decidedBy: 'entitlement:export',
    });
    // An override turns a plan's feature off for one customer.
    await rig.ok('PUT', '/v1/customers/acme/subscription', {
      plan: 'pro',
      overrides: [{ feature: 'llm-tokens', enabled: false }],
    });
    expect(await decide({})).toMatchObject({ reason: 'not_entitled' });
    await rig.ok('PUT', '/v1/customers/acme/subscription', { plan: 'pro' });
    expect(await decide({})).toMatchObject({ decision: 'allow' });
  });

  it('blocks a customer, an entity and everything below it, or any dimension value; unblocks', async () => {
    await rig.ok('PUT', '/v1/customers/acme/entities/t1', { type: 'team' });
    await rig.ok('PUT', '/v1/customers/acme/entities/u1', { type: 'user', parentId: 't1' });
    await rig.ok('PUT', '/v1/customers/acme/entities/a7', { type: 'agent', parentId: 'u1' });
    await rig.ok('PUT', '/v1/blocks/runaway-team', { scope: { team: 't1' }, reason: 'runaway spend' });
    expect(await decide({ dimensions: { agent: 'a7' } })).toMatchObject({
      decision: 'deny',
      reason: 'blocked',
      decidedBy: 'block:runaway-team',
    });
    expect(await decide({ dimensions: { agent: 'other' } })).toMatchObject({ decision: 'allow' });
    await rig.ok('PUT', '/v1/blocks/no-gpt5', { scope: { model: 'gpt-5' } });
    expect(await decide({ customerId: 'globex', dimensions: { model: 'gpt-5' } })).toMatchObject({
      reason: 'blocked',
    });
    await rig.ok('PUT', '/v1/blocks/acme', { scope: { customerId: 'acme' } });
    expect(await decide({})).toMatchObject({ reason: 'blocked', decidedBy: 'block:acme' });
    for (const id of ['runaway-team', 'no-gpt5', 'acme']) {
      expect((await rig.call('DELETE', `/v1/blocks/${id}`)).status).toBe(204);
    }
    expect(await decide({ dimensions: { agent: 'a7', model: 'gpt-5' } })).toMatchObject({
      decision: 'allow',
    });
  });

  it('rate-limits requests per window, with retryAfterMs', async () => {
    await rig.ok('PUT', '/v1/budgets/per-minute', {
      customerId: 'acme',
      kind: 'rate',
      metric: 'requests',
      period: 'rolling:60000',
      limit: '2',
    });
    expect(await decide({})).toMatchObject({ decision: 'allow' });
    expect(await decide({})).toMatchObject({ decision: 'allow' });
    const denied = await decide({});
    expect(denied).toMatchObject({ decision: 'deny', reason: 'rate_limited', decidedBy: 'rate:per-minute' });
    expect(denied.retryAfterMs).toBeGreaterThan(0);
    expect(denied.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('limits reservations in flight per agent; a release frees the slot', async () => {
    await rig.ok('PUT', '/v1/budgets/one-at-a-time', {
      customerId: 'acme',
      kind: 'concurrency',
      scope: { agent: '*' },
      period: 'never',
      limit: '1',
    });
    const first = await decide({ dimensions: { agent: 'a1' } });
    expect(first.decision).toBe('allow');
    expect(await decide({ dimensions: { agent: 'a1' } })).toMatchObject({
      reason: 'concurrency_limited',
      limits: [{ id: 'one-at-a-time', scope: { agent: 'a1' }, used: '1', remaining: '0' }],
    });
    expect(await decide({ dimensions: { agent: 'a2' } })).toMatchObject({ decision: 'allow' });
    await rig.ok('POST', `/v1/reservations/${first.reservationId}/release`, {});
    expect(await decide({ dimensions: { agent: 'a1' } })).toMatchObject({ decision: 'allow' });
  });

  it('enforces a metered entitlement limit (hard), and reports a soft one without denying', async () => {
    await rig.ok('PUT', '/v1/plans/pro', {
      name: 'Pro',
      entitlements: [{ feature: 'llm-tokens', limit: '1500', resetPeriod: 'month' }],
      creditRates: [{ feature: 'llm-tokens', creditType: 'credits', rate: '0.002' }],
    });
    expect(await decide({})).toMatchObject({ decision: 'allow' });
    expect(await decide({})).toMatchObject({
      reason: 'limit_exceeded',
      decidedBy: 'entitlement:entitlement:llm-tokens',
    });
    await rig.ok('PUT', '/v1/customers/acme/subscription', {
      plan: 'pro',
      overrides: [{ feature: 'llm-tokens', softLimit: true }],
    });
    expect(await decide({})).toMatchObject({
      decision: 'allow',
      limits: [{ id: 'entitlement:llm-tokens', used: '2000', remaining: '0' }],
    });
  });

  it('charges a team budget for every agent below the team, and denies past it', async () => {
    await rig.ok('PUT', '/v1/customers/acme/entities/t1', { type: 'team' });
    await rig.ok('PUT', '/v1/customers/acme/entities/a1', { type: 'agent', parentId: 't1' });
    await rig.ok('PUT', '/v1/customers/acme/entities/a2', { type: 'agent', parentId: 't1' });
    await rig.ok('PUT', '/v1/budgets/team', {
      customerId: 'acme',
      scope: { team: 't1' },
      period: 'day',
      limit: '5',
    });
    expect(await decide({ dimensions: { agent: 'a1' } })).toMatchObject({ decision: 'allow' });
    expect(await decide({ dimensions: { agent: 'a2' } })).toMatchObject({ decision: 'allow' });
    expect(await decide({ dimensions: { agent: 'a1' } })).toMatchObject({
      decision: 'deny',
      reason: 'budget_exceeded',
      decidedBy: 'budget:team',
    });
    // A request that claims another team still counts against the agent's own.
    expect(await decide({ dimensions: { agent: 'a2', team: 't9' } })).toMatchObject({
      reason: 'budget_exceeded',
    });
    expect(await decide({ dimensions: { agent: 'outsider' } })).toMatchObject({ decision: 'allow' });
    expect(await status('team')).toMatchObject([{ scope: { team: 't1' }, used: '0', held: '4' }]);
  });

  it('is all or nothing: a deny for credits counts nothing on budgets, rate or concurrency limits', async () => {
    await rig.ok('PUT', '/v1/budgets/b', { customerId: 'acme', period: 'month', limit: '1000' });
    await rig.ok('PUT', '/v1/budgets/r', {
      customerId: 'acme',
      kind: 'rate',
      metric: 'requests',
      period: 'hour',
      limit: '100',
    });
    await rig.ok('PUT', '/v1/budgets/c', {
      customerId: 'acme',
      kind: 'concurrency',
      period: 'never',
      limit: '10',
    });
    const denied = await decide({ units: 60_000 }); // 120 credits; the pool has 100
    expect(denied).toMatchObject({
      decision: 'deny',
      reason: 'insufficient_credits',
      decidedBy: 'pool:credits',
      balance: { available: '100' },
    });
    for (const id of ['b', 'r', 'c']) {
      for (const counter of await status(id)) expect([counter.used, counter.held]).toEqual(['0', '0']);
    }
    // A budget deny likewise leaves the pool untouched.
    await rig.ok('PUT', '/v1/budgets/b', { customerId: 'acme', period: 'month', limit: '1' });
    expect(await decide({})).toMatchObject({ reason: 'budget_exceeded', balance: { available: '100' } });
    const balances = await rig.ok<{ balances: { available: string; held: string }[] }>(
      'GET',
      '/v1/customers/acme/balances',
    );
    expect(balances.balances[0]).toMatchObject({ available: '100', held: '0' });
  });

  it('settles the actual usage: less than held gives the rest back, more is charged when it fits', async () => {
    await rig.ok('PUT', '/v1/budgets/b', { customerId: 'acme', period: 'month', limit: '1000' });
    const d = await decide({ units: 5000 }); // 10 credits held
    const partial = await rig.ok('POST', `/v1/reservations/${d.reservationId}/settle`, { units: 2000 });
    expect(partial).toMatchObject({
      status: 'settled',
      settled: '4',
      released: '6',
      overage: '0',
      balance: { available: '96' },
    });
    expect(await status('b')).toMatchObject([{ used: '4', held: '0' }]);
    const e = await decide({ units: 1000 }); // 2 held
    const over = await rig.ok('POST', `/v1/reservations/${e.reservationId}/settle`, { units: 3000 });
    expect(over).toMatchObject({ settled: '6', released: '0', overage: '0' });
    // Without units: what was reserved.
    const f = await decide({ units: 500 });
    expect(await rig.ok('POST', `/v1/reservations/${f.reservationId}/settle`, {})).toMatchObject({
      settled: '1',
    });
    expect(await status('b')).toMatchObject([{ used: '11', held: '0' }]);
  });

  it('answers a retried decision and settle as the first time, applying them once', async () => {
    const body = { units: 1000, idempotencyKey: 'req-1' };
    const first = await decide(body);
    const again = await decide(body);
    expect(again).toEqual(first);
    const balances = await rig.ok<{ balances: { held: string }[] }>('GET', '/v1/customers/acme/balances');
    expect(balances.balances[0]?.held).toBe('2');
    const conflict = await rig.call('POST', '/v1/decisions', {
      customerId: 'acme',
      feature: 'llm-tokens',
      units: 999,
      idempotencyKey: 'req-1',
    });
    expect(conflict).toMatchObject({ status: 409, body: { code: 'idempotency_conflict' } });
    const settled = await rig.ok('POST', `/v1/reservations/${first.reservationId}/settle`, { units: 500 });
    expect(await rig.ok('POST', `/v1/reservations/${first.reservationId}/settle`, { units: 500 })).toEqual(
      settled,
    );
    expect((await rig.call('POST', `/v1/reservations/${first.reservationId}/release`, {})).status).toBe(409);
    const after = await rig.ok<{ balances: { available: string; held: string }[] }>(
      'GET',
      '/v1/customers/acme/balances',
    );
    expect(after.balances[0]).toMatchObject({ available: '99', held: '0' });
    expect((await rig.call('POST', '/v1/reservations/rs_nope/settle', {})).status).toBe(404);
  });

  it('records every decision with why, queryable', async () => {
    await rig.ok('PUT', '/v1/budgets/tiny', { customerId: 'acme', period: 'day', limit: '3' });
    const allowed = await decide({ dimensions: { user: 'u1' } });
    const denied = await decide({ dimensions: { user: 'u1' } });
    await decide({ customerId: 'nobody' });
    const log = async () =>
      (
        await rig.ok<{
          decisions: {
            decisionId: string;
            decision: string;
            reason: string | null;
            decidedBy: string | null;
          }[];
        }>('GET', '/v1/decisions?customerId=acme')
      ).decisions;
    const { until } = await import('@allot/kit/testing');
    await until('the decision log', async () => (await log()).length >= 2);
    // Newest first; two decisions in the same millisecond may come in either order.
    const logged = (await log()).map((d) => [d.decisionId, d.decision, d.reason, d.decidedBy]);
    expect(logged).toHaveLength(2);
    expect(logged).toEqual(
      expect.arrayContaining([
        [denied.decisionId, 'deny', 'budget_exceeded', 'budget:tiny'],
        [allowed.decisionId, 'allow', null, null],
      ]),
    );
    expect(await rig.ok('GET', `/v1/decisions/${allowed.decisionId}`)).toMatchObject({
      feature: 'llm-tokens',
      units: '1000',
      dimensions: { user: 'u1' },
      cost: '2',
      reservation: { status: 'active' },
    });
    const denials = async () =>
      (await rig.ok<{ decisions: unknown[] }>('GET', '/v1/decisions?decision=deny&reason=customer_not_found'))
        .decisions;
    await until('the early denial in the log', async () => (await denials()).length === 1);
  });

  it('keeps scopes and tenants apart', async () => {
    const d = await decide({});
    expect(
      (await rig.call('POST', '/v1/decisions', { customerId: 'acme', feature: 'llm-tokens' }, 'decide'))
        .status,
    ).toBe(200);
    expect((await rig.call('PUT', '/v1/blocks/x', { scope: { customerId: 'acme' } }, 'decide')).status).toBe(
      403,
    );
    expect(
      (await rig.call('POST', '/v1/decisions', { customerId: 'acme', feature: 'llm-tokens' }, 'read')).status,
    ).toBe(403);
    expect((await rig.call('GET', '/v1/features/llm-tokens', undefined, 'read')).status).toBe(200);
    // Another tenant sees none of this tenant's customers, reservations or decisions.
    expect(
      await rig.call('POST', '/v1/decisions', { customerId: 'acme', feature: 'llm-tokens' }, 'other'),
    ).toMatchObject({
      status: 200,
      body: { reason: 'customer_not_found' },
    });
    expect((await rig.call('POST', `/v1/reservations/${d.reservationId}/settle`, {}, 'other')).status).toBe(
      404,
    );
    expect((await rig.call('GET', '/v1/features/llm-tokens', undefined, 'other')).status).toBe(404);
  });
});
