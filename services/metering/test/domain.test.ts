import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addDecimal, compareDecimal, formatDecimal, parseDecimal } from '../src/domain/decimal.ts';
import { describeProblem, isProblem, readEvent } from '../src/domain/events.ts';
import { compileJsonPath, JsonPathError, readPath } from '../src/domain/jsonpath.ts';
import { compileMeter, readMeter } from '../src/domain/meters.ts';

describe('exact decimals', () => {
  it('parse, format, add and compare like scaled integers', () => {
    const decimal = fc
      .tuple(fc.bigInt({ min: -(10n ** 18n), max: 10n ** 18n }), fc.integer({ min: 0, max: 8 }))
      .map(([n, s]) => ({ n, s, text: formatDecimal({ n, s }) }));
    fc.assert(
      fc.property(decimal, decimal, (a, b) => {
        const scaled = (d: { n: bigint; s: number }) => d.n * 10n ** BigInt(8 - d.s);
        const pa = parseDecimal(a.text);
        const pb = parseDecimal(b.text);
        expect(scaled(pa)).toBe(scaled(a));
        expect(scaled(addDecimal(pa, pb))).toBe(scaled(a) + scaled(b));
        expect(compareDecimal(pa, pb)).toBe(Math.sign(Number(scaled(a) - scaled(b))));
      }),
    );
  });

  it('reads exponents and keeps every digit', () => {
    expect(formatDecimal(parseDecimal('1.5e3'))).toBe('1500');
    expect(formatDecimal(parseDecimal('-2.5e-3'))).toBe('-0.0025');
    expect(formatDecimal(addDecimal(parseDecimal('0.1'), parseDecimal('0.2')))).toBe('0.3');
    expect(formatDecimal(parseDecimal('123456789012345678901234567890.123456789'))).toBe(
      '123456789012345678901234567890.123456789',
    );
    expect(() => parseDecimal('1,5')).toThrow();
  });
});

describe('JSONPath subset', () => {
  it('reads members and indexes', () => {
    const data = { usage: { input_tokens: 12 }, 'model name': 'x', items: [{ n: 3 }] };
    expect(readPath(data, compileJsonPath('$.usage.input_tokens'))).toBe(12);
    expect(readPath(data, compileJsonPath("$['model name']"))).toBe('x');
    expect(readPath(data, compileJsonPath('$.items[0].n'))).toBe(3);
    expect(readPath(data, compileJsonPath('$.items[1].n'))).toBeUndefined();
    expect(readPath(data, compileJsonPath('$.usage.missing'))).toBeUndefined();
    expect(readPath(data, compileJsonPath('$.toString'))).toBeUndefined();
  });

  it('refuses what it does not read', () => {
    for (const path of ['$', '$..a', '$.a[*]', 'a.b', '$.a[?(@.x)]', "$['a"]) {
      expect(() => compileJsonPath(path), path).toThrow(JsonPathError);
    }
  });
});

describe('events and meters', () => {
  const window = { now: Date.UTC(2026, 0, 10), oldest: Date.UTC(2026, 0, 3), newest: Date.UTC(2026, 0, 11) };

  it('reads a CloudEvent and names the field of each problem', () => {
    const good = {
      specversion: '1.0',
      id: 'e1',
      source: 's',
      type: 't',
      subject: 'acme',
      time: '2026-01-09T10:00:00Z',
    };
    const read = readEvent(good, 0, window);
    expect(isProblem(read)).toBe(false);
    expect(read).toMatchObject({ id: 'e1', time: Date.UTC(2026, 0, 9, 10), data: null });
    const problem = readEvent({ ...good, subject: 7 }, 4, window);
    expect(isProblem(problem) && describeProblem(problem)).toBe(
      'events[4] (id "e1").subject: expected a string',
    );
    const old = readEvent({ ...good, time: '2025-12-01T00:00:00Z' }, 0, window);
    expect(isProblem(old) && old.field).toBe('time');
    const none = readEvent({ ...good, time: undefined }, 0, window);
    expect(!isProblem(none) && none.time).toBe(window.now);
  });

  it('reads a meter value and its groups, or says why not', () => {
    const meter = compileMeter('tokens', 1, {
      eventType: 't',
      aggregation: 'SUM',
      valueProperty: '$.tokens',
      groupBy: { model: '$.model' },
    });
    expect(readMeter(meter, { tokens: 5, model: 'gpt-5' })).toEqual({
      value: '5',
      groups: { model: 'gpt-5' },
      groupKey: '["gpt-5"]',
    });
    expect(readMeter(meter, { tokens: '2.5' })).toMatchObject({ value: '2.5', groups: { model: null } });
    expect(readMeter(meter, { model: 'x' })).toBe('data: $.tokens is missing (meter tokens)');
    expect(readMeter(meter, { tokens: 'lots' })).toBe('data: $.tokens must be a number (meter tokens)');
    const count = compileMeter('calls', 1, { eventType: 't', aggregation: 'COUNT', groupBy: {} });
    expect(readMeter(count, null)).toEqual({ value: '1', groups: {}, groupKey: '' });
  });
});
