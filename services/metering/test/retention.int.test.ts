/**
 * Retention on the real PostgreSQL: raw events live in one partition per UTC day, which is
 * dropped once the day is past the retention; dedupe marks are forgotten past their window.
 */
import { freshPgDatabase } from '@allot/kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UsageEvent } from '../src/domain/events.ts';
import { compileMeter } from '../src/domain/meters.ts';
import { migrateMetering } from '../src/service.ts';
import { applyBatches, EventPartitions, partitionDays } from '../src/store/writer.ts';

const DAY = 86_400_000;

describe('raw event retention', () => {
  let db: Awaited<ReturnType<typeof freshPgDatabase>>;
  beforeAll(async () => {
    db = await freshPgDatabase();
    await migrateMetering(db.store);
  });
  afterAll(() => db.drop());

  it('drops day partitions past the retention and forgets old dedupe marks, keeping aggregates', async () => {
    const now = Date.UTC(2026, 5, 30, 12);
    const event = (id: string, time: number): UsageEvent => ({
      id,
      source: 's',
      type: 'llm',
      subject: 'acme',
      time,
      data: { tokens: 2 },
    });
    const events = [event('old', now - 40 * DAY), event('recent', now - 2 * DAY), event('today', now)];
    const partitions = new EventPartitions(db.store);
    await partitions.ensure(partitionDays(events.map((e) => e.time)));
    const meters = [
      compileMeter('tokens', 1, {
        eventType: 'llm',
        aggregation: 'SUM',
        valueProperty: '$.tokens',
        groupBy: {},
      }),
    ];
    await db.store.transaction((tx) =>
      applyBatches(tx, [{ tenant: 't', ingestedAt: now, events }], (_, type) =>
        meters.filter((m) => m.eventType === type),
      ),
    );
    // Ensuring again (another worker, a restart) is harmless.
    await new EventPartitions(db.store).ensure(partitionDays(events.map((e) => e.time)));

    const result = await partitions.prune(now, 30 * DAY, 8 * DAY);
    expect(result.dropped).toEqual(['events_20260521']);
    expect(result.forgotten).toBe(1);
    const { rows } = await db.store.query<{ id: string }>('SELECT id FROM metering.events ORDER BY id');
    expect(rows.map((r) => r.id)).toEqual(['recent', 'today']);
    const seen = await db.store.query<{ id: string }>('SELECT id FROM metering.seen ORDER BY id');
    expect(seen.rows.map((r) => r.id)).toEqual(['recent', 'today']);
    const sum = await db.store.query<{ s: string }>('SELECT sum(sum)::text AS s FROM metering.aggregates');
    expect(sum.rows[0]!.s).toBe('6');
  });
});
