/**
 * The export of aggregates, for the uplink to the control plane: only (meter, customer,
 * window, group, value, version), never an event. Rows come in commit order: a row's version
 * is the transaction that last changed it, and a page never goes past a transaction still in
 * flight, so a consumer that remembers the last version it saw misses nothing. Re-exporting
 * is an idempotent upsert for the consumer: the same key with a higher version replaces.
 */
import type { SqlExecutor } from '@allot/kit/sql';

export interface ExportedAggregate {
  meter: string;
  meterVersion: number;
  customerId: string;
  windowStart: string;
  windowEnd: string;
  groupBy: Record<string, string | null>;
  /** The meter's aggregation over this minute (UNIQUE_COUNT: distinct values in it). */
  value: string;
  /** Events in the minute (with an AVG's value, enough to roll it up). */
  count: number;
  version: string;
}

export interface ExportPage {
  aggregates: ExportedAggregate[];
  /** Pass as `after` for the next page; the same as `after` when nothing new is committed. */
  cursor: string;
}

/** The rows of up to `limit` transactions committed after version `after` ('0' for everything). */
export async function exportAggregates(
  sql: SqlExecutor,
  tenant: string,
  meters: ReadonlyMap<string, { aggregation: string }>,
  after: string,
  limit: number,
): Promise<ExportPage> {
  // Whole transactions only, and only those below every transaction still running.
  const { rows } = await sql.query<{
    meter: string;
    meter_version: string;
    subject: string;
    window_start: Date;
    groups: Record<string, string | null>;
    sum: string;
    count: string;
    min: string | null;
    max: string | null;
    latest: string | null;
    txid: string;
    distinct_count: string | null;
    avg: string | null;
  }>(
    `WITH txs AS (
       SELECT DISTINCT txid FROM metering.aggregates
       WHERE tenant = $1 AND txid > $2::text::xid8 AND txid < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY txid LIMIT $3
     )
     SELECT a.meter, a.meter_version, a.subject, a.window_start, a.groups, a.sum, a.count, a.min, a.max,
       a.latest, a.txid::text AS txid, CASE WHEN a.count > 0 THEN (a.sum / a.count)::text END AS avg,
       -- Distinct values are counted for the UNIQUE_COUNT meters only.
       CASE WHEN a.meter = ANY($4::text[]) THEN
         (SELECT count(*) FROM metering.unique_values u
          WHERE u.tenant = a.tenant AND u.meter = a.meter AND u.meter_version = a.meter_version
            AND u.subject = a.subject AND u.window_start = a.window_start AND u.group_key = a.group_key)::text
       END AS distinct_count
     FROM metering.aggregates a JOIN txs USING (txid)
     WHERE a.tenant = $1
     ORDER BY a.txid, a.meter, a.subject, a.window_start, a.group_key`,
    [
      tenant,
      after,
      limit,
      [...meters].filter(([, m]) => m.aggregation === 'UNIQUE_COUNT').map(([slug]) => slug),
    ],
  );
  const aggregates = rows.map((r) => {
    const aggregation = meters.get(r.meter)?.aggregation ?? 'SUM';
    const value =
      aggregation === 'COUNT'
        ? r.count
        : aggregation === 'AVG'
          ? (r.avg ?? '0')
          : aggregation === 'MIN'
            ? (r.min ?? '0')
            : aggregation === 'MAX'
              ? (r.max ?? '0')
              : aggregation === 'LATEST'
                ? (r.latest ?? '0')
                : aggregation === 'UNIQUE_COUNT'
                  ? (r.distinct_count ?? '0')
                  : r.sum;
    const start = new Date(r.window_start);
    return {
      meter: r.meter,
      meterVersion: Number(r.meter_version),
      customerId: r.subject,
      windowStart: start.toISOString(),
      windowEnd: new Date(start.getTime() + 60_000).toISOString(),
      groupBy: r.groups,
      value,
      count: Number(r.count),
      version: r.txid,
    };
  });
  return { aggregates, cursor: aggregates.at(-1)?.version ?? after };
}
