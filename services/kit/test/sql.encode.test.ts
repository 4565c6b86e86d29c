import { describe, expect, it } from 'vitest';
import { bindParams, copyLine, copyStatement, copyText } from '../src/sql/encode.ts';

describe('bindParams', () => {
  it('hands the drivers text they agree on, bytes as bytes, null as null', () => {
    const bytes = new Uint8Array([1, 2]);
    expect(
      bindParams([
        'grant',
        42,
        12345678901234567890n,
        true,
        new Date('2024-01-02T03:04:05.006Z'),
        { cents: 5 },
        ['a', null],
        bytes,
        null,
      ]),
    ).toEqual([
      'grant',
      '42',
      '12345678901234567890',
      'true',
      '2024-01-02T03:04:05.006Z',
      '{"cents":5}',
      '{"a",NULL}',
      bytes,
      null,
    ]);
  });

  it('writes arrays as Postgres array literals, nested and escaped', () => {
    expect(
      bindParams([
        [
          ['a"b', 'c\\d'],
          [null, ''],
        ],
        [],
      ]),
    ).toEqual(['{{"a\\"b","c\\\\d"},{NULL,""}}', '{}']);
  });

  it('writes bytes inside an array as bytea hex', () => {
    expect(bindParams([[new Uint8Array([0, 255])]])).toEqual(['{"\\\\x00ff"}']);
  });

  it('refuses an invalid date rather than binding garbage', () => {
    expect(() => bindParams([new Date(Number.NaN)])).toThrow(RangeError);
  });
});

describe('copyLine', () => {
  it('escapes backslash, tab, newline and carriage return, and writes null as \\N', () => {
    expect(copyLine(['a\tb', 'c\nd', 'e\rf', 'g\\h', null, '\\N', ''])).toBe(
      'a\\tb\tc\\nd\te\\rf\tg\\\\h\t\\N\t\\\\N\t\n',
    );
  });

  it('writes dates as ISO, objects as JSON and bytes as escaped hex', () => {
    expect(copyLine([new Date('2024-01-02T03:04:05.006Z'), { note: 'a\tb' }, new Uint8Array([171])])).toBe(
      '2024-01-02T03:04:05.006Z\t{"note":"a\\\\tb"}\t\\\\xab\n',
    );
  });
});

describe('copyText', () => {
  it('groups lines into chunks of about the requested size', () => {
    const rows = Array.from({ length: 10 }, (_, id) => [id, 'xxxxxxxx']);
    const chunks = [...copyText(rows, ['id', 'body'], 30)];
    expect(chunks.join('')).toBe(rows.map((row) => copyLine(row)).join(''));
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.every((chunk) => chunk.endsWith('\n'))).toBe(true);
  });

  it('refuses a row whose width does not match the columns', () => {
    expect(() => [...copyText([[1, 'a'], [2]], ['id', 'body'])]).toThrow(
      'copy row 1 has 1 values for 2 columns',
    );
  });
});

describe('copyStatement', () => {
  it('quotes validated names, schema-qualified or not', () => {
    expect(copyStatement('metering.events', ['id', 'user'], 'STDIN')).toBe(
      'COPY "metering"."events" ("id", "user") FROM STDIN',
    );
  });

  it.each(['Events', 'events; DROP TABLE x', 'events"', '', 'a..b'])('refuses the table name %j', (table) => {
    expect(() => copyStatement(table, ['id'], 'STDIN')).toThrow(/invalid table name/);
  });
});
