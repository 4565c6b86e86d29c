/**
 * Fuzzed bodies and queries on metering's public routes (fast-check): never a 5xx; a refused
 * ingest stores nothing of its request (no event, no dedupe mark), a refused meter takes no
 * configuration version.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servicesOf } from '../services/allot/src/app.ts';
import { type AllotRig, KEYS, openAllot } from './support/allot-app.ts';
import { anything, expectClientError } from './support/fuzz.ts';

describe('fuzzed metering routes', () => {
  let rig: AllotRig;
  beforeAll(async () => {
    rig = await openAllot('embedded');
    await rig.ok('PUT', '/v1/meters/tokens', {
      eventType: 'llm',
      aggregation: 'SUM',
      valueProperty: '$.tokens',
      groupBy: { model: '$.model' },
    });
  });
  afterAll(() => rig.close());

  const stored = async () => {
    await servicesOf(rig.app).metering.worker!.caughtUp({ timeoutMs: 30_000 });
    const { rows } = await rig.sql.query<{ n: string }>(
      'SELECT (SELECT count(*) FROM metering.seen WHERE tenant = $1) + (SELECT count(*) FROM metering.events WHERE tenant = $1) AS n',
      [rig.tenant],
    );
    return Number(rows[0]!.n);
  };

  const event = fc.record(
    {
      specversion: fc.oneof(fc.constant('1.0'), anything),
      id: fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), anything),
      source: fc.oneof(fc.constant('fuzz'), anything),
      type: fc.oneof(fc.constant('llm'), fc.constant('other'), anything),
      subject: fc.oneof(fc.constant('acme'), anything),
      time: fc.oneof(
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        anything,
      ),
      data: fc.oneof(
        fc.record(
          { tokens: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)), model: anything },
          { requiredKeys: [] },
        ),
        anything,
      ),
    },
    { requiredKeys: [] },
  );

  it('ingest: never a 5xx; a refused request stores nothing', async () => {
    const before = await stored();
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(event, fc.array(event, { maxLength: 5 }), anything),
        fc.constantFrom(
          'application/json',
          'application/cloudevents+json',
          'application/cloudevents-batch+json',
          'application/x-ndjson',
          'text/plain',
        ),
        async (body, contentType) => {
          const payload =
            contentType === 'application/x-ndjson' && Array.isArray(body)
              ? body.map((e) => JSON.stringify(e)).join('\n')
              : JSON.stringify(body);
          const res = await rig.app.inject({
            method: 'POST',
            url: '/api/v1/events',
            headers: { authorization: `Bearer ${KEYS.admin}`, 'content-type': contentType },
            payload: payload ?? '',
          });
          expectClientError(res.statusCode, res.body ? JSON.parse(res.body) : null);
          if (res.statusCode === 204) accepted++;
        },
      ),
      { numRuns: 300 },
    );
    // Whatever was accepted was stored; nothing else was.
    const after = await stored();
    if (accepted === 0) expect(after).toBe(before);
    else expect(after).toBeGreaterThanOrEqual(before);
  });

  it('every refused event names its place and field, and nothing of the request is kept', async () => {
    const before = await stored();
    await fc.assert(
      fc.asyncProperty(fc.array(event, { minLength: 1, maxLength: 5 }), async (events) => {
        // One bad event spoils the request: the good ones with it are not stored either.
        const batch = [
          {
            specversion: '1.0',
            id: `ok-${Math.random()}`,
            source: 'fuzz',
            type: 'llm',
            subject: 'acme',
            data: { tokens: 1 },
          },
          ...events,
          { id: 'bad', source: 'fuzz', type: 'llm' },
        ];
        const res = await rig.call('POST', '/v1/events', batch);
        expect(res.status).toBe(400);
        expect((res.body as { message: string }).message).toMatch(/events\[\d+\]/);
      }),
      { numRuns: 100 },
    );
    expect(await stored()).toBe(before);
  });

  it('meters and queries: never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            eventType: anything,
            aggregation: fc.oneof(
              fc.constantFrom('SUM', 'COUNT', 'UNIQUE_COUNT', 'AVG', 'MIN', 'MAX', 'LATEST'),
              anything,
            ),
            valueProperty: fc.oneof(
              fc.constantFrom('$.a', '$[0]', "$['x y']", '$..a', '$.a[*]', 'a'),
              anything,
            ),
            groupBy: fc.oneof(fc.dictionary(fc.string(), fc.oneof(fc.constant('$.m'), anything)), anything),
          },
          { requiredKeys: [] },
        ),
        async (body) => {
          const res = await rig.call('PUT', '/v1/meters/fuzzed', body);
          expectClientError(res.status, res.body);
        },
      ),
      { numRuns: 200 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(
          fc.constantFrom(
            'from',
            'to',
            'windowSize',
            'windowTimeZone',
            'subject',
            'groupBy',
            'filterGroupBy[model]',
            'filterGroupBy[x]',
          ),
          fc.oneof(
            fc.string(),
            fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
            fc.constantFrom('HOUR', 'DAY', 'UTC', 'model'),
          ),
        ),
        async (params) => {
          const res = await rig.call('GET', `/api/v1/meters/tokens/query?${new URLSearchParams(params)}`);
          expectClientError(res.status, res.body);
        },
      ),
      { numRuns: 200 },
    );
  });
});
