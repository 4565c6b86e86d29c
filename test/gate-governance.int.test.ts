/**
 * Governance beyond a single decision, on both backends: budget alerts once per threshold and
 * period (on the EVENTS stream, where webhooks come from), the kill switch reaching a second
 * gate process, rebuilding a customer's counters and reservations after the hot state lost
 * them, and the fail-closed / fail-open policy when the hot state is unreachable.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { until } from '@allot/kit/testing';
import { EVENTS_STREAM } from '@allot/kit/webhooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AllotRig, type Backend, basicCatalog, grant, openAllot } from './support/allot-app.ts';

describe.each<Backend>(['embedded', 'real'])('governance on %s', (backend) => {
  let rig: AllotRig;
  beforeEach(async () => {
    rig = await openAllot(backend);
    await basicCatalog(rig);
    await grant(rig, 'acme', '1000');
  });
  afterEach(() => rig.close());

  const decide = async (units: number, dimensions: Record<string, string> = {}) => {
    const res = await rig.call<{ decision: string; reservationId: string | null; reason: string | null }>(
      'POST',
      '/v1/decisions',
      { customerId: 'acme', feature: 'llm-tokens', units, dimensions },
    );
    expect(res.status).toBe(200);
    return res.body;
  };
  const spend = async (units: number) => {
    const d = await decide(units);
    expect(d.decision).toBe('allow');
    await rig.ok('POST', `/v1/reservations/${d.reservationId}/settle`, {});
  };

  it('raises a budget alert once per threshold per period, on the EVENTS stream', async () => {
    await rig.ok('PUT', '/v1/budgets/monthly', {
      customerId: 'acme',
      period: 'month',
      limit: '10',
      mode: 'soft',
      alerts: [0.5, 1],
    });
    await spend(2000); // 4 credits: 40%
    await spend(1000); // 6: past 50%
    await spend(1000); // 8
    await spend(2000); // 12: past 100% (soft: still allowed)
    await spend(2000); // 16
    const consumer = await rig.bus.consumer(EVENTS_STREAM, { durable: 'alerts-test', ackWaitMs: 30_000 });
    const seen: { type: string; data: { budgetId: string; threshold: number; used: string } }[] = [];
    await until(
      'two budget alerts',
      async () => {
        for (const m of await consumer.fetch({ max: 100, expiresMs: 100 })) {
          const event = JSON.parse(Buffer.from(m.data).toString('utf8'));
          if (event.type === 'governance.budget.threshold') seen.push(event);
          await m.ack();
        }
        return seen.length >= 2;
      },
      20_000,
    );
    await sleep(1500);
    for (const m of await consumer.fetch({ max: 100, expiresMs: 200 })) {
      const event = JSON.parse(Buffer.from(m.data).toString('utf8'));
      if (event.type === 'governance.budget.threshold') seen.push(event);
      await m.ack();
    }
    // Settles applied in one commit cross together: `used` is what the counter had by then.
    expect(seen.map((e) => [e.data.budgetId, e.data.threshold])).toEqual([
      ['monthly', 0.5],
      ['monthly', 1],
    ]);
    expect(Number(seen[0]!.data.used)).toBeGreaterThanOrEqual(5);
    expect(Number(seen[1]!.data.used)).toBeGreaterThanOrEqual(10);
  });

  it("shows a budget's burn over time, per period and per counter", async () => {
    await rig.ok('PUT', '/v1/customers/acme/entities/a1', { type: 'agent' });
    await rig.ok('PUT', '/v1/customers/acme/entities/a2', { type: 'agent' });
    await rig.ok('PUT', '/v1/budgets/per-agent', {
      customerId: 'acme',
      scope: { agent: '*' },
      period: 'day',
      limit: '100',
    });
    for (const [agent, units] of [
      ['a1', 1000],
      ['a2', 500],
      ['a1', 500],
    ] as const) {
      const d = await decide(units, { agent });
      await rig.ok('POST', `/v1/reservations/${d.reservationId}/settle`, {});
    }
    const day = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000).toISOString();
    const want = JSON.stringify([
      [day, 'a1', '3'],
      [day, 'a2', '1'],
    ]);
    // The worker applies the settles a moment after they are answered: until all three are in.
    await until('the settles in the history', async () => {
      const h = await rig.ok<{
        points: { windowStart: string; scope: Record<string, string>; used: string }[];
      }>('GET', '/v1/budgets/per-agent/history');
      return JSON.stringify(h.points.map((p) => [p.windowStart, p.scope.agent, p.used]).sort()) === want;
    });
    expect((await rig.call('GET', '/v1/budgets/nope/history')).status).toBe(404);
  });

  it('rebuilds counters and reservations from PostgreSQL after the hot state lost them', async () => {
    await rig.ok('PUT', '/v1/budgets/monthly', { customerId: 'acme', period: 'month', limit: '20' });
    await rig.ok('PUT', '/v1/budgets/agents', {
      customerId: 'acme',
      scope: { agent: '*' },
      kind: 'concurrency',
      period: 'never',
      limit: '1',
    });
    await spend(2000); // used 4
    const held = await decide(3000, { agent: 'a1' }); // held 6, a1's slot taken
    expect(held.decision).toBe('allow');
    const status = async () =>
      (await rig.ok<{ counters: { used: string; held: string }[] }>('GET', '/v1/budgets/monthly/status'))
        .counters;
    expect(await status()).toMatchObject([{ used: '4', held: '6' }]);
    // Wait until the worker has the stream, then lose everything Redis held for the tenant.
    await until('the decision log', async () => {
      const log = await rig.ok<{ decisions: unknown[] }>('GET', '/v1/decisions?customerId=acme');
      return log.decisions.length >= 2;
    });
    await wipeHotState(rig);
    // The next decision rebuilds the customer: the budget remembers 4 used and 6 held...
    expect(await decide(1000, { agent: 'a2' })).toMatchObject({ decision: 'allow' });
    expect(await status()).toMatchObject([{ used: '4', held: '8' }]);
    // ...the agent's slot is still taken, and the reservation still settles.
    expect(await decide(1000, { agent: 'a1' })).toMatchObject({ reason: 'concurrency_limited' });
    expect(
      await rig.ok('POST', `/v1/reservations/${held.reservationId}/settle`, { units: 1000 }),
    ).toMatchObject({
      settled: '2',
      released: '4',
    });
    expect(await status()).toMatchObject([{ used: '6', held: '2' }]);
    expect(await decide(1000, { agent: 'a1' })).toMatchObject({ decision: 'allow' });
  });
});

/** Deletes every hot-state key of the rig (Redis: the test prefix; embedded: everything). */
async function wipeHotState(rig: AllotRig): Promise<void> {
  if (rig.hot.kind === 'embedded') {
    await rig.hot.call('FLUSHALL');
  } else {
    const redis = (rig.hot as unknown as { redis: import('ioredis').Redis }).redis;
    const prefix = redis.options.keyPrefix ?? '';
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.call('UNLINK', ...keys.map((k: string) => k.slice(prefix.length)));
    } while (cursor !== '0');
  }
}
