import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Backend, type GateRig, openGateRig } from './support/rig.ts';

describe.each<Backend>(['embedded', 'real'])('gate smoke on %s', (backend) => {
  let rig: GateRig;
  beforeEach(async () => {
    rig = await openGateRig(backend);
  });
  afterEach(() => rig.close());

  it('allows, settles, denies', async () => {
    await rig.put('feature', 'llm-tokens', { name: 'LLM tokens', type: 'metered' });
    await rig.put('plan', 'pro', {
      name: 'Pro',
      entitlements: [{ feature: 'llm-tokens' }],
      creditRates: [{ feature: 'llm-tokens', creditType: 'credits', rate: '0.002' }],
    });
    await rig.put('customer', 'acme', { name: 'Acme' });
    await rig.put('subscription', 'acme', { plan: 'pro', addons: [], overrides: [] });
    await rig.put('budget', 'b1', {
      customerId: 'acme',
      scope: {},
      metric: 'credits',
      period: 'month',
      limit: '5',
      mode: 'hard',
      kind: 'budget',
      alerts: [],
    });
    await rig.grant('acme', 1000_000_000n);
    const d = await rig.gate.engine.decide(rig.tenant, {
      customerId: 'acme',
      feature: 'llm-tokens',
      units: '1200',
      dimensions: { user: 'u1' },
      ttlMs: 60000,
    });
    console.log(JSON.stringify(d));
    expect(d.decision).toBe('allow');
    const s = await rig.gate.engine.settle(rig.tenant, d.reservationId!, { units: '1000' });
    console.log(JSON.stringify(s));
    const d2 = await rig.gate.engine.decide(rig.tenant, {
      customerId: 'acme',
      feature: 'llm-tokens',
      units: '2000',
      dimensions: {},
      ttlMs: 60000,
    });
    console.log(JSON.stringify(d2));
    expect(d2.decision).toBe('deny');
  });
});
