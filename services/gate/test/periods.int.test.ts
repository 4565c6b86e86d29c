/**
 * Budget periods at their edges, with time under the test's control (the embedded hot state's
 * clock and the gate's): calendar periods start again at the instant their window starts in
 * the budget's time zone, across a DST change; rolling windows slide bucket by bucket.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type GateRig, openGateRig } from './support/rig.ts';

const clock = { now: 0 };
const at = (iso: string) => {
  clock.now = Date.parse(iso);
};

async function setup(rig: GateRig, budget: Record<string, unknown>): Promise<void> {
  await rig.put('feature', 'req', { name: 'Requests', type: 'metered' });
  await rig.put('plan', 'p', {
    name: 'P',
    entitlements: [{ feature: 'req' }],
    creditRates: [{ feature: 'req', creditType: 'credits', rate: '1' }],
  });
  await rig.put('customer', 'c', { name: 'C' });
  await rig.put('subscription', 'c', { plan: 'p', addons: [], overrides: [] });
  await rig.put('budget', 'b', {
    customerId: 'c',
    scope: {},
    metric: 'credits',
    mode: 'hard',
    kind: 'budget',
    alerts: [],
    ...budget,
  });
  await rig.grant('c', 1_000_000_000n);
}

describe('budget periods', () => {
  let rig: GateRig;
  afterEach(() => rig.close());

  const use = async (units: number) => {
    const d = await rig.gate.engine.decide(rig.tenant, {
      customerId: 'c',
      feature: 'req',
      units: String(units),
      dimensions: {},
      ttlMs: 3_600_000,
    });
    if (d.decision === 'allow') await rig.gate.engine.settle(rig.tenant, d.reservationId!, {});
    return d.decision;
  };

  it('a day budget in America/New_York starts again at local midnight, also on the DST day', async () => {
    at('2026-03-07T12:00:00-05:00');
    rig = await openGateRig('embedded', { clock: () => clock.now });
    await setup(rig, { period: 'day', timeZone: 'America/New_York', limit: '10' });
    expect(await use(10)).toBe('allow');
    at('2026-03-07T23:59:59.999-05:00');
    expect(await use(1)).toBe('deny');
    at('2026-03-08T00:00:00.000-05:00');
    expect(await use(10)).toBe('allow');
    // 2026-03-08 has 23 hours: the next day starts at 00:00 EDT, 23 hours later.
    at('2026-03-08T23:59:59.999-04:00');
    expect(await use(1)).toBe('deny');
    at('2026-03-09T00:00:00.000-04:00');
    expect(await use(10)).toBe('allow');
  });

  it('a month budget in Asia/Kolkata starts again at local midnight on the 1st', async () => {
    at('2026-01-31T23:00:00+05:30');
    rig = await openGateRig('embedded', { clock: () => clock.now });
    await setup(rig, { period: 'month', timeZone: 'Asia/Kolkata', limit: '5' });
    expect(await use(5)).toBe('allow');
    at('2026-01-31T18:29:59.999Z'); // 23:59:59.999 IST
    expect(await use(1)).toBe('deny');
    at('2026-01-31T18:30:00.000Z'); // 2026-02-01 00:00 IST
    expect(await use(5)).toBe('allow');
  });

  it('a rolling window slides: usage leaves it bucket by bucket', async () => {
    at('2026-05-01T10:00:00Z');
    rig = await openGateRig('embedded', { clock: () => clock.now });
    await setup(rig, { period: 'rolling:60000', limit: '10' });
    expect(await use(6)).toBe('allow'); // at 0 s
    at('2026-05-01T10:00:30Z');
    expect(await use(4)).toBe('allow'); // at 30 s: 10 in the window
    expect(await use(1)).toBe('deny');
    at('2026-05-01T10:00:59.999Z');
    expect(await use(1)).toBe('deny');
    at('2026-05-01T10:01:00.000Z'); // the first 6 leave
    expect(await use(6)).toBe('allow');
    expect(await use(1)).toBe('deny');
    at('2026-05-01T10:01:30.000Z'); // the 4 leave
    expect(await use(4)).toBe('allow');
  });

  it('a rate limit per calendar hour counts at decision and answers when the hour ends', async () => {
    at('2026-05-01T10:59:00Z');
    rig = await openGateRig('embedded', { clock: () => clock.now });
    await setup(rig, { kind: 'rate', metric: 'requests', period: 'hour', limit: '2' });
    expect(await use(1)).toBe('allow');
    expect(await use(1)).toBe('allow');
    const denied = await rig.gate.engine.decide(rig.tenant, {
      customerId: 'c',
      feature: 'req',
      units: '1',
      dimensions: {},
      ttlMs: 60_000,
    });
    expect(denied).toMatchObject({ reason: 'rate_limited', retryAfterMs: 60_000 });
    at('2026-05-01T11:00:00Z');
    expect(await use(1)).toBe('allow');
  });
});
