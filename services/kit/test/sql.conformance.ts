/**
 * The SqlStore conformance suite: every adapter must pass it unchanged, which is what lets a
 * service developed on PGlite run on PostgreSQL. Each test starts from an empty database.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { migrate, type SqlExecutor, type SqlStore, type SqlValue } from '../src/sql/index.ts';

export interface OpenedStore {
  store: SqlStore;
  cleanup: () => Promise<void>;
}

export function sqlConformance(name: string, open: () => Promise<OpenedStore>): void {
  describe(`SqlStore conformance: ${name}`, () => {
    let opened: OpenedStore;
    let store: SqlStore;
    const migrationDirs: string[] = [];

    beforeAll(async () => {
      opened = await open();
      store = opened.store;
    });
    afterAll(async () => {
      await opened.cleanup();
      await Promise.all(migrationDirs.map((dir) => rm(dir, { recursive: true, force: true })));
    });
    beforeEach(() => resetDatabase(store));

    async function migrationsDir(files: Record<string, string>): Promise<string> {
      const dir = await mkdtemp(join(tmpdir(), 'allot-migrations-'));
      migrationDirs.push(dir);
      await addMigrations(dir, files);
      return dir;
    }

    async function createLedger(): Promise<void> {
      await store.query(`
        CREATE TABLE ledger (
          id int PRIMARY KEY,
          account text NOT NULL,
          amount numeric(38, 6) NOT NULL CHECK (amount <> 0)
        )`);
    }

    describe('query: parameters and types', () => {
      it('returns numeric and int8 as exact strings', async () => {
        const { rows } = await store.query(
          'SELECT $1::numeric AS amount, $2::int8 AS big, $3::int8 AS from_bigint, $4::numeric[] AS amounts, $5::int8[] AS bigs',
          [
            '12345678901234567890.123456',
            '9223372036854775807',
            9007199254740993n,
            ['0.1', null, '-2.50'],
            ['1', '2'],
          ],
        );
        expect(rows).toEqual([
          {
            amount: '12345678901234567890.123456',
            big: '9223372036854775807',
            from_bigint: '9007199254740993',
            amounts: ['0.1', null, '-2.50'],
            bigs: ['1', '2'],
          },
        ]);
      });

      it('keeps a stored amount exact, in sums and counts too', async () => {
        await createLedger();
        await store.query('INSERT INTO ledger VALUES (1, $1, $2), (2, $1, $3)', [
          'acme',
          '12345678901234567890.123456',
          '0.000001',
        ]);
        const { rows } = await store.query(
          'SELECT sum(amount) AS total, count(*) AS entries, max(amount) AS largest FROM ledger',
        );
        expect(rows).toEqual([
          { total: '12345678901234567890.123457', entries: '2', largest: '12345678901234567890.123456' },
        ]);
      });

      it('round-trips bool, int, float, text and null', async () => {
        const { rows } = await store.query(
          'SELECT $1::bool AS yes, $2::bool AS no, $3::int AS n, $4::float8 AS ratio, $5::text AS word, $6::text AS nothing',
          [true, false, 42, 0.25, 'grant', null],
        );
        expect(rows).toEqual([{ yes: true, no: false, n: 42, ratio: 0.25, word: 'grant', nothing: null }]);
      });

      it('round-trips timestamptz as Date', async () => {
        const at = new Date('2024-02-29T12:34:56.789Z');
        const { rows } = await store.query<{ at: Date; later: Date }>(
          "SELECT $1::timestamptz AS at, $1::timestamptz + interval '1 day' AS later",
          [at],
        );
        expect(rows[0]?.at).toBeInstanceOf(Date);
        expect(rows[0]?.at.toISOString()).toBe('2024-02-29T12:34:56.789Z');
        expect(rows[0]?.later.toISOString()).toBe('2024-03-01T12:34:56.789Z');
      });

      it('binds objects as jsonb and parses jsonb back', async () => {
        const metadata = { source: 'promo', tags: ['a', 'b'], nested: { cents: 5, note: 'tab\there' } };
        const { rows } = await store.query('SELECT $1::jsonb AS metadata, $2::jsonb AS list', [
          metadata,
          JSON.stringify([1, 'two', null]),
        ]);
        expect(rows).toEqual([{ metadata, list: [1, 'two', null] }]);
      });

      it('binds a JavaScript array as a Postgres array, never as JSON', async () => {
        await expect(store.query('SELECT $1::jsonb AS list', [[1, 2]])).rejects.toMatchObject({
          code: '22P02',
        });
      });

      it('round-trips text[] with awkward elements', async () => {
        const tags = ['plain', 'with "quotes"', 'back\\slash', 'comma,brace}{', '', 'NULL', null, 'üñï 😀'];
        const { rows } = await store.query('SELECT $1::text[] AS tags, $2::text[] AS empty', [tags, []]);
        expect(rows).toEqual([{ tags, empty: [] }]);
      });

      it('round-trips bytea', async () => {
        const bytes = new Uint8Array([0, 1, 127, 128, 255]);
        const { rows } = await store.query<{ bytes: Uint8Array }>('SELECT $1::bytea AS bytes', [bytes]);
        expect(rows[0]?.bytes).toBeInstanceOf(Uint8Array);
        expect([...(rows[0]?.bytes ?? [])]).toEqual([...bytes]);
      });

      it('runs several statements when there are no params and returns the last result', async () => {
        const result = await store.query(
          'CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2); SELECT n FROM t',
        );
        expect(result).toEqual({ rows: [{ n: 1 }, { n: 2 }], rowCount: 2 });
      });
    });

    describe('query: rowCount', () => {
      it('counts rows inserted, updated, deleted and selected', async () => {
        await createLedger();
        const insert = await store.query("INSERT INTO ledger VALUES (1, 'a', 1), (2, 'a', 2), (3, 'b', 3)");
        const update = await store.query('UPDATE ledger SET amount = amount + 1 WHERE account = $1', ['a']);
        const missed = await store.query('UPDATE ledger SET amount = 9 WHERE account = $1', ['nobody']);
        const remove = await store.query('DELETE FROM ledger WHERE id = $1', [3]);
        const select = await store.query('SELECT * FROM ledger');
        const ddl = await store.query('CREATE INDEX ledger_account ON ledger (account)');
        expect([insert, update, missed, remove, select, ddl].map((result) => result.rowCount)).toEqual([
          3, 2, 0, 1, 2, 0,
        ]);
      });

      it('counts rows returned by INSERT ... RETURNING', async () => {
        await createLedger();
        const result = await store.query("INSERT INTO ledger VALUES (1, 'a', 1), (2, 'a', 2) RETURNING id");
        expect(result).toEqual({ rows: [{ id: 1 }, { id: 2 }], rowCount: 2 });
      });
    });

    describe('transaction', () => {
      it('commits when the callback resolves and returns its value', async () => {
        await createLedger();
        const value = await store.transaction(async (tx) => {
          await tx.query("INSERT INTO ledger VALUES (1, 'a', 5)");
          await tx.query("INSERT INTO ledger VALUES (2, 'a', -5)");
          return 'posted';
        });
        expect(value).toBe('posted');
        expect((await store.query('SELECT id FROM ledger ORDER BY id')).rows).toEqual([{ id: 1 }, { id: 2 }]);
      });

      it('rolls back when the callback throws, and the error propagates', async () => {
        await createLedger();
        const failure = new Error('settle failed');
        await expect(
          store.transaction(async (tx) => {
            await tx.query("INSERT INTO ledger VALUES (1, 'a', 5)");
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect((await store.query('SELECT * FROM ledger')).rowCount).toBe(0);
      });

      it('refuses to commit after a failed statement, even one the callback caught', async () => {
        await createLedger();
        await expect(
          store.transaction(async (tx) => {
            await tx.query("INSERT INTO ledger VALUES (1, 'a', 5)");
            await tx.query("INSERT INTO ledger VALUES (1, 'a', 5)").catch(() => {});
            await expect(tx.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
          }),
        ).rejects.toMatchObject({ code: '25P02' });
        expect((await store.query('SELECT * FROM ledger')).rowCount).toBe(0);
      });

      it('refuses the executor once the transaction is over', async () => {
        let leaked: SqlExecutor | undefined;
        await store.transaction(async (tx) => {
          leaked = tx;
        });
        await expect(leaked?.query('SELECT 1')).rejects.toThrow(/closed/i);
      });

      it('refuses the store itself inside the callback, which would escape the transaction', async () => {
        await createLedger();
        await expect(
          store.transaction(async (tx) => {
            await tx.query("INSERT INTO ledger VALUES (1, 'a', 5)");
            await store.query("INSERT INTO ledger VALUES (2, 'a', 5)");
          }),
        ).rejects.toThrow(/inside store\.transaction/);
        await expect(store.transaction(() => store.transaction(async () => 1))).rejects.toThrow(
          /inside store\.transaction/,
        );
        expect((await store.query('SELECT * FROM ledger')).rowCount).toBe(0);
      });

      it('runs concurrent transactions without interleaving their read-modify-write', async () => {
        await store.query('CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)');
        await Promise.all(
          Array.from({ length: 20 }, () =>
            store.transaction(async (tx) => {
              const { rows } = await tx.query<{ n: number }>('SELECT n FROM counter FOR UPDATE');
              await sleep(1);
              await tx.query('UPDATE counter SET n = $1', [(rows[0]?.n ?? 0) + 1]);
            }),
          ),
        );
        expect((await store.query('SELECT n FROM counter')).rows).toEqual([{ n: 20 }]);
      });

      it('keeps a store query issued meanwhile out of an open transaction', async () => {
        await createLedger();
        let began: () => void = () => {};
        const transactionBegan = new Promise<void>((resolve) => {
          began = resolve;
        });
        const rolledBack = store.transaction(async (tx) => {
          await tx.query("INSERT INTO ledger VALUES (1, 'inside', 5)");
          began();
          await sleep(20);
          throw new Error('abandon');
        });
        await transactionBegan;
        await store.query("INSERT INTO ledger VALUES (2, 'outside', 5)");
        await expect(rolledBack).rejects.toThrow('abandon');
        expect((await store.query('SELECT account FROM ledger')).rows).toEqual([{ account: 'outside' }]);
      });

      it('rolls back a copy with the rest of the transaction', async () => {
        await createLedger();
        await expect(
          store.transaction(async (tx) => {
            await tx.copyFrom('ledger', ['id', 'account', 'amount'], [[1, 'a', '1.5']]);
            throw new Error('abandon');
          }),
        ).rejects.toThrow('abandon');
        expect((await store.query('SELECT * FROM ledger')).rowCount).toBe(0);
      });
    });

    describe('copyFrom', () => {
      beforeEach(async () => {
        await store.query(`
          CREATE TABLE events (
            id int PRIMARY KEY,
            body text,
            amount numeric(38, 6),
            at timestamptz,
            attributes jsonb,
            tags text[],
            billable bool
          )`);
      });
      const columns = ['id', 'body', 'amount', 'at', 'attributes', 'tags', 'billable'];

      it('round-trips awkward strings exactly', async () => {
        const bodies = [
          'tab\there',
          'line\nbreak',
          'carriage\rreturn\r\n',
          'back\\slash \\N \\. \\t',
          '\\',
          '\\N',
          '',
          null,
          'üñîçødé 日本語 😀 e\u0301',
          '"quoted", {braced}',
        ];
        const at = new Date('2024-01-02T03:04:05.678Z');
        const rows: SqlValue[][] = bodies.map((body, id) => [
          id,
          body,
          '12345678901234567890.123456',
          at,
          { body, depth: { id } },
          [body, 'x\ty', null],
          id % 2 === 0,
        ]);
        expect(await store.copyFrom('events', columns, rows)).toBe(rows.length);
        const { rows: copied } = await store.query('SELECT * FROM events ORDER BY id');
        expect(copied).toEqual(
          bodies.map((body, id) => ({
            id,
            body,
            amount: '12345678901234567890.123456',
            at,
            attributes: { body, depth: { id } },
            tags: [body, 'x\ty', null],
            billable: id % 2 === 0,
          })),
        );
      });

      it('loads many rows across chunk boundaries', async () => {
        const count = 10_000;
        const rows = (function* () {
          for (let id = 0; id < count; id++)
            yield [id, `event ${id}\n`, `${id}.000001`, null, null, null, null];
        })();
        expect(await store.copyFrom('events', columns, rows)).toBe(count);
        const { rows: totals } = await store.query('SELECT count(*) AS n, sum(amount) AS total FROM events');
        expect(totals).toEqual([{ n: String(count), total: '49995000.010000' }]);
      });

      it('copies zero rows', async () => {
        expect(await store.copyFrom('events', columns, [])).toBe(0);
      });

      it('copies into a schema-qualified table', async () => {
        await store.query('CREATE SCHEMA metering; CREATE TABLE metering.raw (id int, "user" text)');
        expect(await store.copyFrom('metering.raw', ['id', 'user'], [[1, 'ann']])).toBe(1);
        expect((await store.query('SELECT * FROM metering.raw')).rows).toEqual([{ id: 1, user: 'ann' }]);
      });

      it('rejects a row with the wrong number of values and copies nothing', async () => {
        await expect(
          store.copyFrom('events', columns, [[1, 'ok', null, null, null, null, null], [2]]),
        ).rejects.toThrow(/row 1 has 1 values for 7 columns/);
        expect((await store.query('SELECT * FROM events')).rowCount).toBe(0);
      });

      it('rejects table and column names that are not plain identifiers', async () => {
        await expect(store.copyFrom('events; DROP TABLE events', ['id'], [])).rejects.toThrow(
          /invalid table name/,
        );
        await expect(store.copyFrom('events', ['Id'], [])).rejects.toThrow(/invalid column name/);
      });
    });

    describe('errors', () => {
      it.each([
        ['unique violation', "INSERT INTO ledger VALUES (1, 'a', 1), (1, 'a', 2)", '23505'],
        ['check violation', "INSERT INTO ledger VALUES (1, 'a', 0)", '23514'],
        ['not-null violation', 'INSERT INTO ledger VALUES (1, null, 1)', '23502'],
        ['undefined table', 'SELECT * FROM no_such_table', '42P01'],
        ['syntax error', 'SELEKT 1', '42601'],
      ])('surfaces a %s with its Postgres code', async (_name, statement, code) => {
        await createLedger();
        await expect(store.query(statement)).rejects.toMatchObject({ code });
        await expect(store.transaction((tx) => tx.query(statement))).rejects.toMatchObject({ code });
      });

      it('surfaces a constraint violation from COPY with its code', async () => {
        await createLedger();
        const rows = [
          [1, 'a', '1'],
          [1, 'a', '2'],
        ];
        await expect(store.copyFrom('ledger', ['id', 'account', 'amount'], rows)).rejects.toMatchObject({
          code: '23505',
        });
      });

      it('names the violated constraint', async () => {
        await createLedger();
        await expect(store.query("INSERT INTO ledger VALUES (1, 'a', 0)")).rejects.toMatchObject({
          constraint: 'ledger_amount_check',
        });
      });
    });

    describe('migrate', () => {
      const initial = {
        '001_create_grants.sql': `
          CREATE TABLE grants (id int PRIMARY KEY, amount numeric(38, 6) NOT NULL);
          CREATE TABLE holds (id int PRIMARY KEY, grant_id int NOT NULL REFERENCES grants);`,
        '002_seed_grants.sql': `INSERT INTO grants VALUES (1, 100), (2, 250.5);`,
      };

      it('applies the files in order into the schema and records them', async () => {
        const dir = await migrationsDir({
          ...initial,
          '003_add_expiry.sql': 'ALTER TABLE grants ADD COLUMN expires_at timestamptz;',
        });
        expect(await migrate(store, { schema: 'credits', dir })).toEqual([
          '001_create_grants',
          '002_seed_grants',
          '003_add_expiry',
        ]);
        expect(
          (await store.query('SELECT id, amount, expires_at FROM credits.grants ORDER BY id')).rows,
        ).toEqual([
          { id: 1, amount: '100.000000', expires_at: null },
          { id: 2, amount: '250.500000', expires_at: null },
        ]);
        const { rows } = await store.query(
          'SELECT name FROM credits.schema_migrations ORDER BY applied_at, name',
        );
        expect(rows.map((row) => row.name)).toEqual([
          '001_create_grants',
          '002_seed_grants',
          '003_add_expiry',
        ]);
        const { rows: inPublic } = await store.query(
          "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        );
        expect(inPublic).toEqual([]);
      });

      it('is idempotent and applies only what is new', async () => {
        const dir = await migrationsDir(initial);
        await migrate(store, { schema: 'credits', dir });
        expect(await migrate(store, { schema: 'credits', dir })).toEqual([]);
        await addMigrations(dir, {
          '003_add_expiry.sql': 'ALTER TABLE grants ADD COLUMN expires_at timestamptz;',
        });
        expect(await migrate(store, { schema: 'credits', dir })).toEqual(['003_add_expiry']);
        expect((await store.query('SELECT count(*) AS n FROM credits.grants')).rows).toEqual([{ n: '2' }]);
      });

      it('keeps each schema to itself', async () => {
        const dir = await migrationsDir(initial);
        expect(await migrate(store, { schema: 'credits', dir })).toHaveLength(2);
        expect(await migrate(store, { schema: 'metering', dir })).toHaveLength(2);
        await store.query('DELETE FROM metering.grants');
        expect((await store.query('SELECT count(*) AS n FROM credits.grants')).rows).toEqual([{ n: '2' }]);
        expect((await store.query('SELECT count(*) AS n FROM metering.schema_migrations')).rows).toEqual([
          { n: '2' },
        ]);
      });

      it('applies each migration once when two runs race', async () => {
        const dir = await migrationsDir(initial);
        const runs = await Promise.all([
          migrate(store, { schema: 'credits', dir }),
          migrate(store, { schema: 'credits', dir }),
        ]);
        expect(runs.flat().sort()).toEqual(['001_create_grants', '002_seed_grants']);
        expect((await store.query('SELECT count(*) AS n FROM credits.grants')).rows).toEqual([{ n: '2' }]);
      });

      it('stops at a failing migration, keeping the ones before it', async () => {
        const dir = await migrationsDir({
          ...initial,
          '003_broken.sql': 'ALTER TABLE grants ADD COLUMN note text; INSERT INTO grants VALUES (1, 1);',
        });
        const failure = await migrate(store, { schema: 'credits', dir }).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(Error);
        expect(String(failure)).toContain('003_broken');
        expect((failure as Error).cause).toMatchObject({ code: '23505' });
        const { rows } = await store.query('SELECT name FROM credits.schema_migrations ORDER BY name');
        expect(rows.map((row) => row.name)).toEqual(['001_create_grants', '002_seed_grants']);
        const { rows: columns } = await store.query(
          "SELECT column_name FROM information_schema.columns WHERE table_schema = 'credits' AND table_name = 'grants' ORDER BY column_name",
        );
        expect(columns.map((column) => column.column_name)).toEqual(['amount', 'id']);
      });

      it('rejects schema names that are not plain identifiers', async () => {
        const dir = await migrationsDir(initial);
        for (const schema of ['Credits', 'credits; DROP SCHEMA public', '1credits', '']) {
          await expect(migrate(store, { schema, dir })).rejects.toThrow(/invalid schema name/);
        }
      });

      it('rejects misnamed or duplicate-numbered files before applying anything', async () => {
        const misnamed = await migrationsDir({ ...initial, '3_add_expiry.sql': 'SELECT 1;' });
        await expect(migrate(store, { schema: 'credits', dir: misnamed })).rejects.toThrow(
          /001_create_ledger\.sql/,
        );
        const duplicate = await migrationsDir({ ...initial, '002_other.sql': 'SELECT 1;' });
        await expect(migrate(store, { schema: 'credits', dir: duplicate })).rejects.toThrow(
          /more than one numbered 002/,
        );
        const { rows } = await store.query("SELECT 1 FROM pg_namespace WHERE nspname = 'credits'");
        expect(rows).toEqual([]);
      });
    });

    describe('ping and close', () => {
      it('pings', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('closes once, however often asked, and refuses work afterwards', async () => {
        const other = await open();
        await other.store.ping();
        await other.store.close();
        await expect(other.store.close()).resolves.toBeUndefined();
        await expect(other.store.ping()).rejects.toThrow();
        await other.cleanup();
      });
    });
  });
}

async function addMigrations(dir: string, files: Record<string, string>): Promise<void> {
  await Promise.all(Object.entries(files).map(([file, sql]) => writeFile(join(dir, file), sql)));
}

/** Drops every schema a test made and recreates an empty `public`. */
async function resetDatabase(store: SqlStore): Promise<void> {
  const { rows } = await store.query<{ name: string }>(
    "SELECT nspname AS name FROM pg_namespace WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'",
  );
  const drops = rows.map((row) => `DROP SCHEMA "${row.name}" CASCADE;`).join('\n');
  await store.query(`${drops}\nCREATE SCHEMA public;`);
}
