/**
 * The gate when things go wrong, on real servers: a kill switch set through one gate process
 * reaches another within a second; with its Redis killed, a gate answers 503 (fail-closed, the
 * default) or allows without reserving (fail-open), and decides normally again once Redis is
 * back (rebuilt from PostgreSQL).
 */

import { AppError } from '@allot/kit';
import { RedisHotState } from '@allot/kit/hot';
import { until } from '@allot/kit/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type GateRig, openGateRig } from '../services/gate/test/support/rig.ts';
import { RedisServer, stopAll } from './support/servers.ts';

async function catalog(rig: GateRig): Promise<void> {
  await rig.put('feature', 'llm-tokens', { name: 'LLM tokens', type: 'metered' });
  await rig.put('plan', 'pro', {
    name: 'Pro',
    entitlements: [{ feature: 'llm-tokens' }],
    creditRates: [{ feature: 'llm-tokens', creditType: 'credits', rate: '0.002' }],
  });
  await rig.put('customer', 'acme', { name: 'Acme' });
  await rig.put('subscription', 'acme', { plan: 'pro', addons: [], overrides: [] });
  await rig.grant('acme', 100_000_000n);
}

const request = {
  customerId: 'acme',
  feature: 'llm-tokens',
  units: '1000',
  dimensions: { agent: 'a7' },
  ttlMs: 60_000,
};

describe('gate faults', () => {
  const rigs: GateRig[] = [];
  afterEach(async () => {
    for (const rig of rigs.splice(0)) await rig.close();
    await stopAll();
  });

  it('a block set through one gate process stops every other within a second', async () => {
    const rig = await openGateRig('real');
    rigs.push(rig);
    await catalog(rig);
    const other = await rig.another();
    expect((await other.engine.decide(rig.tenant, request)).decision).toBe('allow');
    await rig.put('block', 'kill-a7', { scope: { agent: 'a7' } });
    const started = Date.now();
    await until(
      'the block on the other gate',
      async () => {
        const d = await other.engine.decide(rig.tenant, request);
        return d.reason === 'blocked';
      },
      1000,
    );
    expect(Date.now() - started).toBeLessThan(1000);
    await rig.remove('block', 'kill-a7');
    await until(
      'the unblock on the other gate',
      async () => (await other.engine.decide(rig.tenant, request)).decision === 'allow',
      1000,
    );
  });

  it.each([false, true])('with Redis down (fail-open %s), then back empty', async (failOpen) => {
    const redis = await RedisServer.start();
    const hot = await RedisHotState.open({ url: redis.url, requireConnection: false, commandTimeoutMs: 300 });
    const rig = await openGateRig('real', { hot, failOpen });
    rigs.push(rig);
    await catalog(rig);
    const first = await rig.gate.engine.decide(rig.tenant, request);
    expect(first.decision).toBe('allow');
    await redis.kill();
    await until(
      'the client to notice',
      async () =>
        await hot.ping().then(
          () => false,
          () => true,
        ),
    );
    if (failOpen) {
      const d = await rig.gate.engine.decide(rig.tenant, request);
      expect(d).toMatchObject({ decision: 'allow', reservationId: null, decidedBy: 'fail_open' });
    } else {
      const error = await rig.gate.engine.decide(rig.tenant, request).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AppError);
      expect(error).toMatchObject({ code: 'unavailable', status: 503 });
    }
    // Back, but empty: the customer is rebuilt from PostgreSQL, the first hold included.
    await redis.start();
    await until(
      'decisions again',
      async () => {
        const d = await rig.gate.engine.decide(rig.tenant, request).catch(() => null);
        return d?.decision === 'allow' && d.reservationId !== null;
      },
      20_000,
    );
    const settled = await rig.gate.engine.settle(rig.tenant, first.reservationId!, { units: '500' });
    expect(settled).toMatchObject({ status: 'settled', settled: '1', released: '1' });
    await hot.close();
  });
});
