/**
 * Usage computed straight from a list of events, independently of the pipeline: the expected
 * answer of a meter query. Window starts in a time zone come from Intl, not from PostgreSQL.
 */
export interface OracleEvent {
  id: string;
  source: string;
  type: string;
  subject: string;
  time: number;
  data: Record<string, unknown>;
}

export interface OracleMeter {
  eventType: string;
  aggregation: 'SUM' | 'COUNT' | 'UNIQUE_COUNT' | 'AVG' | 'MIN' | 'MAX' | 'LATEST';
  value?: string;
  groupBy?: Record<string, string>;
}

export interface OracleQuery {
  from?: number;
  to?: number;
  windowSize?: 'MINUTE' | 'HOUR' | 'DAY';
  tz?: string;
  subjects?: string[];
  groupBy?: string[];
  filters?: Record<string, string>;
}

/** The events that count: the first of each (source, id). */
export function dedupe(events: readonly OracleEvent[]): OracleEvent[] {
  const seen = new Set<string>();
  return events.filter((e) => {
    const key = `${e.source}\u0000${e.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function offsetMs(t: number, tz: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(t));
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  const local = Date.UTC(
    get('year'),
    get('month') - 1,
    get('day'),
    get('hour'),
    get('minute'),
    get('second'),
  );
  return local - Math.floor(t / 1000) * 1000;
}

/** Start of the MINUTE, HOUR or DAY containing t, in tz. */
export function windowStart(t: number, size: 'MINUTE' | 'HOUR' | 'DAY', tz: string): number {
  if (size === 'MINUTE') return Math.floor(t / 60_000) * 60_000;
  const local = t + offsetMs(t, tz);
  const unit = size === 'HOUR' ? 3_600_000 : 86_400_000;
  const localStart = Math.floor(local / unit) * unit;
  // The instant whose local time is localStart (the offset there may differ from t's).
  let guess = localStart - offsetMs(t, tz);
  guess = localStart - offsetMs(guess, tz);
  return guess;
}

export interface OracleRow {
  windowStart: number | null;
  subject: string | null;
  groupBy: Record<string, string | null>;
  value: number;
}

function read(data: unknown, path: string): unknown {
  let at = data as Record<string, unknown> | undefined;
  for (const step of path.replace(/^\$\.?/, '').split('.')) {
    if (at === undefined || at === null || typeof at !== 'object') return undefined;
    at = at[step] as Record<string, unknown> | undefined;
  }
  return at;
}

export function expectedUsage(
  events: readonly OracleEvent[],
  meter: OracleMeter,
  q: OracleQuery,
): OracleRow[] {
  const tz = q.tz ?? 'UTC';
  const bySubject = (q.groupBy ?? []).includes('subject') || (q.subjects ?? []).length > 0;
  const groups = (q.groupBy ?? []).filter((g) => g !== 'subject');
  const buckets = new Map<string, { row: OracleRow; values: { v: unknown; t: number }[] }>();
  for (const e of dedupe(events)) {
    if (e.type !== meter.eventType) continue;
    const minute = Math.floor(e.time / 60_000) * 60_000;
    if (q.from !== undefined && minute < q.from) continue;
    if (q.to !== undefined && minute >= q.to) continue;
    if (q.subjects && q.subjects.length > 0 && !q.subjects.includes(e.subject)) continue;
    const gv = (name: string) => {
      const v = read(e.data, meter.groupBy![name]!);
      return v === undefined || v === null ? null : String(v);
    };
    if (Object.entries(q.filters ?? {}).some(([name, value]) => gv(name) !== value)) continue;
    const ws = q.windowSize ? windowStart(e.time, q.windowSize, tz) : null;
    const groupBy = Object.fromEntries(groups.map((g) => [g, gv(g)]));
    const key = JSON.stringify([ws, bySubject ? e.subject : null, groupBy]);
    let bucket = buckets.get(key);
    if (!bucket) {
      bucket = {
        row: { windowStart: ws, subject: bySubject ? e.subject : null, groupBy, value: 0 },
        values: [],
      };
      buckets.set(key, bucket);
    }
    bucket.values.push({ v: meter.value ? read(e.data, meter.value) : 1, t: e.time });
  }
  const rows: OracleRow[] = [];
  for (const { row, values } of buckets.values()) {
    const nums = values.map((x) => Number(x.v));
    switch (meter.aggregation) {
      case 'SUM':
        row.value = nums.reduce((a, b) => a + b, 0);
        break;
      case 'COUNT':
        row.value = values.length;
        break;
      case 'UNIQUE_COUNT':
        row.value = new Set(values.map((x) => String(x.v))).size;
        break;
      case 'AVG':
        row.value = nums.reduce((a, b) => a + b, 0) / nums.length;
        break;
      case 'MIN':
        row.value = Math.min(...nums);
        break;
      case 'MAX':
        row.value = Math.max(...nums);
        break;
      case 'LATEST': {
        let best = values[0]!;
        for (const x of values) if (x.t >= best.t) best = x;
        row.value = Number(best.v);
        break;
      }
    }
    rows.push(row);
  }
  return rows;
}
