/**
 * Usage queries over the minute aggregates, in OpenMeter's shape: a meter's value per window
 * (MINUTE, HOUR, DAY in a time zone, or the whole range), per subject and group where asked,
 * filtered by subject and group values.
 */
import type { SqlExecutor } from '@allot/kit/sql';
import type { Aggregation, Meter } from '../domain/meters.ts';

export type WindowSize = 'MINUTE' | 'HOUR' | 'DAY';

export interface UsageQuery {
  from?: Date;
  to?: Date;
  windowSize?: WindowSize;
  windowTimeZone: string;
  subjects: readonly string[];
  /** Group-by names of the meter, and `subject`. */
  groupBy: readonly string[];
  /** Group-by name -> the value it must have. */
  filters: Readonly<Record<string, string>>;
}

export interface UsageRow {
  value: number;
  windowStart: string;
  windowEnd: string;
  subject: string | null;
  groupBy: Record<string, string | null>;
}

const VALUE: Record<Exclude<Aggregation, 'UNIQUE_COUNT'>, string> = {
  SUM: 'sum(a.sum)',
  COUNT: 'sum(a.count)',
  AVG: 'CASE WHEN sum(a.count) = 0 THEN NULL ELSE sum(a.sum) / sum(a.count) END',
  MIN: 'min(a.min)',
  MAX: 'max(a.max)',
  LATEST: '(array_agg(a.latest ORDER BY a.latest_at DESC))[1]',
};

export async function queryUsage(
  sql: SqlExecutor,
  tenant: string,
  meter: Meter,
  q: UsageQuery,
): Promise<UsageRow[]> {
  const distinct = meter.aggregation === 'UNIQUE_COUNT';
  const table = distinct ? 'metering.unique_values' : 'metering.aggregates';
  const params: unknown[] = [tenant, meter.slug, meter.version];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const where = ['a.tenant = $1', 'a.meter = $2', 'a.meter_version = $3'];
  if (q.from) where.push(`a.window_start >= ${param(q.from)}`);
  if (q.to) where.push(`a.window_start < ${param(q.to)}`);
  if (q.subjects.length > 0) where.push(`a.subject = ANY(${param(q.subjects)}::text[])`);
  const groupExpr = (name: string) => {
    const index = meter.groupBy.findIndex((g) => g.name === name);
    // group_key is the JSON array of the meter's group values, in definition order.
    return `(a.group_key::jsonb ->> ${index})`;
  };
  for (const [name, value] of Object.entries(q.filters)) {
    where.push(`a.group_key <> '' AND ${groupExpr(name)} = ${param(value)}`);
  }
  const bySubject = q.groupBy.includes('subject') || q.subjects.length > 0;
  const groups = q.groupBy.filter((g) => g !== 'subject');
  const select: string[] = [];
  const groupCols: string[] = [];
  if (q.windowSize) {
    const unit = q.windowSize === 'MINUTE' ? 'minute' : q.windowSize === 'HOUR' ? 'hour' : 'day';
    const tz = param(q.windowTimeZone);
    select.push(`date_trunc('${unit}', a.window_start, ${tz}::text) AS ws`);
    select.push(
      `((date_trunc('${unit}', a.window_start, ${tz}::text) AT TIME ZONE ${tz}::text) + interval '1 ${unit}') AT TIME ZONE ${tz}::text AS we`,
    );
    groupCols.push('ws', 'we');
  } else {
    select.push('min(a.window_start) AS ws', "max(a.window_start) + interval '1 minute' AS we");
  }
  if (bySubject) {
    select.push('a.subject AS subject');
    groupCols.push('a.subject');
  }
  groups.forEach((name, i) => {
    select.push(`${groupExpr(name)} AS g${i}`);
    groupCols.push(`g${i}`);
  });
  select.push(
    `${distinct ? 'count(DISTINCT a.value)' : VALUE[meter.aggregation as keyof typeof VALUE]}::text AS value`,
  );
  const text = `SELECT ${select.join(', ')} FROM ${table} a WHERE ${where.join(' AND ')}
    ${groupCols.length > 0 ? `GROUP BY ${groupCols.join(', ')}` : ''}
    ORDER BY 1${bySubject ? ', subject' : ''}`;
  const { rows } = await sql.query<Record<string, unknown>>(text, params as never);
  return rows
    .filter((row) => row.value !== null && row.ws !== null)
    .map((row) => ({
      value: Number(row.value),
      windowStart: q.windowSize || !q.from ? toIso(row.ws) : q.from.toISOString(),
      windowEnd: q.windowSize || !q.to ? toIso(row.we) : q.to.toISOString(),
      subject: bySubject ? (row.subject as string) : null,
      groupBy: Object.fromEntries(groups.map((name, i) => [name, (row[`g${i}`] as string | null) ?? null])),
    }));
}

function toIso(value: unknown): string {
  return (value instanceof Date ? value : new Date(String(value))).toISOString();
}
