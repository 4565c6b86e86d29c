import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CalendarUnit,
  calendarWindow,
  isTimeZone,
  type Period,
  PeriodError,
  parsePeriod,
  rollingBucketMs,
  WindowClock,
} from '../src/domain/periods.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const utc = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0) =>
  Date.UTC(y, mo - 1, d, h, mi, s, ms);

const UNITS: CalendarUnit[] = ['hour', 'day', 'week', 'month', 'year'];

/** Asserts the window of `at` and that it tiles with its neighbours at both ends. */
function expectWindow(unit: CalendarUnit, zone: string, at: number, start: number, end: number): void {
  expect(calendarWindow(unit, zone, at)).toEqual({ start, end });
  expect(calendarWindow(unit, zone, start)).toEqual({ start, end });
  expect(calendarWindow(unit, zone, end - 1)).toEqual({ start, end });
  expect(calendarWindow(unit, zone, end).start).toBe(end);
  expect(calendarWindow(unit, zone, start - 1).end).toBe(start);
}

describe('calendarWindow in UTC', () => {
  const at = utc(2026, 5, 17, 10, 15, 30, 123); // a Sunday

  it('gives the hour, day, ISO week, month and year', () => {
    expectWindow('hour', 'UTC', at, utc(2026, 5, 17, 10), utc(2026, 5, 17, 11));
    expectWindow('day', 'UTC', at, utc(2026, 5, 17), utc(2026, 5, 18));
    expectWindow('week', 'UTC', at, utc(2026, 5, 11), utc(2026, 5, 18));
    expectWindow('month', 'UTC', at, utc(2026, 5, 1), utc(2026, 6, 1));
    expectWindow('year', 'UTC', at, utc(2026, 1, 1), utc(2027, 1, 1));
  });

  it('puts end - 1 in the window and end in the next', () => {
    const { end } = calendarWindow('day', 'UTC', at);
    expect(calendarWindow('day', 'UTC', end - 1).end).toBe(end);
    expect(calendarWindow('day', 'UTC', end)).toEqual({ start: end, end: end + DAY });
  });

  it('starts an ISO week on Monday across a year end', () => {
    // 2026-12-31 is a Thursday; 2027-01-03 the Sunday ending that week.
    expectWindow('week', 'UTC', utc(2026, 12, 31, 12), utc(2026, 12, 28), utc(2027, 1, 4));
    expectWindow('week', 'UTC', utc(2027, 1, 3, 23, 59), utc(2026, 12, 28), utc(2027, 1, 4));
    expectWindow('week', 'UTC', utc(2026, 12, 28), utc(2026, 12, 28), utc(2027, 1, 4));
  });

  it('knows February in a leap year', () => {
    expectWindow('month', 'UTC', utc(2028, 2, 29, 23), utc(2028, 2, 1), utc(2028, 3, 1));
    expect(utc(2028, 3, 1) - utc(2028, 2, 1)).toBe(29 * DAY);
    expectWindow('month', 'UTC', utc(2027, 2, 10), utc(2027, 2, 1), utc(2027, 3, 1));
  });
});

