/**
 * How names and JavaScript values are written for PostgreSQL. Both adapters go through
 * here, so a value binds and copies the same way on a real server and on PGlite (left to
 * themselves, `pg` and PGlite encode arrays, objects and dates differently).
 */
import type { SqlValue } from './port.ts';

/** What the drivers are handed: bytes stay bytes, everything else is text we wrote. */
export type BoundParam = string | Uint8Array | null;

export function bindParams(params: readonly SqlValue[] | undefined): BoundParam[] {
  return params?.map(bindParam) ?? [];
}

function bindParam(value: SqlValue): BoundParam {
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) return value;
  return valueText(value);
}

/**
 * The text form of a non-null value: arrays as Postgres array literals, other objects as
 * JSON, dates as ISO timestamps, bytes as `\x` hex.
 */
function valueText(value: NonNullable<SqlValue>): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array)
    return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
  if (Array.isArray(value)) return arrayLiteral(value);
  return JSON.stringify(value);
}

function arrayLiteral(values: readonly SqlValue[]): string {
  const elements = values.map((element) => {
    if (element === null || element === undefined) return 'NULL';
    if (Array.isArray(element)) return arrayLiteral(element);
    return `"${valueText(element).replace(/[\\"]/g, '\\$&')}"`;
  });
  return `{${elements.join(',')}}`;
}

const COPY_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
};

/** One row of `COPY ... FROM` text format: tab-separated, `\N` for null, backslash escapes. */
export function copyLine(values: readonly SqlValue[]): string {
  const fields = values.map((value) =>
    value === null || value === undefined
      ? '\\N'
      : valueText(value).replace(/[\\\t\n\r]/g, (char) => COPY_ESCAPES[char] ?? char),
  );
  return `${fields.join('\t')}\n`;
}

/** COPY text for `rows`, in chunks of about `chunkChars` so a large load streams instead of one write per row. */
export function* copyText(
  rows: Iterable<readonly SqlValue[]>,
  columns: readonly string[],
  chunkChars = 64 * 1024,
): Generator<string> {
  let chunk = '';
  let index = 0;
  for (const row of rows) {
    if (row.length !== columns.length) {
      throw new Error(`copy row ${index} has ${row.length} values for ${columns.length} columns`);
    }
    chunk += copyLine(row);
    index += 1;
    if (chunk.length >= chunkChars) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/**
 * Throws unless `name` is a plain lowercase identifier. Names that reach SQL text (schemas,
 * COPY targets) are code constants; refusing anything else rules out injection and case games.
 */
export function assertIdentifier(kind: string, name: string): void {
  if (!IDENTIFIER.test(name))
    throw new Error(`invalid ${kind} name ${JSON.stringify(name)}: expected ${IDENTIFIER}`);
}

/** A validated identifier, quoted so reserved words (`user`, `order`) work too. */
export function quoteIdentifier(kind: string, name: string): string {
  assertIdentifier(kind, name);
  return `"${name}"`;
}

/** `COPY "schema"."table" ("a", "b") FROM <source>`; `table` may be schema-qualified. */
export function copyStatement(table: string, columns: readonly string[], source: string): string {
  const target = table
    .split('.')
    .map((part) => quoteIdentifier('table', part))
    .join('.');
  const columnList = columns.map((column) => quoteIdentifier('column', column)).join(', ');
  return `COPY ${target} (${columnList}) FROM ${source}`;
}
