/**
 * The metering worker's commit: a batch of ingested events into PostgreSQL, once.
 *
 * In the worker's transaction: (source, id) pairs not seen before are marked seen (a
 * duplicate, or a redelivered message, finds them and adds nothing), the new events are
 * COPYed into the raw table, and each meter the event type has adds the event to its minute
 * aggregate (and UNIQUE_COUNT meters their distinct values). All or nothing: a crash before
 * the commit leaves no trace, one after it makes the redelivery a no-op.
 */
import type { SqlExecutor, SqlStore } from '@allot/kit/sql';
import { addDecimal, compareDecimal, type Decimal, formatDecimal, parseDecimal } from '../domain/decimal.ts';
import type { UsageEvent } from '../domain/events.ts';
import { type Meter, readMeter } from '../domain/meters.ts';

/** What one stream message carries. */
export interface IngestedBatch {
  tenant: string;
  /** When the gate or the ingest route took it, ms. */
  ingestedAt: number;
  events: UsageEvent[];
}

export interface ApplyResult {
  events: number;
  fresh: number;
  duplicates: number;
  /** Readings a meter could not count (the value missing or not a number). */
  skipped: number;
}

const MINUTE = 60_000;
const ZERO: Decimal = { n: 0n, s: 0 };

/** One aggregate row as the batch adds to it. */
interface Group {
  meter: string;
  version: number;
  subject: string;
  window: number;
  groupKey: string;
  groups: Record<string, string | null>;
  /** UNIQUE_COUNT meters: the distinct values; the numeric fields stay unset. */
  distinct: Set<string> | null;
  sum: Decimal;
  count: number;
  min: Decimal | null;
  max: Decimal | null;
  latest: Decimal | null;
  latestAt: number;
}