describe('calendarWindow in Europe/Berlin across 2026 DST', () => {
  const zone = 'Europe/Berlin';

  it('makes the spring-forward day (29 March) 23 hours', () => {
    const w = calendarWindow('day', zone, utc(2026, 3, 29, 10));
    expect(w).toEqual({ start: utc(2026, 3, 28, 23), end: utc(2026, 3, 29, 22) });
    expect(w.end - w.start).toBe(23 * HOUR);
    expectWindow('day', zone, utc(2026, 3, 29, 10), w.start, w.end);
  });

  it('makes the autumn day (25 October) 25 hours', () => {
    const w = calendarWindow('day', zone, utc(2026, 10, 25, 10));
    expect(w).toEqual({ start: utc(2026, 10, 24, 22), end: utc(2026, 10, 25, 23) });
    expect(w.end - w.start).toBe(25 * HOUR);
    expectWindow('day', zone, utc(2026, 10, 25, 10), w.start, w.end);
  });

  it('tiles hours across the skipped 02:00', () => {
    // 01:00 UTC: 02:00 CET becomes 03:00 CEST.
    expectWindow('hour', zone, utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 0), utc(2026, 3, 29, 1));
    expectWindow('hour', zone, utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 29, 2));
  });

  it('gives the repeated 02:00 hour two one-hour windows', () => {
    // 02:30 CEST, then 02:30 CET an hour later.
    expectWindow('hour', zone, utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 0), utc(2026, 10, 25, 1));
    expectWindow('hour', zone, utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 1), utc(2026, 10, 25, 2));
  });

  it('starts a week on Monday local midnight, also across a year end and DST', () => {
    expectWindow('week', zone, utc(2026, 12, 31, 12), utc(2026, 12, 27, 23), utc(2027, 1, 3, 23));
    const spring = calendarWindow('week', zone, utc(2026, 3, 29, 12));
    expect(spring).toEqual({ start: utc(2026, 3, 22, 23), end: utc(2026, 3, 29, 22) });
    expect(spring.end - spring.start).toBe(7 * DAY - HOUR);
  });

  it('gives months and years at local midnight', () => {
    expectWindow('month', zone, utc(2028, 2, 15), utc(2028, 1, 31, 23), utc(2028, 2, 29, 23));
    expectWindow('month', zone, utc(2026, 4, 2), utc(2026, 3, 31, 22), utc(2026, 4, 30, 22));
    expectWindow('year', zone, utc(2026, 7, 1), utc(2025, 12, 31, 23), utc(2026, 12, 31, 23));
  });
});

describe('calendarWindow in America/New_York across 2026 DST', () => {
  const zone = 'America/New_York';

  it('makes 8 March 23 hours and 1 November 25 hours', () => {
    expectWindow('day', zone, utc(2026, 3, 8, 12), utc(2026, 3, 8, 5), utc(2026, 3, 9, 4));
    expectWindow('day', zone, utc(2026, 11, 1, 12), utc(2026, 11, 1, 4), utc(2026, 11, 2, 5));
  });

  it('tiles hours at both changes', () => {
    // 07:00 UTC: 02:00 EST becomes 03:00 EDT.
    expectWindow('hour', zone, utc(2026, 3, 8, 6, 59), utc(2026, 3, 8, 6), utc(2026, 3, 8, 7));
    expectWindow('hour', zone, utc(2026, 3, 8, 7), utc(2026, 3, 8, 7), utc(2026, 3, 8, 8));
    // 06:00 UTC: 02:00 EDT becomes 01:00 EST, so 01:xx happens twice.
    expectWindow('hour', zone, utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 5), utc(2026, 11, 1, 6));
    expectWindow('hour', zone, utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 6), utc(2026, 11, 1, 7));
  });

  it('gives the year at local midnight', () => {
    expectWindow('year', zone, utc(2026, 6, 1), utc(2026, 1, 1, 5), utc(2027, 1, 1, 5));
  });
});

describe('calendarWindow in half- and quarter-hour zones', () => {
  it('starts Asia/Kolkata hours at the local hour (10:00 IST = 04:30 UTC)', () => {
    expectWindow(
      'hour',
      'Asia/Kolkata',
      utc(2026, 5, 17, 4, 45),
      utc(2026, 5, 17, 4, 30),
      utc(2026, 5, 17, 5, 30),
    );
    expectWindow(
      'hour',
      'Asia/Kolkata',
      utc(2026, 5, 17, 4, 29),
      utc(2026, 5, 17, 3, 30),
      utc(2026, 5, 17, 4, 30),
    );
  });

  it('starts Asia/Kolkata days at local midnight (18:30 UTC)', () => {
    expectWindow(
      'day',
      'Asia/Kolkata',
      utc(2026, 5, 17, 12),
      utc(2026, 5, 16, 18, 30),
      utc(2026, 5, 17, 18, 30),
    );
    expectWindow(
      'day',
      'Asia/Kolkata',
      utc(2026, 5, 16, 18, 29),
      utc(2026, 5, 15, 18, 30),
      utc(2026, 5, 16, 18, 30),
    );
  });

  it('starts Asia/Kathmandu hours at the local hour (10:00 NPT = 04:15 UTC)', () => {
    expectWindow(
      'hour',
      'Asia/Kathmandu',
      utc(2026, 5, 17, 4, 20),
      utc(2026, 5, 17, 4, 15),
      utc(2026, 5, 17, 5, 15),
    );
  });
});

