/**
 * Budget periods and the usage window "now" falls in, per period and time zone.
 *
 * Zone math uses the runtime's Intl time-zone data (ICU): the same source luxon reads, without the
 * dependency. Local wall times are handled as "wall ms": the epoch ms the wall clock would show in UTC.
 */

export type CalendarUnit = 'hour' | 'day' | 'week' | 'month' | 'year';

export type Period =
  | { kind: 'calendar'; unit: CalendarUnit }
  | { kind: 'rolling'; ms: number }
  | { kind: 'never' };

export class PeriodError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeriodError';
  }
}

interface Window {
  start: number;
  end: number;
}

const SECOND = 1000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const MIN_ROLLING_MS = 1000;
const MAX_ROLLING_MS = 366 * DAY;
// Year 9999: keeps every probe (a day either side) inside what Date and Intl accept.
const MAX_INSTANT = 253_370_764_800_000;
// Real offsets lie within -12h..+14h, so the instant showing a given wall time is within this of it.
const PROBE = 15 * HOUR;

const CALENDAR_UNITS: readonly CalendarUnit[] = ['hour', 'day', 'week', 'month', 'year'];

export function parsePeriod(text: string): Period {
  if ((CALENDAR_UNITS as readonly string[]).includes(text)) {
    return { kind: 'calendar', unit: text as CalendarUnit };
  }
  if (text === 'never') return { kind: 'never' };
  if (text.startsWith('rolling:')) {
    const digits = text.slice('rolling:'.length);
    // Canonical digits only: '1e3', '1000.0', '01000' or ' 1000' would otherwise parse to a number.
    if (!/^[1-9][0-9]*$/.test(digits)) {
      throw new PeriodError(`period "${text}": rolling:<ms> needs a whole number of milliseconds`);
    }
    const ms = Number(digits);
    if (!(ms >= MIN_ROLLING_MS && ms <= MAX_ROLLING_MS)) {
      throw new PeriodError(
        `period "${text}": a rolling window must be from ${MIN_ROLLING_MS} to ${MAX_ROLLING_MS} ms (366 days)`,
      );
    }
    return { kind: 'rolling', ms };
  }
  throw new PeriodError(
    `unknown period "${text}": expected hour, day, week, month, year, never or rolling:<ms>`,
  );
}

// --- zones -------------------------------------------------------------------------------------

/** A formatter for the zone, or null for UTC (offset always 0, no Intl call needed). */
type Zone = Intl.DateTimeFormat | null;

const zones = new Map<string, Zone | undefined>();
// Zone names come from configuration; the cap only stops junk strings from growing the cache forever.
const MAX_CACHED_ZONES = 2048;

function lookupZone(zone: string): Zone | undefined {
  if (zones.has(zone)) return zones.get(zone);
  let found: Zone | undefined;
  try {
    const dtf = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    found = dtf.resolvedOptions().timeZone === 'UTC' ? null : dtf;
  } catch {
    found = undefined;
  }
  if (zones.size >= MAX_CACHED_ZONES) zones.clear();
  zones.set(zone, found);
  return found;
}

export function isTimeZone(zone: string): boolean {
  return lookupZone(zone) !== undefined;
}

function zoneOf(zone: string): Zone {
  const found = lookupZone(zone);
  if (found === undefined) throw new PeriodError(`unknown time zone "${zone}": expected an IANA zone name`);
  return found;
}

/** Offset of the zone at instant `t`, in ms (local wall = t + offset). */
function offsetAt(zone: Zone, t: number): number {
  if (zone === null) return 0;
  const whole = Math.floor(t / SECOND) * SECOND;
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  for (const part of zone.formatToParts(whole)) {
    switch (part.type) {
      case 'year':
        year = Number(part.value);
        break;
      case 'month':
        month = Number(part.value);
        break;
      case 'day':
        day = Number(part.value);
        break;
      case 'hour':
        hour = Number(part.value);
        break;
      case 'minute':
        minute = Number(part.value);
        break;
      case 'second':
        second = Number(part.value);
        break;
    }
  }
  return Date.UTC(year, month - 1, day, hour, minute, second) - whole;
}

/**
 * The first instant in (lo, hi] whose offset differs from the offset at `lo`, given that `hi`'s does.
 * Assumes one transition in between (real zones change offset weeks apart, never twice in 30 hours).
 */
function transitionBetween(zone: Zone, lo: number, hi: number): number {
  const before = offsetAt(zone, lo);
  let a = lo;
  let b = hi;
  while (b - a > 1) {
    const mid = Math.floor((a + b) / 2);
    if (offsetAt(zone, mid) === before) a = mid;
    else b = mid;
  }
  return b;
}

/**
 * The first instant whose local time is at or past `wall`: the start of the local period beginning
 * at `wall`. A repeated wall time (autumn) gives its earlier occurrence; a skipped one (spring, e.g.
 * midnight in Santiago or Cairo) gives the transition, where the local clock jumps past it.
 */
function wallToInstant(zone: Zone, wall: number): number {
  if (zone === null) return wall;
  const early = offsetAt(zone, wall - PROBE);
  const late = offsetAt(zone, wall + PROBE);
  const beforeChange = wall - early;
  if (early === late || offsetAt(zone, beforeChange) === early) return beforeChange;
  const afterChange = wall - late;
  if (offsetAt(zone, afterChange) === late) return afterChange;
  return transitionBetween(zone, afterChange, beforeChange);
}

// --- calendar windows --------------------------------------------------------------------------

