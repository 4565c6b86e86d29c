/**
 * CloudEvents as ingest takes them: one event, an array of events, or NDJSON lines. Checked by
 * hand rather than by a schema library: ingest validates every event of a flood, and the
 * problems name the event (`events[3]`, by index and id) and the field.
 */
export interface UsageEvent {
  id: string;
  source: string;
  type: string;
  /** The customer the usage belongs to. */
  subject: string;
  /** Event time, ms since the epoch (the ingest time when the event has none). */
  time: number;
  data: unknown;
}

export interface EventProblem {
  index: number;
  id: string | null;
  field: string;
  message: string;
}

const MAX_TEXT = 256;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

export interface EventWindow {
  /** Now, ms. */
  now: number;
  /** Oldest event time accepted: now - lateness. */
  oldest: number;
  /** Latest event time accepted: now + allowed clock skew. */
  newest: number;
}

/** Reads one event; returns it or the first problem with it. */
export function readEvent(raw: unknown, index: number, window: EventWindow): UsageEvent | EventProblem {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { index, id: null, field: '', message: 'expected a CloudEvent object' };
  }
  const e = raw as Record<string, unknown>;
  const id = typeof e.id === 'string' ? e.id : null;
  const problem = (field: string, message: string): EventProblem => ({ index, id, field, message });
  if (e.specversion !== undefined && e.specversion !== '1.0') {
    return problem('specversion', 'expected "1.0"');
  }
  for (const field of ['id', 'source', 'type', 'subject'] as const) {
    const value = e[field];
    if (value === undefined || value === null) return problem(field, 'required');
    if (typeof value !== 'string') return problem(field, 'expected a string');
    if (value.length === 0 || value.length > MAX_TEXT) {
      return problem(field, `expected 1 to ${MAX_TEXT} characters`);
    }
  }
  let time = window.now;
  if (e.time !== undefined && e.time !== null) {
    if (typeof e.time !== 'string' || !RFC3339.test(e.time)) {
      return problem('time', 'expected an RFC 3339 time, like 2026-01-31T12:00:00Z');
    }
    time = Date.parse(e.time);
    if (!Number.isFinite(time)) return problem('time', 'not a valid date');
    if (time < window.oldest) {
      return problem(
        'time',
        `older than the accepted lateness (events from ${new Date(window.oldest).toISOString()} on)`,
      );
    }
    if (time > window.newest) return problem('time', 'too far in the future');
  }
  if (e.datacontenttype !== undefined && typeof e.datacontenttype !== 'string') {
    return problem('datacontenttype', 'expected a string');
  }
  return {
    id: e.id as string,
    source: e.source as string,
    type: e.type as string,
    subject: e.subject as string,
    time,
    data: e.data ?? null,
  };
}

export function isProblem(value: UsageEvent | EventProblem): value is EventProblem {
  return 'field' in value;
}

/** `events[3] (id "abc").time: ...` */
export function describeProblem(p: EventProblem): string {
  const where = `events[${p.index}]${p.id !== null ? ` (id ${JSON.stringify(p.id.slice(0, 64))})` : ''}`;
  return `${where}${p.field ? `.${p.field}` : ''}: ${p.message}`;
}