describe('calendarWindow with a 30-minute DST shift (Australia/Lord_Howe, 2026)', () => {
  const zone = 'Australia/Lord_Howe';

  it('cuts the hour at the change when 02:00 at +11 falls back to 01:30 at +10:30', () => {
    expectWindow('hour', zone, utc(2026, 4, 4, 14, 45), utc(2026, 4, 4, 14), utc(2026, 4, 4, 15));
    expectWindow('hour', zone, utc(2026, 4, 4, 15, 10), utc(2026, 4, 4, 15), utc(2026, 4, 4, 15, 30));
    expectWindow('hour', zone, utc(2026, 4, 4, 15, 30), utc(2026, 4, 4, 15, 30), utc(2026, 4, 4, 16, 30));
  });

  it('gives a half-hour window when 02:00 at +10:30 jumps to 02:30 at +11', () => {
    expectWindow('hour', zone, utc(2026, 10, 3, 15), utc(2026, 10, 3, 14, 30), utc(2026, 10, 3, 15, 30));
    expectWindow('hour', zone, utc(2026, 10, 3, 15, 45), utc(2026, 10, 3, 15, 30), utc(2026, 10, 3, 16));
    expectWindow('hour', zone, utc(2026, 10, 3, 16), utc(2026, 10, 3, 16), utc(2026, 10, 3, 17));
  });

  it('makes the change days 24.5 and 23.5 hours', () => {
    const autumn = calendarWindow('day', zone, utc(2026, 4, 4, 20));
    expect(autumn.end - autumn.start).toBe(24.5 * HOUR);
    const spring = calendarWindow('day', zone, utc(2026, 10, 3, 20));
    expect(spring.end - spring.start).toBe(23.5 * HOUR);
  });
});

describe('calendarWindow where the change is at midnight', () => {
  it('starts the day at 01:00 when midnight is skipped (America/Santiago, 6 September 2026)', () => {
    // 04:00 UTC: 24:00 at -04 becomes 01:00 at -03.
    expectWindow('day', 'America/Santiago', utc(2026, 9, 6, 12), utc(2026, 9, 6, 4), utc(2026, 9, 7, 3));
    expectWindow('day', 'America/Santiago', utc(2026, 9, 5, 12), utc(2026, 9, 5, 4), utc(2026, 9, 6, 4));
  });

  it('gives the 25-hour Saturday when 24:00 falls back to 23:00 (America/Santiago, 4 April 2026)', () => {
    expectWindow('day', 'America/Santiago', utc(2026, 4, 4, 12), utc(2026, 4, 4, 3), utc(2026, 4, 5, 4));
  });

  it('starts the day at the first of two midnights (America/Havana, 1 November 2026)', () => {
    // 05:00 UTC: 01:00 at -04 falls back to 00:00 at -05, so 00:00 local happens twice.
    expectWindow('day', 'America/Havana', utc(2026, 11, 1, 12), utc(2026, 11, 1, 4), utc(2026, 11, 2, 5));
  });
});

describe('calendarWindow errors', () => {
  it('rejects an unknown zone and a bad instant', () => {
    expect(() => calendarWindow('day', 'Mars/Olympus', 0)).toThrow(PeriodError);
    expect(() => calendarWindow('day', 'Mars/Olympus', 0)).toThrow(/Mars\/Olympus/);
    expect(() => calendarWindow('day', 'UTC', Number.NaN)).toThrow(PeriodError);
    expect(() => calendarWindow('day', 'UTC', -1)).toThrow(PeriodError);
  });
});

