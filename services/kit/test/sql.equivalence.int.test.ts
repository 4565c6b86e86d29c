/**
 * PgStore and PgliteStore must be interchangeable: the same random sequence of ledger
 * operations, in and out of transactions, some of which fail or are abandoned, gives the
 * same answer on both after every step.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { PgliteStore, PgStore, SqlExecutor, SqlStore } from '../src/sql/index.ts';
import { type FreshPgDatabase, freshPgDatabase, freshPgliteStore } from '../src/testing/sql.ts';

type Operation =
  | { kind: 'open'; account: number; balance: string }
  | { kind: 'post'; account: number; delta: string }
  | { kind: 'close'; account: number }
  | { kind: 'read'; account: number }
  | { kind: 'copy'; accounts: { account: number; balance: string }[] };

type Step = Operation | { kind: 'transaction'; operations: Operation[]; abandon: boolean };

/** An amount in micro-units written as numeric text: -1500000n is '-1.500000'. */
function decimal(micros: bigint): string {
  const magnitude = micros < 0n ? -micros : micros;
  const fraction = String(magnitude % 1_000_000n).padStart(6, '0');
  return `${micros < 0n ? '-' : ''}${magnitude / 1_000_000n}.${fraction}`;
}

// Few accounts and wide deltas, so duplicate opens (23505) and overdrafts (23514) happen often.
const account = fc.integer({ min: 1, max: 4 });
const balance = fc.bigInt({ min: 0n, max: 10n ** 12n }).map(decimal);
const delta = fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }).map(decimal);

const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ kind: fc.constant('open' as const), account, balance }),
  fc.record({ kind: fc.constant('post' as const), account, delta }),
  fc.record({ kind: fc.constant('close' as const), account }),
  fc.record({ kind: fc.constant('read' as const), account }),
  fc.record({
    kind: fc.constant('copy' as const),
    accounts: fc.array(fc.record({ account, balance }), { maxLength: 3 }),
  }),
);

const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: operation, weight: 3 },
  fc.record({
    kind: fc.constant('transaction' as const),
    operations: fc.array(operation, { minLength: 1, maxLength: 5 }),
    abandon: fc.boolean(),
  }),
);

async function apply(on: SqlExecutor, op: Operation): Promise<unknown> {
  try {
    switch (op.kind) {
      case 'open':
        return await on.query('INSERT INTO balances (account, balance) VALUES ($1, $2) RETURNING *', [
          op.account,
          op.balance,
        ]);
      case 'post':
        return await on.query('UPDATE balances SET balance = balance + $2 WHERE account = $1 RETURNING *', [
          op.account,
          op.delta,
        ]);
      case 'close':
        return await on.query('DELETE FROM balances WHERE account = $1', [op.account]);
      case 'read':
        return await on.query('SELECT * FROM balances WHERE account = $1', [op.account]);
      case 'copy':
        return {
          copied: await on.copyFrom(
            'balances',
            ['account', 'balance'],
            op.accounts.map((row) => [row.account, row.balance]),
          ),
        };
    }
  } catch (error) {
    return { failed: errorCode(error) };
  }
}

async function applyStep(store: SqlStore, current: Step): Promise<unknown> {
  if (current.kind !== 'transaction') return apply(store, current);
  const outcomes: unknown[] = [];
  try {
    await store.transaction(async (tx) => {
      for (const op of current.operations) outcomes.push(await apply(tx, op));
      if (current.abandon) throw new Error('abandoned');
    });
    return { outcomes, committed: true };
  } catch (error) {
    return { outcomes, failed: errorCode(error) };
  }
}

/** Messages may differ between server versions; the SQLSTATE must not. */
function errorCode(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  return code ?? message ?? String(error);
}

async function balances(store: SqlStore): Promise<unknown[]> {
  return (await store.query('SELECT * FROM balances ORDER BY account')).rows;
}

let database: FreshPgDatabase;
let postgres: PgStore;
let pglite: PgliteStore;

beforeAll(async () => {
  database = await freshPgDatabase();
  postgres = database.store;
  pglite = await freshPgliteStore();
});

afterAll(async () => {
  await pglite.close();
  await database.drop();
});

it('PgStore and PgliteStore agree on every step of a random ledger workload', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { maxLength: 30 }), async (steps) => {
      for (const store of [postgres, pglite]) {
        await store.query(`
          DROP TABLE IF EXISTS balances;
          CREATE TABLE balances (
            account int PRIMARY KEY,
            balance numeric(20, 6) NOT NULL CHECK (balance >= 0)
          )`);
      }
      for (const current of steps) {
        const onPostgres = await applyStep(postgres, current);
        const onPglite = await applyStep(pglite, current);
        expect(onPglite).toEqual(onPostgres);
        expect(await balances(pglite)).toEqual(await balances(postgres));
      }
    }),
    { numRuns: 25 },
  );
});
