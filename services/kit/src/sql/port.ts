/**
 * The SQL store port. Every service reaches PostgreSQL through this interface, so the
 * same code runs on a real server (`pg`) and in-process (PGlite). One conformance suite
 * (`test/sql.conformance.ts`) runs against both adapters.
 */
export type SqlValue = string | number | bigint | boolean | Date | null | Uint8Array | SqlValue[] | object;

export interface SqlResult<Row> {
  rows: Row[];
  /** Rows affected by INSERT/UPDATE/DELETE, or returned by SELECT. */
  rowCount: number;
}

/** What both a store and a transaction can do. */
export interface SqlExecutor {
  /** Parameterised query (`$1`, `$2`, ...). `numeric` and `int8` come back as strings, never floats. */
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
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