describe('parsePeriod', () => {
  it('parses calendar units, never and rolling windows', () => {
    for (const unit of UNITS) expect(parsePeriod(unit)).toEqual({ kind: 'calendar', unit });
    expect(parsePeriod('never')).toEqual({ kind: 'never' });
    expect(parsePeriod('rolling:1000')).toEqual({ kind: 'rolling', ms: 1000 });
    expect(parsePeriod('rolling:60000')).toEqual({ kind: 'rolling', ms: 60_000 });
    expect(parsePeriod('rolling:31622400000')).toEqual({ kind: 'rolling', ms: 31_622_400_000 });
  });

  it.each([
    '',
    'Hour',
    ' day',
    'day ',
    'quarter',
    'forever',
    'rolling',
    'rolling:',
    'rolling:999',
    'rolling:31622400001',
    'rolling:-1000',
    'rolling:1.5',
    'rolling:1000.0',
    'rolling:1e6',
    'rolling:01000',
    'rolling:60000ms',
    'rolling: 60000',
    'rolling:0x3e8',
    'rolling:99999999999999999999999',
  ])('rejects %j', (text) => {
    expect(() => parsePeriod(text)).toThrow(PeriodError);
  });

  it('throws a PeriodError naming the text', () => {
    try {
      parsePeriod('rolling:999');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(PeriodError);
      expect(error).toBeInstanceOf(Error);
      expect((error as PeriodError).name).toBe('PeriodError');
      expect((error as PeriodError).message).toContain('rolling:999');
    }
  });
});

describe('isTimeZone', () => {
  it('knows IANA zones and rejects others', () => {
    for (const zone of ['UTC', 'Europe/Berlin', 'Asia/Kolkata', 'America/New_York', 'Asia/Kathmandu']) {
      expect(isTimeZone(zone)).toBe(true);
    }
    for (const zone of ['', 'Mars/Olympus', 'Europe/Berln', ' UTC', 'Z'])
      expect(isTimeZone(zone)).toBe(false);
  });
});

describe('rollingBucketMs', () => {
  it('takes 1/60 of the window when that divides it', () => {
    expect(rollingBucketMs(60_000)).toBe(1000);
    expect(rollingBucketMs(3_600_000)).toBe(60_000);
    expect(rollingBucketMs(7 * DAY)).toBe(10_080_000);
    expect(rollingBucketMs(366 * DAY)).toBe(527_040_000);
  });

  it('otherwise takes the exact divisor with a bucket count nearest 60', () => {
    expect(rollingBucketMs(1000)).toBe(20); // 50 buckets
    expect(rollingBucketMs(100_000)).toBe(2000); // 50 buckets
  });

  it('falls back to about 1/60, at least 1 ms, when no count from 30 to 120 divides the window', () => {
    expect(rollingBucketMs(1009)).toBe(17); // 1009 is prime
    expect(rollingBucketMs(7)).toBe(1);
    expect(() => rollingBucketMs(0)).toThrow(PeriodError);
    expect(() => rollingBucketMs(1.5)).toThrow(PeriodError);
  });

  it('always gives a positive whole bucket, dividing the window with 30 to 120 buckets when it can', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1000, max: 366 * DAY }), (ms) => {
        const bucket = rollingBucketMs(ms);
        expect(Number.isSafeInteger(bucket) && bucket >= 1).toBe(true);
        const exact = [];
        for (let n = 30; n <= 120; n++) if (ms % n === 0) exact.push(n);
        if (exact.length > 0) {
          expect(ms % bucket).toBe(0);
          const n = ms / bucket;
          expect(n).toBeGreaterThanOrEqual(30);
          expect(n).toBeLessThanOrEqual(120);
          const best = Math.min(...exact.map((k) => Math.abs(k - 60)));
          expect(Math.abs(n - 60)).toBe(best);
        } else {
          expect(bucket).toBe(Math.round(ms / 60));
        }
      }),
    );
  });
});