function checkInstant(at: number): void {
  if (!Number.isFinite(at) || at < 0 || at > MAX_INSTANT) {
    throw new PeriodError(`instant ${at} is not an epoch ms from 1970 to 9999`);
  }
}

/**
 * An hour is the local hour at a constant offset: at a transition the hour is cut there, so the
 * repeated autumn hour gives two one-hour windows and a 30-minute shift gives a half-hour window.
 */
function hourWindow(zone: Zone, at: number): Window {
  const offset = offsetAt(zone, at);
  let start = Math.floor((at + offset) / HOUR) * HOUR - offset;
  let end = start + HOUR;
  if (zone !== null) {
    if (offsetAt(zone, start) !== offset) start = transitionBetween(zone, start, at);
    if (offsetAt(zone, end - 1) !== offset) end = transitionBetween(zone, at, end - 1);
  }
  return { start, end };
}

/** [start, end) in wall ms of the local day, ISO week, month or year containing wall time `local`. */
function wallRange(unit: Exclude<CalendarUnit, 'hour'>, local: number): [number, number] {
  const dayStart = Math.floor(local / DAY) * DAY;
  const date = new Date(dayStart);
  switch (unit) {
    case 'day':
      return [dayStart, dayStart + DAY];
    case 'week': {
      const monday = dayStart - ((date.getUTCDay() + 6) % 7) * DAY;
      return [monday, monday + 7 * DAY];
    }
    case 'month': {
      const y = date.getUTCFullYear();
      const m = date.getUTCMonth();
      return [Date.UTC(y, m, 1), Date.UTC(y, m + 1, 1)];
    }
    case 'year': {
      const y = date.getUTCFullYear();
      return [Date.UTC(y, 0, 1), Date.UTC(y + 1, 0, 1)];
    }
  }
}

export function calendarWindow(unit: CalendarUnit, zone: string, at: number): { start: number; end: number } {
  const z = zoneOf(zone);
  checkInstant(at);
  if (unit === 'hour') return hourWindow(z, at);
  const [startWall, endWall] = wallRange(unit, at + offsetAt(z, at));
  return { start: wallToInstant(z, startWall), end: wallToInstant(z, endWall) };
}

// --- rolling windows ---------------------------------------------------------------------------

const TARGET_BUCKETS = 60;
const MIN_BUCKETS = 30;
const MAX_BUCKETS = 120;

/**
 * The bucket is ms / n for the bucket count n nearest 60 (ties: fewer buckets) among 30..120 that
 * divides ms exactly, so the window is exactly n buckets: 60_000 -> 1000, 3_600_000 -> 60_000,
 * 1000 -> 20 (50 buckets), 7 days -> 10_080_000. Only when no such n exists (e.g. a prime ms) is it
 * round(ms / 60), at least 1; the window is then not whole buckets, and ceil(ms / bucket) buckets
 * cover it (counting slightly more than the window, never less).
 */
export function rollingBucketMs(ms: number): number {
  if (!Number.isSafeInteger(ms) || ms < 1) {
    throw new PeriodError(`rolling window ${ms} ms: expected a positive whole number of ms`);
  }
  for (let step = 0; step <= MAX_BUCKETS - TARGET_BUCKETS; step++) {
    for (const n of [TARGET_BUCKETS - step, TARGET_BUCKETS + step]) {
      if (n >= MIN_BUCKETS && n <= MAX_BUCKETS && ms % n === 0) return ms / n;
    }
  }
  return Math.max(1, Math.round(ms / TARGET_BUCKETS));
}

// --- memo --------------------------------------------------------------------------------------

const FOREVER: Window = Object.freeze({ start: 0, end: Number.MAX_SAFE_INTEGER });
// Bounds the memo if configurations supply many distinct zones or rolling lengths; refilling is cheap.
const MAX_MEMO_ENTRIES = 10_000;

/** Windows handed out are frozen: a caller cannot corrupt the memo through the object it got. */
export class WindowClock {
  private readonly calendar = new Map<string, Partial<Record<CalendarUnit, Window>>>();
  // Rolling buckets are epoch-aligned, the same in every zone, so they are keyed by length alone.
  private readonly rolling = new Map<number, { bucket: number; window: Window }>();

  window(period: Period, zone: string, at: number): { start: number; end: number } {
    switch (period.kind) {
      case 'never':
        return FOREVER;
      case 'rolling':
        return this.rollingWindow(period.ms, at);
      case 'calendar':
        return this.calendarWindow(period.unit, zone, at);
    }
  }

  private calendarWindow(unit: CalendarUnit, zone: string, at: number): Window {
    let byUnit = this.calendar.get(zone);
    const memo = byUnit?.[unit];
    if (memo !== undefined && memo.start <= at && at < memo.end) return memo;
    const fresh = Object.freeze(calendarWindow(unit, zone, at));
    if (byUnit === undefined) {
      if (this.calendar.size >= MAX_MEMO_ENTRIES) this.calendar.clear();
      byUnit = {};
      this.calendar.set(zone, byUnit);
    }
    byUnit[unit] = fresh;
    return fresh;
  }

  private rollingWindow(ms: number, at: number): Window {
    const memo = this.rolling.get(ms);
    if (memo !== undefined && memo.window.start <= at && at < memo.window.end) return memo.window;
    checkInstant(at);
    const bucket = memo?.bucket ?? rollingBucketMs(ms);
    const start = Math.floor(at / bucket) * bucket;
    const window = Object.freeze({ start, end: start + bucket });
    if (memo === undefined && this.rolling.size >= MAX_MEMO_ENTRIES) this.rolling.clear();
    this.rolling.set(ms, { bucket, window });
    return window;
  }
}
