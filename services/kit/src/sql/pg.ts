import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFromStdin } from 'pg-copy-streams';
import { bindParams, copyStatement, copyText } from './encode.ts';
import type { SqlExecutor, SqlResult, SqlStore, SqlValue } from './port.ts';
import { TransactionScope } from './transaction-scope.ts';

export interface PgStoreOptions {
  /** `postgres://user:password@host:5432/database` */
  url: string;
  /** Pool size (pg's default is 10). */
  max?: number | undefined;
  /**
   * A pooled connection failed while nobody was using it (server restart, network drop).
   * The pool discards it and the next query reconnects; pass this to log it.
   */
  onConnectionError?: (error: Error) => void;
}

/** The SQL store on a PostgreSQL server, over a `pg` pool it owns. */
export class PgStore implements SqlStore {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #scope = new TransactionScope();
  #closing: Promise<void> | undefined;

  constructor(options: PgStoreOptions) {
    assertPgUrl(options.url);
    this.#pool = new pg.Pool({ connectionString: options.url, max: options.max, types: exactNumberTypes() });
    // An 'error' event nobody listens to crashes the process. The pool reports idle connections
    // failing; one that fails while checked out fails its next query, and the pool then drops it.
    this.#pool.on('error', options.onConnectionError ?? ignore);
    this.#pool.on('connect', (client) => client.on('error', ignore));
  }

  async query<Row extends object = Record<string, unknown>>(
    text: string,
    params?: readonly SqlValue[],
  ): Promise<SqlResult<Row>> {
    this.#scope.assertOutside('query');
    return runQuery<Row>(this.#pool, text, params);
  }

  async copyFrom(
    table: string,
    columns: readonly string[],
    rows: Iterable<readonly SqlValue[]>,
  ): Promise<number> {
    this.#scope.assertOutside('copyFrom');
    const client = await this.#pool.connect();
    try {
      return await copyInto(client, table, columns, rows);
    } finally {
      client.release();
    }
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    this.#scope.assertOutside('transaction');
    const client = await this.#pool.connect();
    const tx = new PgTransaction(client);
    let discard: Error | undefined;
    try {
      await client.query('BEGIN');
      let result: T;
      try {
        result = await this.#scope.run(() => fn(tx));
      } catch (error) {
        // The caller's error is the one to report. A connection whose ROLLBACK failed may still be
        // inside the transaction, so it is destroyed rather than handed to the next caller.
        await client.query('ROLLBACK').catch((rollbackError: Error) => {
          discard = rollbackError;
        });
        throw error;
      }
      const commit = await client.query('COMMIT');
      // After a failed statement, COMMIT quietly rolls back. Say so, as PGlite does.
      if (commit.command === 'ROLLBACK') throw new TransactionAbortedError();
      return result;
    } finally {
      tx.close();
      client.release(discard);
    }
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  close(): Promise<void> {
    this.#closing ??= this.#pool.end();
    return this.#closing;
  }
}

/** The executor handed to a transaction callback: one pooled client, unusable once the transaction ends. */
class PgTransaction implements SqlExecutor {
  #client: pg.PoolClient | undefined;

  constructor(client: pg.PoolClient) {
    this.#client = client;
  }

  async query<Row extends object = Record<string, unknown>>(
    text: string,
    params?: readonly SqlValue[],
  ): Promise<SqlResult<Row>> {
    return runQuery<Row>(this.#openClient(), text, params);
  }

  async copyFrom(
    table: string,
    columns: readonly string[],
    rows: Iterable<readonly SqlValue[]>,
  ): Promise<number> {
    return copyInto(this.#openClient(), table, columns, rows);
  }

  close(): void {
    this.#client = undefined;
  }

  #openClient(): pg.PoolClient {
    // Once released, the client serves other callers' queries.
    if (!this.#client) throw new Error('Transaction is closed');
    return this.#client;
  }
}

/** Same code and message as PGlite's, so callers handle both adapters alike. */
class TransactionAbortedError extends Error {
  readonly code = '25P02';

  constructor() {
    super('Transaction was rolled back instead of committed');
    this.name = 'TransactionAbortedError';
  }
}

async function runQuery<Row>(
  on: pg.Pool | pg.PoolClient,
  text: string,
  params: readonly SqlValue[] | undefined,
): Promise<SqlResult<Row>> {
  // Without params pg uses the simple protocol, where one text may hold several statements.
  const result = (await on.query(text, bindParams(params))) as pg.QueryResult | pg.QueryResult[];
  const last = Array.isArray(result) ? result.at(-1) : result;
  return { rows: (last?.rows ?? []) as Row[], rowCount: last?.rowCount ?? 0 };
}

async function copyInto(
  client: pg.PoolClient,
  table: string,
  columns: readonly string[],
  rows: Iterable<readonly SqlValue[]>,
): Promise<number> {
  const copy = client.query(copyFromStdin(copyStatement(table, columns, 'STDIN')));
  await pipeline(Readable.from(copyText(rows, columns)), copy);
  return copy.rowCount;
}

// Plain numbers: pg-types' TypeId enum has no array types.
const OID: Readonly<Record<'int8' | 'numeric' | 'numericArray' | 'textArray', number>> = {
  int8: 20,
  numeric: 1700,
  numericArray: 1231,
  textArray: 1009,
};

/**
 * Money is never a float: `numeric` and `int8` come back as strings. Set per pool, not on
 * pg's global registry, so no other pg user in the process is affected. (pg already keeps
 * int8[] as strings; numeric[] it would parse as floats.)
 */
function exactNumberTypes(): pg.TypeOverrides {
  const types = new pg.TypeOverrides();
  const asText = (value: string) => value;
  types.setTypeParser(OID.int8, asText);
  types.setTypeParser(OID.numeric, asText);
  types.setTypeParser(OID.numericArray, pg.types.getTypeParser(OID.textArray));
  return types;
}

/** Checked before any connection, so a bad DATABASE_URL fails at boot with a message that says so. */
function assertPgUrl(url: string): void {
  const protocol = URL.canParse(url) ? new URL(url).protocol : undefined;
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
    throw new Error(
      `invalid PostgreSQL URL: ${JSON.stringify(redactPassword(url))} (expected postgres://user:password@host:5432/database)`,
    );
  }
}

function ignore(): void {}

function redactPassword(url: string): string {
  return url.replace(/\/\/([^/:@]*):.*@/, '//$1:***@');
}