describe('WindowClock', () => {
  it('returns what calendarWindow returns, memoized until the instant leaves the window', () => {
    const clock = new WindowClock();
    const period: Period = { kind: 'calendar', unit: 'day' };
    const at = utc(2026, 3, 29, 10);
    const first = clock.window(period, 'Europe/Berlin', at);
    expect(first).toEqual(calendarWindow('day', 'Europe/Berlin', at));
    expect(clock.window(period, 'Europe/Berlin', first.end - 1)).toBe(first);
    expect(clock.window(period, 'Europe/Berlin', first.start)).toBe(first);

    const next = clock.window(period, 'Europe/Berlin', first.end);
    expect(next).not.toBe(first);
    expect(next).toEqual(calendarWindow('day', 'Europe/Berlin', first.end));
    expect(next.start).toBe(first.end);

    // Going back recomputes too.
    expect(clock.window(period, 'Europe/Berlin', at)).toEqual(first);
  });

  it('keeps zones and units apart', () => {
    const clock = new WindowClock();
    const at = utc(2026, 5, 17, 12);
    for (const zone of ['UTC', 'Asia/Kolkata', 'America/New_York']) {
      for (const unit of UNITS) {
        expect(clock.window({ kind: 'calendar', unit }, zone, at)).toEqual(calendarWindow(unit, zone, at));
      }
    }
    for (const zone of ['UTC', 'Asia/Kolkata', 'America/New_York']) {
      for (const unit of UNITS) {
        expect(clock.window({ kind: 'calendar', unit }, zone, at)).toEqual(calendarWindow(unit, zone, at));
      }
    }
  });

  it('gives never one window forever and rolling the bucket containing the instant', () => {
    const clock = new WindowClock();
    expect(clock.window({ kind: 'never' }, 'UTC', utc(2026, 1, 1))).toEqual({
      start: 0,
      end: Number.MAX_SAFE_INTEGER,
    });
    const minute: Period = { kind: 'rolling', ms: 60_000 };
    const at = utc(2026, 5, 17, 10, 15, 30, 123);
    const bucket = clock.window(minute, 'UTC', at);
    expect(bucket).toEqual({ start: utc(2026, 5, 17, 10, 15, 30), end: utc(2026, 5, 17, 10, 15, 31) });
    expect(clock.window(minute, 'Asia/Kolkata', bucket.end - 1)).toBe(bucket);
    expect(clock.window(minute, 'UTC', bucket.end)).toEqual({ start: bucket.end, end: bucket.end + 1000 });
    expect(clock.window({ kind: 'rolling', ms: 1000 }, 'UTC', at)).toEqual({ start: at - 3, end: at + 17 });
  });

  it('hands out frozen windows', () => {
    const w = new WindowClock().window({ kind: 'calendar', unit: 'hour' }, 'UTC', 0);
    expect(Object.isFrozen(w)).toBe(true);
  });
});