function compareGroups(a: Group, b: Group): number {
  return (
    cmp(a.meter, b.meter) ||
    a.version - b.version ||
    cmp(a.subject, b.subject) ||
    a.window - b.window ||
    cmp(a.groupKey, b.groupKey)
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
const DAY = 86_400_000;

export async function applyBatches(
  tx: SqlExecutor,
  batches: readonly IngestedBatch[],
  /** The meters of a tenant that count an event type (the MeterCatalog's `forType`). */
  metersFor: (tenant: string, eventType: string) => readonly Meter[],
): Promise<ApplyResult> {
  const result: ApplyResult = { events: 0, fresh: 0, duplicates: 0, skipped: 0 };
  const byTenant = new Map<string, { event: UsageEvent; ingestedAt: number }[]>();
  for (const batch of batches) {
    let list = byTenant.get(batch.tenant);
    if (!list) {
      list = [];
      byTenant.set(batch.tenant, list);
    }
    for (const event of batch.events) list.push({ event, ingestedAt: batch.ingestedAt });
    result.events += batch.events.length;
  }
  // Tenants in a fixed order, so two workers lock rows in the same order.
  for (const tenant of [...byTenant.keys()].sort()) {
    if (byTenant.get(tenant)!.length === 0) continue;
    const one = await applyTenant(tx, tenant, byTenant.get(tenant)!, (type) => metersFor(tenant, type));
    result.fresh += one.fresh;
    result.duplicates += one.duplicates;
    result.skipped += one.skipped;
  }
  return result;
}

async function applyTenant(
  tx: SqlExecutor,
  tenant: string,
  items: { event: UsageEvent; ingestedAt: number }[],
  metersFor: (eventType: string) => readonly Meter[],
): Promise<Omit<ApplyResult, 'events'>> {
  // Duplicates within the batch first: the first one counts.
  const unique = new Map<string, { event: UsageEvent; ingestedAt: number }>();
  for (const item of items) {
    const key = `${item.event.source}\u0000${item.event.id}`;
    if (!unique.has(key)) unique.set(key, item);
  }
  const candidates = [...unique.values()];
  const { rows } = await tx.query<{ source: string; id: string }>(
    `INSERT INTO metering.seen (tenant, source, id, time)
     SELECT $1, s, i, to_timestamp(t / 1000.0)
     FROM unnest($2::text[], $3::text[], $4::bigint[]) AS r (s, i, t)
     ON CONFLICT DO NOTHING
     RETURNING source, id`,
    [
      tenant,
      candidates.map((c) => c.event.source),
      candidates.map((c) => c.event.id),
      candidates.map((c) => c.event.time),
    ],
  );
  const freshKeys = new Set(rows.map((r) => `${r.source}\u0000${r.id}`));
  const fresh = candidates.filter((c) => freshKeys.has(`${c.event.source}\u0000${c.event.id}`));
  const duplicates = items.length - fresh.length;
  if (fresh.length === 0) return { fresh: 0, duplicates, skipped: 0 };

  await tx.copyFrom(
    'metering.events',
    ['tenant', 'time', 'source', 'id', 'type', 'subject', 'data', 'ingested_at'],
    fresh.map(({ event, ingestedAt }) => [
      tenant,
      new Date(event.time),
      event.source,
      event.id,
      event.type,
      event.subject,
      JSON.stringify(event.data ?? null),
      new Date(ingestedAt),
    ]),
  );

  // The batch pre-aggregated per (meter, subject, minute, group), in exact decimals: one row
  // per group goes to PostgreSQL instead of one per event.
  const groups = new Map<string, Group>();
  let skipped = 0;
  for (const { event } of fresh) {
    const forType = metersFor(event.type);
    if (forType.length === 0) continue;
    const window = Math.floor(event.time / MINUTE) * MINUTE;
    for (const meter of forType) {
      const reading = readMeter(meter, event.data);
      if (typeof reading === 'string') {
        skipped++;
        continue;
      }
      const key = `${meter.slug}\u0000${meter.version}\u0000${event.subject}\u0000${window}\u0000${reading.groupKey}`;
      let group = groups.get(key);
      if (!group) {
        group = {
          meter: meter.slug,
          version: meter.version,
          subject: event.subject,
          window,
          groupKey: reading.groupKey,
          groups: reading.groups,
          distinct: meter.aggregation === 'UNIQUE_COUNT' ? new Set() : null,
          sum: ZERO,
          count: 0,
          min: null,
          max: null,
          latest: null,
          latestAt: -Infinity,
        };
        groups.set(key, group);
      }
      group.count++;
      if (group.distinct) {
        group.distinct.add(reading.value);
        continue;
      }
      const value = parseDecimal(reading.value);
      group.sum = addDecimal(group.sum, value);
      if (group.min === null || compareDecimal(value, group.min) < 0) group.min = value;
      if (group.max === null || compareDecimal(value, group.max) > 0) group.max = value;
      if (event.time >= group.latestAt) {
        group.latest = value;
        group.latestAt = event.time;
      }
    }
  }
  if (groups.size > 0) {
    // In key order, so concurrent workers lock rows in the same order.
    const rows = [...groups.values()].sort(compareGroups);
    const text = (d: Decimal | null) => (d === null ? null : formatDecimal(d));
    await tx.query(
      `INSERT INTO metering.aggregates AS a
         (tenant, meter, meter_version, subject, window_start, group_key, groups, sum, count, min, max, latest, latest_at)
       SELECT $1, m, ver, subj, to_timestamp(ws / 1000.0), gk, g::jsonb, total, n, lo, hi, last, to_timestamp(t / 1000.0)
       FROM unnest($2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::numeric[],
         $9::bigint[], $10::numeric[], $11::numeric[], $12::numeric[], $13::bigint[])
         AS r (m, ver, subj, ws, gk, g, total, n, lo, hi, last, t)
       ON CONFLICT (tenant, meter, meter_version, subject, window_start, group_key) DO UPDATE SET
         sum = a.sum + excluded.sum,
         count = a.count + excluded.count,
         min = least(a.min, excluded.min),
         max = greatest(a.max, excluded.max),
         latest = CASE WHEN excluded.latest_at >= a.latest_at OR a.latest_at IS NULL THEN excluded.latest ELSE a.latest END,
         latest_at = greatest(a.latest_at, excluded.latest_at),
         txid = pg_current_xact_id()`,
      [
        tenant,
        rows.map((g) => g.meter),
        rows.map((g) => g.version),
        rows.map((g) => g.subject),
        rows.map((g) => g.window),
        rows.map((g) => g.groupKey),
        rows.map((g) => JSON.stringify(g.groups)),
        rows.map((g) => formatDecimal(g.sum)),
        rows.map((g) => g.count),
        rows.map((g) => text(g.min)),
        rows.map((g) => text(g.max)),
        rows.map((g) => text(g.latest)),
        rows.map((g) => (g.distinct ? null : g.latestAt)),
      ],
    );
    const distinct = rows.filter((g) => g.distinct !== null);
    if (distinct.length > 0) {
      const flat = distinct.flatMap((g) => [...g.distinct!].sort().map((value) => [g, value] as const));
      await tx.query(
        `INSERT INTO metering.unique_values (tenant, meter, meter_version, subject, window_start, group_key, value)
         SELECT $1, m, ver, subj, to_timestamp(ws / 1000.0), gk, v
         FROM unnest($2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[]) AS r (m, ver, subj, ws, gk, v)
         ON CONFLICT DO NOTHING`,
        [
          tenant,
          flat.map(([g]) => g.meter),
          flat.map(([g]) => g.version),
          flat.map(([g]) => g.subject),
          flat.map(([g]) => g.window),
          flat.map(([g]) => g.groupKey),
          flat.map(([, v]) => v),
        ],
      );
    }
  }
  return { fresh: fresh.length, duplicates, skipped };
}

/** The UTC day partitions raw events of these times need. */
export function partitionDays(times: Iterable<number>): number[] {
  const days = new Set<number>();
  for (const t of times) days.add(Math.floor(t / DAY) * DAY);
  return [...days].sort((a, b) => a - b);
}

function partitionName(day: number): string {
  return `events_${new Date(day).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/**
 * Creates the raw events partitions of these days where missing (outside the commit's
 * transaction: a concurrent worker creating the same one is not an error).
 */
export class EventPartitions {
  readonly #sql: SqlStore;
  readonly #known = new Set<number>();

  constructor(sql: SqlStore) {
    this.#sql = sql;
  }

  async ensure(days: readonly number[]): Promise<void> {
    for (const day of days) {
      if (this.#known.has(day)) continue;
      const from = new Date(day).toISOString();
      const to = new Date(day + DAY).toISOString();
      try {
        await this.#sql.query(
          `CREATE TABLE IF NOT EXISTS metering.${partitionName(day)} PARTITION OF metering.events
           FOR VALUES FROM ('${from}') TO ('${to}')`,
        );
      } catch (error) {
        // Created meanwhile by another worker (42P07 duplicate table, 23505 its catalog row).
        const code = (error as { code?: string }).code;
        if (code !== '42P07' && code !== '23505') throw error;
      }
      this.#known.add(day);
    }
  }

  /**
   * Drops partitions whose day ended more than `retentionMs` ago, and forgets (source, id)
   * pairs older than `dedupeMs`: events that old are refused at ingest anyway.
   */
  async prune(
    now: number,
    retentionMs: number,
    dedupeMs: number,
  ): Promise<{ dropped: string[]; forgotten: number }> {
    const { rows } = await this.#sql.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i
       JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent
       JOIN pg_namespace n ON n.oid = p.relnamespace
       WHERE n.nspname = 'metering' AND p.relname = 'events'`,
    );
    const dropped: string[] = [];
    for (const { name } of rows) {
      const match = /^events_(\d{4})(\d{2})(\d{2})$/.exec(name);
      if (!match) continue;
      const day = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
      if (day + DAY < now - retentionMs) {
        await this.#sql.query(`DROP TABLE IF EXISTS metering.${name}`);
        this.#known.delete(day);
        dropped.push(name);
      }
    }
    const forgotten = await this.#sql.query(
      'DELETE FROM metering.seen WHERE time < to_timestamp($1 / 1000.0)',
      [now - dedupeMs],
    );
    return { dropped, forgotten: forgotten.rowCount };
  }
}
