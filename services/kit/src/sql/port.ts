/**
 * The SQL store port. Every service reaches PostgreSQL through this interface, so the
 * same code runs on a real server (`pg`) and in-process (PGlite). One conformance suite
 * (`test/sql.conformance.ts`) runs against both adapters.
 */

/**
 * A parameter or COPY value. Both adapters encode it alike: arrays as Postgres arrays, other
 * objects as JSON, dates as ISO timestamps. Since a JavaScript array always becomes a Postgres
 * array, bind a `jsonb` array as `JSON.stringify(value)`.
 */
export type SqlValue = string | number | bigint | boolean | Date | null | Uint8Array | SqlValue[] | object;

export interface SqlResult<Row> {
  rows: Row[];
  /** Rows affected by INSERT/UPDATE/DELETE, or returned by SELECT. */
  rowCount: number;
}

/** What both a store and a transaction can do. */
export interface SqlExecutor {
  /**
   * Parameterised query (`$1`, `$2`, ...). `numeric` and `int8` come back as strings, never floats.
   * Without params, `text` may hold several statements; the result is the last one's.
   */
  query<Row extends object = Record<string, unknown>>(
    text: string,
    params?: readonly SqlValue[],
  ): Promise<SqlResult<Row>>;
  /**
   * Bulk load with `COPY ... FROM STDIN` (text format). Values are escaped by the adapter;
   * `null` becomes `\N`. Returns the number of rows copied.
   */
  copyFrom(table: string, columns: readonly string[], rows: Iterable<readonly SqlValue[]>): Promise<number>;
}

export interface SqlStore extends SqlExecutor {
  readonly kind: 'postgres' | 'pglite';
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws.
   * Inside `fn` use `tx` only: calling the store itself throws. If a statement failed, the
   * transaction cannot commit and this rejects with code `25P02`, even if `fn` caught the error.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
