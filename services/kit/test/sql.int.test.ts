import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { migrate, openSqlStore, PgliteStore, PgStore } from '../src/sql/index.ts';
import { type FreshPgDatabase, freshPgDatabase, freshPgliteStore } from '../src/testing/sql.ts';
import { sqlConformance } from './sql.conformance.ts';

sqlConformance('PgStore', async () => {
  const database = await freshPgDatabase();
  return { store: database.store, cleanup: database.drop };
});

sqlConformance('PgliteStore', async () => {
  const store = await freshPgliteStore();
  return { store, cleanup: () => store.close() };
});

describe('PgStore', () => {
  let database: FreshPgDatabase;
  beforeEach(async () => {
    database = await freshPgDatabase();
  });
  afterEach(() => database.drop());

  it('lets two processes migrate the same schema at once, applying each migration once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'allot-migrations-'));
    try {
      for (let n = 1; n <= 5; n++) {
        const number = String(n).padStart(3, '0');
        await writeFile(
          join(dir, `${number}_step.sql`),
          `CREATE TABLE step_${n} (id int); SELECT pg_sleep(0.01);`,
        );
      }
      const processes = [new PgStore({ url: database.url }), new PgStore({ url: database.url })];
      const runs = await Promise.all(processes.map((store) => migrate(store, { schema: 'credits', dir })));
      await Promise.all(processes.map((store) => store.close()));
      expect(runs.flat().sort()).toEqual(['001_step', '002_step', '003_step', '004_step', '005_step']);
      const { rows } = await database.store.query('SELECT count(*) AS n FROM credits.schema_migrations');
      expect(rows).toEqual([{ n: '5' }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('survives an idle pooled connection being killed, and reconnects', async () => {
    const onConnectionError = vi.fn();
    const store = new PgStore({ url: database.url, max: 1, onConnectionError });
    await store.query('SELECT 1');
    await terminateOtherConnections(database.store);
    await vi.waitFor(() => expect(onConnectionError).toHaveBeenCalled());
    await expect(store.query('SELECT 1 AS ok')).resolves.toMatchObject({ rows: [{ ok: 1 }] });
    await store.close();
  });

  it('fails a transaction whose connection dies, and keeps serving', async () => {
    const store = new PgStore({ url: database.url, max: 1 });
    await expect(
      store.transaction(async (tx) => {
        await tx.query('SELECT 1');
        await terminateOtherConnections(database.store);
        await sleep(50);
        await tx.query('SELECT 1');
      }),
    ).rejects.toThrow();
    await expect(store.query('SELECT 1 AS ok')).resolves.toMatchObject({ rows: [{ ok: 1 }] });
    await store.close();
  });

  it("sets its exact-number parsers on its own pool, not pg's global registry", async () => {
    await database.store.query('SELECT 1');
    const numericArray: number = 1231;
    expect(pg.types.getTypeParser(numericArray)('{1.5}')).toEqual([1.5]);
  });
});

describe('PgliteStore', () => {
  it('serialises concurrent transactions on its single connection', async () => {
    const store = await freshPgliteStore();
    await store.query('CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)');
    // No row lock: only the adapter's serialisation keeps these read-then-write updates from being lost.
    await Promise.all(
      Array.from({ length: 20 }, () =>
        store.transaction(async (tx) => {
          const { rows } = await tx.query<{ n: number }>('SELECT n FROM counter');
          await sleep(1);
          await tx.query('UPDATE counter SET n = $1', [(rows[0]?.n ?? 0) + 1]);
        }),
      ),
    );
    expect((await store.query('SELECT n FROM counter')).rows).toEqual([{ n: 20 }]);
    await store.close();
  });

  it('persists to a data directory', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'allot-pglite-'));
    try {
      const first = await PgliteStore.open({ dataDir });
      await first.query("CREATE TABLE grants (amount numeric); INSERT INTO grants VALUES ('0.000001')");
      await first.close();
      const second = await PgliteStore.open({ dataDir });
      expect((await second.query('SELECT amount FROM grants')).rows).toEqual([{ amount: '0.000001' }]);
      await second.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('openSqlStore', () => {
  it('opens PostgreSQL for a URL and PGlite without one', async () => {
    const database = await freshPgDatabase();
    const postgres = await openSqlStore({ url: database.url, max: 2 });
    expect(postgres.kind).toBe('postgres');
    await postgres.ping();
    await postgres.close();
    await database.drop();
    const embedded = await openSqlStore({});
    expect(embedded.kind).toBe('pglite');
    await embedded.close();
  });

  it.each([
    'postgres//allot:hunter2@db:5432/allot',
    'mysql://allot:hunter2@db:3306/allot',
    'db.internal:5432/allot',
    '',
  ])('rejects the malformed URL %j before connecting, without echoing the password', async (url) => {
    const failure = await openSqlStore({ url }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/^invalid PostgreSQL URL/);
    expect((failure as Error).message).not.toContain('hunter2');
  });
});

async function terminateOtherConnections(admin: PgStore): Promise<void> {
  await admin.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
  );
}
