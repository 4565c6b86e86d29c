import { mkdir } from 'node:fs/promises';
import { PGlite, type Results, type Transaction } from '@electric-sql/pglite';
import { bindParams, copyStatement, copyText } from './encode.ts';
import type { SqlExecutor, SqlResult, SqlStore, SqlValue } from './port.ts';
import { TransactionScope } from './transaction-scope.ts';

export interface PgliteStoreOptions {
  /** Directory the database persists to; in memory when absent. */
  dataDir?: string | undefined;
}

const OID = { int8: 20, numeric: 1700 } as const;

/**
 * The SQL store in-process: PostgreSQL compiled to WebAssembly, for `npm start` and tests.
 * It has a single connection. PGlite's mutex holds it for a whole transaction, so
 * concurrent transactions, and store queries issued meanwhile, wait their turn instead of
 * running inside someone else's transaction.
 */
export class PgliteStore implements SqlStore {
  readonly kind = 'pglite' as const;
  readonly #db: PGlite;
  readonly #scope = new TransactionScope();
  #closing: Promise<void> | undefined;

  private constructor(db: PGlite) {
    this.#db = db;
  }

  /** Resolves once the database is ready, so a bad `dataDir` fails here rather than on first use. */
  static async open(options: PgliteStoreOptions = {}): Promise<PgliteStore> {
    const asText = (value: string) => value;
    // Money is never a float. PGlite's array parsers look these up too, so numeric[] and int8[] stay strings.
    if (options.dataDir !== undefined) await mkdir(options.dataDir, { recursive: true });
    const db = await PGlite.create(options.dataDir, {
      parsers: { [OID.int8]: asText, [OID.numeric]: asText },
    });
    return new PgliteStore(db);
  }

  async query<Row extends object = Record<string, unknown>>(
    text: string,
    params?: readonly SqlValue[],
  ): Promise<SqlResult<Row>> {
    this.#scope.assertOutside('query');
    return runQuery<Row>(this.#db, text, params);
  }

  async copyFrom(
    table: string,
    columns: readonly string[],
    rows: Iterable<readonly SqlValue[]>,
  ): Promise<number> {
    this.#scope.assertOutside('copyFrom');
    return copyInto(this.#db, table, columns, rows);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    this.#scope.assertOutside('transaction');
    return this.#db.transaction((tx) => this.#scope.run(() => fn(new PgliteTransaction(tx))));
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  close(): Promise<void> {
    this.#closing ??= this.#db.close();
    return this.#closing;
  }
}

/** PGlite's transaction already refuses use after it ends; this only adapts it to the port. */
class PgliteTransaction implements SqlExecutor {
  readonly #tx: Transaction;

  constructor(tx: Transaction) {
    this.#tx = tx;
  }

  async query<Row extends object = Record<string, unknown>>(
    text: string,
    params?: readonly SqlValue[],
  ): Promise<SqlResult<Row>> {
    return runQuery<Row>(this.#tx, text, params);
  }

  async copyFrom(
    table: string,
    columns: readonly string[],
    rows: Iterable<readonly SqlValue[]>,
  ): Promise<number> {
    return copyInto(this.#tx, table, columns, rows);
  }
}

async function runQuery<Row>(
  on: PGlite | Transaction,
  text: string,
  params: readonly SqlValue[] | undefined,
): Promise<SqlResult<Row>> {
  // As pg does: without params, the simple protocol, where one text may hold several statements.
  if (!params?.length) return sqlResult((await on.exec(text)).at(-1) as Results<Row> | undefined);
  return sqlResult(await on.query<Row>(text, bindParams(params)));
}

function sqlResult<Row>(result: Results<Row> | undefined): SqlResult<Row> {
  return { rows: result?.rows ?? [], rowCount: result?.rowCount ?? 0 };
}

async function copyInto(
  on: PGlite | Transaction,
  table: string,
  columns: readonly string[],
  rows: Iterable<readonly SqlValue[]>,
): Promise<number> {
  // PGlite has no COPY FROM STDIN; it reads the data from a blob it exposes as /dev/blob.
  const blob = new Blob([...copyText(rows, columns)]);
  const result = await on.query(copyStatement(table, columns, "'/dev/blob'"), [], { blob });
  return result.rowCount ?? 0;
}