describe('calendar window properties, 2020-2035', () => {
  const ZONES = [
    'UTC',
    'Europe/Berlin',
    'America/New_York',
    'Asia/Kolkata',
    'Asia/Kathmandu',
    'Australia/Lord_Howe', // 30-minute DST shift
    'Pacific/Chatham', // +12:45 / +13:45
    'America/Santiago', // changes at midnight
    'Africa/Cairo', // changes at midnight
    'America/Havana', // falls back to a second midnight
  ];
  const FROM = utc(2020, 1, 1);
  const TO = utc(2036, 1, 1);
  const unit = fc.constantFrom(...UNITS);

  // Uniform instants almost never land near a DST change, so half are drawn within two days of one.
  function transitions(z: string): number[] {
    const f = new Intl.DateTimeFormat('en-US', { timeZone: z, timeZoneName: 'longOffset' });
    const offsetOf = (t: number) => f.formatToParts(t).find((x) => x.type === 'timeZoneName')?.value;
    const found: number[] = [];
    for (let t = FROM; t < TO; t += DAY) {
      if (offsetOf(t) === offsetOf(t + DAY)) continue;
      let [lo, hi] = [t, t + DAY];
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (offsetOf(mid) === offsetOf(lo)) lo = mid;
        else hi = mid;
      }
      found.push(hi);
    }
    return found;
  }
  const changesByZone = new Map(ZONES.map((z) => [z, transitions(z)]));
  const zoneAndInstant = fc.constantFrom(...ZONES).chain((z) => {
    const uniform = fc.integer({ min: FROM, max: TO - 1 });
    const changes = changesByZone.get(z) ?? [];
    const near =
      changes.length === 0
        ? uniform
        : fc
            .tuple(fc.constantFrom(...changes), fc.integer({ min: -2 * DAY, max: 2 * DAY }))
            .map(([t, d]) => t + d);
    return fc.tuple(fc.constant(z), fc.oneof(uniform, near));
  });

  // An independent reading of the local clock, to check each window holds one local label.
  const formatters = new Map<string, Intl.DateTimeFormat>();
  function local(z: string, t: number): { label: Record<CalendarUnit, string>; offset: string } {
    let f = formatters.get(z);
    if (f === undefined) {
      f = new Intl.DateTimeFormat('en-CA', {
        timeZone: z,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        weekday: 'short',
        timeZoneName: 'longOffset',
      });
      formatters.set(z, f);
    }
    const p = Object.fromEntries(f.formatToParts(t).map((x) => [x.type, x.value]));
    const date = `${p.year}-${p.month}-${p.day}`;
    const weekday = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(String(p.weekday));
    const monday = new Date(Date.parse(`${date}T00:00:00Z`) - weekday * DAY).toISOString().slice(0, 10);
    return {
      label: {
        hour: `${date}T${p.hour}`,
        day: date,
        week: monday,
        month: date.slice(0, 7),
        year: date.slice(0, 4),
      },
      offset: String(p.timeZoneName),
    };
  }

  it('contains the instant, is the window of its own start, and tiles with the next', () => {
    fc.assert(
      fc.property(unit, zoneAndInstant, (u, [z, at]) => {
        const w = calendarWindow(u, z, at);
        expect(w.start <= at && at < w.end).toBe(true);
        expect(calendarWindow(u, z, w.start)).toEqual(w);
        expect(calendarWindow(u, z, w.end - 1)).toEqual(w);
        expect(calendarWindow(u, z, w.end).start).toBe(w.end);
        expect(calendarWindow(u, z, w.start - 1).end).toBe(w.start);
      }),
      { numRuns: 500 },
    );
  });

  it('holds exactly one local label, ending where the label (or, for hours, the offset) changes', () => {
    fc.assert(
      fc.property(unit, zoneAndInstant, (u, [z, at]) => {
        const w = calendarWindow(u, z, at);
        const here = local(z, at);
        const first = local(z, w.start);
        const last = local(z, w.end - 1);
        const before = local(z, w.start - 1);
        const after = local(z, w.end);
        expect(first.label[u]).toBe(here.label[u]);
        expect(last.label[u]).toBe(here.label[u]);
        if (u === 'hour') {
          expect(w.end - w.start).toBeLessThanOrEqual(HOUR);
          expect(before.label.hour !== here.label.hour || before.offset !== first.offset).toBe(true);
          expect(after.label.hour !== here.label.hour || after.offset !== last.offset).toBe(true);
        } else {
          expect(before.label[u]).not.toBe(here.label[u]);
          expect(after.label[u]).not.toBe(here.label[u]);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('makes WindowClock agree with calendarWindow over a walk through time', () => {
    fc.assert(
      fc.property(
        unit,
        zoneAndInstant,
        fc.array(fc.integer({ min: 0, max: 3 * HOUR }), { maxLength: 30 }),
        (u, [z, start], steps) => {
          const clock = new WindowClock();
          let at = start;
          for (const step of steps) {
            at += step;
            expect(clock.window({ kind: 'calendar', unit: u }, z, at)).toEqual(calendarWindow(u, z, at));
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
