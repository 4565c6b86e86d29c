/**
 * Metering end to end on both backends: events in through every content type (with
 * duplicates, backdated and late ones), through JetStream and the worker into PostgreSQL, and
 * every aggregation and query parameter checked against values computed independently from
 * the raw events (test/support/usage-oracle.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servicesOf } from '../services/allot/src/app.ts';
import { type AllotRig, type Backend, KEYS, openAllot } from './support/allot-app.ts';
import {
  expectedUsage,
  type OracleEvent,
  type OracleMeter,
  type OracleQuery,
  type OracleRow,
} from './support/usage-oracle.ts';

const METERS: Record<string, OracleMeter> = {
  tokens: {
    eventType: 'llm',
    aggregation: 'SUM',
    value: '$.tokens',
    groupBy: { model: '$.model', region: '$.region' },
  },
  calls: { eventType: 'llm', aggregation: 'COUNT', groupBy: { model: '$.model' } },
  users: { eventType: 'llm', aggregation: 'UNIQUE_COUNT', value: '$.user', groupBy: { model: '$.model' } },
  'avg-latency': { eventType: 'llm', aggregation: 'AVG', value: '$.latency' },
  'min-latency': { eventType: 'llm', aggregation: 'MIN', value: '$.latency', groupBy: { model: '$.model' } },
  'max-latency': { eventType: 'llm', aggregation: 'MAX', value: '$.latency' },
  'last-balance': { eventType: 'balance', aggregation: 'LATEST', value: '$.balance' },
};

/** A small seeded generator: the same events every run. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function makeEvents(now: number): OracleEvent[] {
  const rand = prng(7);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const events: OracleEvent[] = [];
  // Over the last three days (backdated), distinct milliseconds so LATEST has one answer.
  const base = Math.floor((now - 3 * 86_400_000) / 60_000) * 60_000;
  const used = new Set<number>();
  for (let i = 0; i < 600; i++) {
    let time = base + Math.floor(rand() * 3 * 86_400_000);
    while (used.has(time)) time++;
    used.add(time);
    const llm = rand() < 0.8;
    events.push({
      id: `e${i}`,
      source: pick(['api', 'worker']),
      type: llm ? 'llm' : 'balance',
      subject: pick(['acme', 'globex', 'initech']),
      time,
      data: llm
        ? {
            tokens: Math.floor(rand() * 5000) + Math.floor(rand() * 100) / 100,
            model: pick(['gpt-5', 'claude', 'llama']),
            ...(rand() < 0.8 ? { region: pick(['eu', 'us']) } : {}),
            user: `u${Math.floor(rand() * 12)}`,
            latency: Math.floor(rand() * 2000) / 10,
          }
        : { balance: Math.floor(rand() * 100000) / 100 },
    });
  }
  return events;
}

function cloud(e: OracleEvent, data = e.data) {
  return {
    specversion: '1.0',
    id: e.id,
    source: e.source,
    type: e.type,
    subject: e.subject,
    time: new Date(e.time).toISOString(),
    data,
  };
}

function normalise(rows: OracleRow[]) {
  return rows
    .map((r) => ({
      windowStart: r.windowStart === null ? null : new Date(r.windowStart).toISOString(),
      subject: r.subject,
      groupBy: r.groupBy,
      value: Math.round(r.value * 1e6) / 1e6,
    }))
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

describe.each<Backend>(['real', 'embedded'])('metering on %s backends', (backend) => {
  let rig: AllotRig;
  let events: OracleEvent[];
  const now = Date.now();

  const send = async (contentType: string, payload: string) => {
    const res = await rig.app.inject({
      method: 'POST',
      url: '/api/v1/events',
      headers: { authorization: `Bearer ${KEYS.admin}`, 'content-type': contentType },
      payload,
    });
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null };
  };

  beforeAll(async () => {
    rig = await openAllot(backend);
    for (const [slug, m] of Object.entries(METERS)) {
      await rig.ok('PUT', `/v1/meters/${slug}`, {
        eventType: m.eventType,
        aggregation: m.aggregation,
        ...(m.value ? { valueProperty: m.value } : {}),
        ...(m.groupBy ? { groupBy: m.groupBy } : {}),
      });
    }
    events = makeEvents(now);
    // A third as single CloudEvents, a third as batches, a third as NDJSON, out of time order.
    const third = Math.floor(events.length / 3);
    for (const e of events.slice(0, 40)) {
      expect((await send('application/cloudevents+json', JSON.stringify(cloud(e)))).status).toBe(204);
    }
    for (let i = 40; i < third; i += 50) {
      const batch = events.slice(i, Math.min(i + 50, third)).map((e) => cloud(e));
      expect((await send('application/cloudevents-batch+json', JSON.stringify(batch))).status).toBe(204);
    }
    expect(
      (await send('application/json', JSON.stringify(events.slice(third, 2 * third).map((e) => cloud(e)))))
        .status,
    ).toBe(204);
    const ndjson = events
      .slice(2 * third)
      .map((e) => JSON.stringify(cloud(e)))
      .join('\n');
    expect((await send('application/x-ndjson', ndjson)).status).toBe(204);
    // Duplicates: resent as they were, and resent with other data (the first one counts).
    const again = events.filter((_, i) => i % 7 === 0);
    expect((await send('application/json', JSON.stringify(again.map((e) => cloud(e))))).status).toBe(204);
    const changed = events.filter((e, i) => i % 11 === 0 && e.type === 'llm');
    const resent = changed.map((e) => cloud(e, { ...e.data, tokens: 999999 }));
    expect((await send('application/json', JSON.stringify(resent))).status).toBe(204);
    await servicesOf(rig.app).metering.worker!.caughtUp({ timeoutMs: 60_000 });
  });

  afterAll(async () => {
    await rig?.close();
  });

  const query = async (slug: string, q: OracleQuery) => {
    const params = new URLSearchParams();
    if (q.from !== undefined) params.set('from', new Date(q.from).toISOString());
    if (q.to !== undefined) params.set('to', new Date(q.to).toISOString());
    if (q.windowSize) params.set('windowSize', q.windowSize);
    if (q.tz) params.set('windowTimeZone', q.tz);
    for (const s of q.subjects ?? []) params.append('subject', s);
    for (const g of q.groupBy ?? []) params.append('groupBy', g);
    for (const [k, v] of Object.entries(q.filters ?? {})) params.set(`filterGroupBy[${k}]`, v);
    const res = await rig.call<{
      data: {
        value: number;
        windowStart: string;
        subject: string | null;
        groupBy: Record<string, string | null>;
      }[];
    }>('GET', `/api/v1/meters/${slug}/query?${params}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.data;
  };

  const check = async (slug: string, q: OracleQuery) => {
    const got = await query(slug, q);
    const want = expectedUsage(events, METERS[slug]!, q);
    expect(want.length, 'the oracle expects some usage').toBeGreaterThan(0);
    const gotRows = got.map((r) => ({
      windowStart: q.windowSize ? r.windowStart : null,
      subject: r.subject,
      groupBy: r.groupBy,
      value: r.value,
    }));
    expect(normalise(gotRows as OracleRow[] as never)).toEqual(normalise(want));
    return got;
  };

  it('sums, counts, distinct-counts, averages, and takes min, max and latest over the whole range', async () => {
    for (const slug of Object.keys(METERS)) await check(slug, {});
  });

  it('per minute, hour and day, in UTC and in time zones with odd offsets', async () => {
    for (const windowSize of ['MINUTE', 'HOUR', 'DAY'] as const) {
      for (const tz of ['UTC', 'America/New_York', 'Asia/Kolkata']) {
        await check('tokens', { windowSize, tz });
      }
    }
    await check('users', { windowSize: 'DAY', tz: 'Asia/Kolkata' });
    await check('last-balance', { windowSize: 'HOUR' });
    await check('avg-latency', { windowSize: 'DAY', tz: 'America/New_York' });
  });

  it('groups by subject and properties, filters by subjects and group values, and bounds by from and to', async () => {
    const from = Math.floor((now - 2 * 86_400_000) / 60_000) * 60_000;
    const to = from + 86_400_000 + 37 * 60_000;
    await check('tokens', { groupBy: ['subject', 'model'] });
    await check('tokens', { groupBy: ['region'] });
    await check('calls', { subjects: ['acme', 'initech'], groupBy: ['model'], windowSize: 'DAY' });
    await check('tokens', { filters: { model: 'claude' }, groupBy: ['subject'] });
    await check('min-latency', { filters: { model: 'llama' }, subjects: ['globex'] });
    await check('tokens', { from, to, windowSize: 'HOUR', groupBy: ['model'] });
    await check('users', { from, to, groupBy: ['subject'] });
    const rows = await check('calls', { from, to });
    expect(rows[0]).toMatchObject({
      windowStart: new Date(from).toISOString(),
      windowEnd: new Date(to).toISOString(),
    });
  });

  it('counts a duplicate once, and the first copy of it', async () => {
    const { metering } = servicesOf(rig.app);
    expect(metering.worker!.stats.duplicates).toBeGreaterThan(0);
    const raw = await rig.sql.query<{ n: string }>(
      'SELECT count(*)::text AS n FROM metering.events WHERE tenant = $1',
      [rig.tenant],
    );
    expect(Number(raw.rows[0]!.n)).toBe(events.length);
  });

  it('refuses bad events naming the event and the field, and stores nothing of the request', async () => {
    const good = cloud(events[1]!);
    const cases: [unknown, RegExp][] = [
      [[good, { ...good, id: 'x1', subject: undefined }], /events\[1\] \(id "x1"\)\.subject: required/],
      [[{ ...good, id: 'x2', time: 'yesterday' }], /events\[0\].*\.time: expected an RFC 3339 time/],
      [
        [{ ...good, id: 'x3', time: new Date(now - 30 * 86_400_000).toISOString() }],
        /\.time: older than the accepted lateness/,
      ],
      [
        [{ ...good, id: 'x4', data: { model: 'gpt-5' } }],
        /events\[0\].*\.data: \$\.tokens is missing \(meter tokens\)/,
      ],
      [
        [{ ...good, id: 'x5', data: { ...good.data, tokens: 'many' } }],
        /\.data: \$\.tokens must be a number/,
      ],
      [[{ ...good, id: 'x6', specversion: '0.3' }], /\.specversion: expected "1.0"/],
      [['not an event'], /events\[0\]: expected a CloudEvent object/],
      [[], /body: no events/],
    ];
    for (const [body, message] of cases) {
      const res = await send('application/json', JSON.stringify(body));
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.message).toMatch(message);
    }
    expect((await send('application/x-ndjson', `${JSON.stringify(good)}\n{oops`)).body.message).toMatch(
      /line 2 is not valid JSON/,
    );
    expect((await send('application/json', '{oops')).status).toBe(400);
    await servicesOf(rig.app).metering.worker!.caughtUp({ timeoutMs: 30_000 });
    const stored = await rig.sql.query<{ n: string }>(
      "SELECT count(*)::text AS n FROM metering.seen WHERE tenant = $1 AND id LIKE 'x%'",
      [rig.tenant],
    );
    expect(stored.rows[0]!.n).toBe('0');
  });

  it('refuses bad queries naming the parameter', async () => {
    const cases: [string, number, RegExp][] = [
      ['/api/v1/meters/nope/query', 404, /meter nope not found/],
      ['/api/v1/meters/tokens/query?windowSize=WEEK', 400, /windowSize/],
      ['/api/v1/meters/tokens/query?windowTimeZone=Mars/Base', 400, /windowTimeZone: unknown time zone/],
      ['/api/v1/meters/tokens/query?from=2026-01-01T00:00:30Z', 400, /from: must fall on a whole minute/],
      [
        '/api/v1/meters/tokens/query?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z',
        400,
        /to: must be after from/,
      ],
      ['/api/v1/meters/tokens/query?groupBy=colour', 400, /groupBy: meter tokens has no group-by "colour"/],
      ['/api/v1/meters/tokens/query?filterGroupBy[colour]=red', 400, /filterGroupBy\[colour\]/],
    ];
    for (const [url, status, message] of cases) {
      const res = await rig.call('GET', url);
      expect(res.status, url).toBe(status);
      expect((res.body as { message: string }).message, url).toMatch(message);
    }
    const meter = await rig.call('PUT', '/v1/meters/bad', { eventType: 'x', aggregation: 'SUM' });
    expect(meter.status).toBe(422);
    expect((meter.body as { message: string }).message).toMatch(/valueProperty: SUM needs a valueProperty/);
    const path = await rig.call('PUT', '/v1/meters/bad', {
      eventType: 'x',
      aggregation: 'SUM',
      valueProperty: '$..x',
    });
    expect(path.status).toBe(400);
  });

  it('keeps tenants apart', async () => {
    const res = await rig.call('GET', '/api/v1/meters/tokens/query', undefined, 'other');
    expect(res.status).toBe(404);
  });
});
