/**
 * Fuzzed bodies on the gate's and governance's public routes (fast-check): every answer is a
 * 2xx or a 4xx with an error body naming the problem, never a 5xx, and a refused request
 * changes nothing: no configuration version is taken, no reservation is held, no decision is
 * recorded.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AllotRig, basicCatalog, grant, openAllot } from './support/allot-app.ts';
import { anything, expectClientError } from './support/fuzz.ts';

describe('fuzzed gate and governance routes', () => {
  let rig: AllotRig;
  beforeAll(async () => {
    rig = await openAllot('embedded');
    await basicCatalog(rig);
    await grant(rig, 'acme', '1000');
  });
  afterAll(() => rig.close());

  const version = async () => {
    const { rows } = await rig.sql.query<{ version: string }>(
      'SELECT version FROM config.versions WHERE tenant = $1',
      [rig.tenant],
    );
    return Number(rows[0]?.version ?? 0);
  };
  const held = async () =>
    (await rig.ok<{ balances: { held: string }[] }>('GET', '/v1/customers/acme/balances')).balances[0]?.held;

  it('decisions: never a 5xx; a refused one holds nothing', async () => {
    const heldBefore = await held();
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            customerId: fc.oneof(fc.constant('acme'), anything),
            feature: fc.oneof(fc.constant('llm-tokens'), anything),
            units: fc.oneof(
              fc.constantFrom(
                -1,
                '1e9',
                '0.0000001',
                '9999999999999999',
                9007199254.740993,
                '4503599627.370496',
              ),
              anything,
            ),
            dimensions: fc.oneof(fc.dictionary(fc.string(), anything), anything),
            resourceId: anything,
            ttlMs: fc.oneof(fc.integer(), anything),
            idempotencyKey: anything,
          },
          { requiredKeys: [] },
        ),
        async (body) => {
          const res = await rig.call('POST', '/v1/decisions', body);
          expectClientError(res.status, res.body);
          if (res.status === 200 && (res.body as { decision: string }).decision === 'allow') {
            await rig.ok(
              'POST',
              `/v1/reservations/${(res.body as { reservationId: string }).reservationId}/release`,
              {},
            );
          }
          if (res.status >= 400) expect(await held()).toBe(heldBefore);
        },
      ),
      { numRuns: 200 },
    );
    expect(await held()).toBe(heldBefore);
  });

  it('settle and release of made-up reservations: 4xx, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ minLength: 1 }),
          fc.constant('rs_YWNtZQ.bGxt.Y3JlZGl0cw..x'),
          fc.constant('rs_....'),
        ),
        fc.oneof(fc.record({ units: anything, dimensions: anything }, { requiredKeys: [] }), anything),
        async (id, body) => {
          const path = encodeURIComponent(id);
          const settle = await rig.call('POST', `/v1/reservations/${path}/settle`, body);
          expectClientError(settle.status, settle.body);
          const release = await rig.call('POST', `/v1/reservations/${path}/release`, {});
          expectClientError(release.status, release.body);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('configuration: never a 5xx; a refused write takes no version', async () => {
    const routes = [
      ['PUT', '/v1/budgets/fz'],
      ['PUT', '/v1/plans/fz'],
      ['PUT', '/v1/blocks/fz'],
      ['PUT', '/v1/features/fz'],
      ['PUT', '/v1/customers/acme/subscription'],
      ['PUT', '/v1/customers/acme/entities/fz'],
    ] as const;
    const budgetish = fc.record(
      {
        customerId: fc.oneof(fc.constant('acme'), anything),
        scope: fc.oneof(fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.constant('*'))), anything),
        metric: fc.oneof(fc.constantFrom('credits', 'requests', 'units:llm-tokens', 'units:nope'), anything),
        period: fc.oneof(
          fc.constantFrom('day', 'rolling:999', 'rolling:60000', 'never', 'fortnight'),
          anything,
        ),
        timeZone: fc.oneof(fc.constantFrom('UTC', 'Europe/Berlin', 'Mars/Olympus'), anything),
        limit: fc.oneof(fc.constantFrom('10', '1.5', '-1', '1e3'), anything),
        mode: fc.oneof(fc.constantFrom('hard', 'soft'), anything),
        kind: fc.oneof(fc.constantFrom('budget', 'rate', 'concurrency'), anything),
        alerts: fc.oneof(fc.array(fc.double()), anything),
        name: fc.oneof(fc.constant('Pro'), anything),
        type: fc.oneof(fc.constantFrom('team', 'boolean', 'metered', 'BAD TYPE'), anything),
        parentId: fc.oneof(fc.constantFrom('fz', 'nobody'), anything),
        plan: fc.oneof(fc.constantFrom('pro', 'nope'), anything),
        entitlements: fc.oneof(
          fc.array(
            fc.record(
              { feature: fc.oneof(fc.constant('llm-tokens'), anything), limit: anything },
              { requiredKeys: [] },
            ),
          ),
          anything,
        ),
        creditRates: fc.oneof(
          fc.array(
            fc.record(
              {
                feature: fc.constant('llm-tokens'),
                creditType: fc.constant('credits'),
                rate: anything,
                formula: fc.oneof(
                  fc.constantFrom('units * 2', 'units +', 'undefined_fn(units)', '[1,2]'),
                  anything,
                ),
              },
              { requiredKeys: [] },
            ),
          ),
          anything,
        ),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.oneof(budgetish, anything),
        async ([method, url], body) => {
          const before = await version();
          const res = await rig.call(method, url, body);
          expectClientError(res.status, res.body);
          if (res.status >= 400) expect(await version()).toBe(before);
        },
      ),
      { numRuns: 300 },
    );
  });
});
