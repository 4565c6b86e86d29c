/**
 * Metering beside the gate (all-in-one app, both backends): the gate's settles become usage
 * events on their own, and the export carries aggregates only, in commit order, re-exportable.
 */
import { until } from '@allot/kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servicesOf } from '../services/allot/src/app.ts';
import { type AllotRig, type Backend, basicCatalog, grant, KEYS, openAllot } from './support/allot-app.ts';

describe.each<Backend>(['real', 'embedded'])('metering and the gate on %s backends', (backend) => {
  let rig: AllotRig;
  const caughtUp = () => servicesOf(rig.app).metering.worker!.caughtUp({ timeoutMs: 30_000 });

  beforeAll(async () => {
    rig = await openAllot(backend);
    await basicCatalog(rig, ['acme', 'globex']);
    await grant(rig, 'acme', '1000');
    await grant(rig, 'globex', '1000');
    await rig.ok('PUT', '/v1/meters/settled-tokens', {
      eventType: 'allot.reservation.settled',
      aggregation: 'SUM',
      valueProperty: '$.units',
      groupBy: { feature: '$.feature' },
    });
    await rig.ok('PUT', '/v1/meters/settled-cost', {
      eventType: 'allot.reservation.settled',
      aggregation: 'SUM',
      valueProperty: '$.cost',
    });
  });

  afterAll(async () => {
    await rig?.close();
  });

  it('turns settled reservations into usage, once, also when a settle is retried', async () => {
    const settled: Record<string, number> = { acme: 0, globex: 0 };
    for (const [customerId, units, actual] of [
      ['acme', 1000, 800],
      ['acme', 500, 500],
      ['globex', 2000, 1500],
    ] as const) {
      const d = await rig.ok<{ reservationId: string }>('POST', '/v1/decisions', {
        customerId,
        feature: 'llm-tokens',
        units,
      });
      await rig.ok('POST', `/v1/reservations/${d.reservationId}/settle`, { units: actual });
      // A retried settle answers the same and meters nothing more.
      await rig.ok('POST', `/v1/reservations/${d.reservationId}/settle`, { units: actual });
      settled[customerId]! += actual;
    }
    // A released reservation is no usage.
    const released = await rig.ok<{ reservationId: string }>('POST', '/v1/decisions', {
      customerId: 'acme',
      feature: 'llm-tokens',
      units: 100,
    });
    await rig.ok('POST', `/v1/reservations/${released.reservationId}/release`);
    const deadline = Date.now() + 30_000;
    let data: { value: number; subject: string; groupBy: Record<string, string> }[] = [];
    while (Date.now() < deadline) {
      await caughtUp();
      const res = await rig.ok<{ data: typeof data }>(
        'GET',
        '/v1/meters/settled-tokens/query?groupBy=subject&groupBy=feature',
      );
      data = res.data;
      if (data.length === 2) break;
    }
    expect(data.sort((a, b) => a.subject.localeCompare(b.subject))).toMatchObject([
      { subject: 'acme', value: 1300, groupBy: { feature: 'llm-tokens' } },
      { subject: 'globex', value: 1500, groupBy: { feature: 'llm-tokens' } },
    ]);
    const cost = await rig.ok<{ data: { value: number }[] }>('GET', '/v1/meters/settled-cost/query');
    expect(cost.data[0]!.value).toBeCloseTo(2800 * 0.002, 9);
  });

  it('exports aggregates only, in commit order, the same again from the same cursor', async () => {
    await caughtUp();
    type Page = { aggregates: Record<string, unknown>[]; cursor: string };
    // A page never passes a transaction still running anywhere on the server: poll for it.
    let last = '';
    const first = await until('the export, settled', async () => {
      const page = await rig.ok<Page>('GET', '/v1/metering/export?after=0&limit=1000');
      const same = JSON.stringify(page) === last;
      last = JSON.stringify(page);
      return page.aggregates.length >= 4 && same && page;
    });
    expect(first.aggregates.length).toBeGreaterThan(0);
    for (const row of first.aggregates) {
      expect(Object.keys(row).sort()).toEqual(
        [
          'count',
          'customerId',
          'groupBy',
          'meter',
          'meterVersion',
          'value',
          'version',
          'windowEnd',
          'windowStart',
        ].sort(),
      );
    }
    const versions = first.aggregates.map((a) => BigInt(a.version as string));
    expect([...versions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(versions);
    const again = await rig.ok<typeof first>('GET', '/v1/metering/export?after=0&limit=1000');
    expect(again).toEqual(first);
    const none = await rig.ok<typeof first>('GET', `/v1/metering/export?after=${first.cursor}`);
    expect(none).toEqual({ aggregates: [], cursor: first.cursor });

    // New usage shows up after the cursor, under a higher version.
    const res = await rig.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { authorization: `Bearer ${KEYS.admin}`, 'content-type': 'application/json' },
      payload: JSON.stringify({
        id: 'manual-1',
        source: 'test',
        type: 'allot.reservation.settled',
        subject: 'acme',
        data: { feature: 'llm-tokens', units: 5, cost: 0.01 },
      }),
    });
    expect(res.statusCode).toBe(204);
    await caughtUp();
    const next = await until('the new rows exported', async () => {
      const page = await rig.ok<Page>('GET', `/v1/metering/export?after=${first.cursor}`);
      return page.aggregates.length === 2 && page;
    });
    for (const row of next.aggregates)
      expect(BigInt(row.version as string)).toBeGreaterThan(BigInt(first.cursor));
    expect(next.aggregates.find((a) => a.meter === 'settled-tokens')).toMatchObject({ customerId: 'acme' });
    expect((await rig.call('GET', '/v1/metering/export?after=x')).status).toBe(400);
  });
});
