/**
 * The credits ledger's durable path: how many settles per second `applyEvents` takes into
 * PostgreSQL, a batch (one group commit) per operation, next to a raw COPY of the same rows
 * into tables without indexes, in the same run. A settle is one or two debit slices plus a
 * release: two or three ledger rows, a hold row, a balance update per grant touched.
 *
 * It runs in a database of its own (`bench_credits_<pid>_<random>`), created and migrated at
 * the start and dropped at the end; one left behind by an interrupted run is dropped by the
 * next run.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { migrate, PgStore } from '@allot/kit/sql';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { CreditEvent } from '../../../services/credits/src/domain/events.ts';
import { applyEvents, insertGrant, planEvents } from '../../../services/credits/src/store/ledger.ts';
import type { SaturationResult } from '../lib/load.ts';
import type { Row, SuiteContext } from '../lib/suite.ts';

export const name = 'credits-ledger';
export const description =
  'settles reaching PostgreSQL through applyEvents, against raw COPY of the same rows';

const MIGRATIONS = fileURLToPath(new URL('../../../services/credits/migrations', import.meta.url));
const TENANT = 'bench';
const POOLS = 100;
const DATABASE_PREFIX = 'bench_credits_';

interface Case {
  label: string;
  concurrency: number;
  /** Settles per operation. */
  settles: number;
  op: () => Promise<void>;
  /** Label of the COPY case to compare with (same concurrency, same rows per op). */
  baseline?: string;
}

export async function run(ctx: SuiteContext): Promise<void> {
  const database = await createDatabase(ctx.baselines.targets.databaseUrl);
  const store = new PgStore({ url: database.url, max: 4 });
  const raw = new pg.Pool({ connectionString: database.url, max: 4 });
  try {
    await migrate(store, { schema: 'credits', dir: MIGRATIONS });
    await seedGrants(store, POOLS);
    await seedGrants(store, 1, 'hot');
    const events = new SettleStream();
    const copy = await rawCopy(raw, events.settles(1000, POOLS));
    const settles =
      (size: number, pools = POOLS) =>
      () =>
        apply(store, events.settles(size, pools));
    const COPY = 'pg COPY rows of 1000 settles';
    const spread = 'applyEvents 1000 settles, 100 pools';
    const cases: Case[] = [
      // The floor: the rows of one 1000-settle batch, encoded once, COPY'd into tables without indexes.
      { label: COPY, concurrency: 1, settles: 1000, op: copy },
      { label: COPY, concurrency: 2, settles: 1000, op: copy },
      { label: spread, concurrency: 1, settles: 1000, op: settles(1000), baseline: COPY },
      { label: spread, concurrency: 2, settles: 1000, op: settles(1000), baseline: COPY },
      { label: 'applyEvents 500 settles, 100 pools', concurrency: 2, settles: 500, op: settles(500) },
      { label: 'applyEvents 2000 settles, 100 pools', concurrency: 2, settles: 2000, op: settles(2000) },
      {
        label: 'applyEvents 1000 settles, 1 hot pool',
        concurrency: 2,
        settles: 1000,
        op: settles(1000, 0),
        baseline: COPY,
      },
      {
        label: 'applyEvents 500 reserves + 500 settles',
        concurrency: 2,
        settles: 500,
        op: () => apply(store, events.reservesAndSettles(500)),
      },
    ];
    const results: SaturationResult[] = [];
    for (const c of cases) {
      // Every case starts from the seeded grants and a checkpoint, so none pays for the WAL or
      // the table growth of the one before.
      await reset(raw);
      results.push(await ctx.saturation(c.label, c.op, c.concurrency));
    }
    const rows = new Map<string, Row>();
    cases.forEach((c, i) => {
      const result = results[i]!;
      const baseline = c.baseline === undefined ? undefined : rows.get(`${c.baseline}@${result.concurrency}`);
      const row = ctx.report({
        case: c.label,
        result,
        ...(baseline && { baseline }),
        note: settlesNote(cases, results, c.label),
      });
      rows.set(`${c.label}@${result.concurrency}`, row);
    });
  } finally {
    await Promise.allSettled([store.close(), raw.end()]);
    await database.drop();
  }
}

/** One note per case label (the table prints the first only): settles/s at each concurrency. */
function settlesNote(cases: Case[], results: SaturationResult[], label: string): string {
  const parts = cases.flatMap((c, i) => {
    const result = results[i]!;
    if (c.label !== label) return [];
    return [
      `${Math.round(result.opsPerSec * c.settles).toLocaleString('en-US')} settles/s at c=${result.concurrency}`,
    ];
  });
  const size = cases.find((c) => c.label === label)?.settles;
  return `${parts.join(', ')} (an op is a batch of ${size} in one transaction)`;
}

async function reset(pool: pg.Pool): Promise<void> {
  await pool.query(
    'TRUNCATE credits.ledger, credits.holds, credits.pool_overdrafts, copy_ledger, copy_holds',
  );
  // CHECKPOINT needs superuser (or pg_checkpoint): without it, the cases run as they are.
  await pool.query('CHECKPOINT').catch(() => {});
}

async function apply(store: PgStore, events: CreditEvent[]): Promise<void> {
  await store.transaction((tx) => applyEvents(tx, events));
}

/** Grants big enough never to run out: two per pool, customers `c0..`, or one hot pool `hot`. */
async function seedGrants(store: PgStore, pools: number, customer = 'c'): Promise<void> {
  for (let p = 0; p < pools; p++) {
    const customerId = pools === 1 ? customer : `${customer}${p}`;
    for (const slot of [0, 1]) {
      await store.transaction((tx) =>
        insertGrant(tx, {
          tenant: TENANT,
          id: `${customerId}-g${slot}`,
          customerId,
          creditType: 'credits',
          amount: 2n ** 52n,
          category: slot === 0 ? 'promotional' : 'paid',
        }),
      );
    }
  }
}

/** Settle events with ids unique over the run; `pools` 0 means the one hot pool. */
class SettleStream {
  #next = 0;
  readonly #run = randomBytes(3).toString('hex');
  readonly #reserved: { holdId: string; customerId: string }[] = [];

  settles(count: number, pools: number): CreditEvent[] {
    return Array.from({ length: count }, () => {
      const n = this.#next++;
      const customerId = pools === 0 ? 'hot' : `c${n % pools}`;
      return this.#settle(`h${this.#run}-${n}`, customerId, n);
    });
  }

  /** Reserves of new holds, and settles of holds reserved by earlier batches: the steady state. */
  reservesAndSettles(count: number): CreditEvent[] {
    const events: CreditEvent[] = [];
    for (let i = 0; i < count; i++) {
      const n = this.#next++;
      const customerId = `c${n % POOLS}`;
      const holdId = `h${this.#run}-${n}`;
      events.push({
        ...this.#base(`r:${holdId}`, customerId),
        type: 'hold.reserved',
        holdId,
        amount: '1000',
        expiresAt: Date.now() + 60_000,
        idempotencyKey: `k${n}`,
        metadata: { feature: 'tokens', model: 'small' },
      });
      this.#reserved.push({ holdId, customerId });
    }
    for (const hold of this.#reserved.splice(0, count)) {
      events.push(this.#settle(hold.holdId, hold.customerId, this.#next++));
    }
    return events;
  }

  #settle(holdId: string, customerId: string, n: number): CreditEvent {
    const debits =
      n % 2 === 0
        ? [
            { grantId: `${customerId}-g0`, amount: '300' },
            { grantId: `${customerId}-g1`, amount: '400' },
          ]
        : [{ grantId: `${customerId}-g0`, amount: '700' }];
    return {
      ...this.#base(`s:${holdId}`, customerId),
      type: 'hold.settled',
      holdId,
      held: '1000',
      requested: '700',
      debits,
      released: '300',
      overage: '0',
      late: false,
    };
  }

  #base(id: string, customerId: string) {
    return { id, at: Date.now(), tenant: TENANT, customerId, creditType: 'credits', resourceId: '' };
  }
}

/** COPY of the ledger and hold rows `events` produce, encoded once, into copies of the tables without indexes. */
async function rawCopy(pool: pg.Pool, events: CreditEvent[]): Promise<() => Promise<void>> {
  await pool.query(`
    CREATE TABLE copy_ledger (LIKE credits.ledger INCLUDING DEFAULTS INCLUDING IDENTITY);
    CREATE TABLE copy_holds (LIKE credits.holds INCLUDING DEFAULTS)`);
  const plan = planEvents(events);
  const iso = (ms: number) => new Date(ms).toISOString();
  const text = (value: string | null) => value ?? '\\N';
  const ledger = Buffer.from(
    plan.ledger
      .map((e) =>
        [
          e.tenant,
          e.id,
          e.customerId,
          e.creditType,
          e.resourceId,
          e.kind,
          e.amount.toString(),
          text(e.grantId),
          text(e.holdId),
          e.eventId,
          iso(e.at),
        ].join('\t'),
      )
      .join('\n')
      .concat('\n'),
  );
  const holds = Buffer.from(
    plan.holds
      .map((h) =>
        [
          h.tenant,
          h.id,
          h.customerId,
          h.creditType,
          h.resourceId,
          String(h.reserved),
          h.amount.toString(),
          h.status,
          iso(h.expiresAt),
          iso(h.createdAt),
          text(h.settled?.toString() ?? null),
          text(h.overage?.toString() ?? null),
          text(h.finishedAt === null ? null : iso(h.finishedAt)),
          text(h.outcome === null ? null : JSON.stringify(h.outcome).replaceAll('\\', '\\\\')),
        ].join('\t'),
      )
      .join('\n')
      .concat('\n'),
  );
  const ledgerCopy =
    'COPY copy_ledger (tenant, id, customer_id, credit_type, resource_id, kind, amount, grant_id, hold_id, event_id, at) FROM STDIN';
  const holdsCopy =
    'COPY copy_holds (tenant, id, customer_id, credit_type, resource_id, reserved, amount, status, expires_at, created_at, settled, overage, finished_at, outcome) FROM STDIN';
  return async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await pipeline(Readable.from([ledger]), client.query(copyFrom(ledgerCopy)));
      await pipeline(Readable.from([holds]), client.query(copyFrom(holdsCopy)));
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  };
}

/** A fresh database on the benchmark server; also drops those of earlier runs that did not get to. */
async function createDatabase(serverUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const onServer = async (statement: string) => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    try {
      return await client.query<{ datname: string }>(statement);
    } finally {
      await client.end();
    }
  };
  const { rows } = await onServer(`SELECT datname FROM pg_database WHERE datname LIKE '${DATABASE_PREFIX}%'`);
  for (const { datname } of rows) {
    const pid = Number(datname.slice(DATABASE_PREFIX.length).split('_')[0]);
    if (!isRunning(pid)) await onServer(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
  }
  const name = `${DATABASE_PREFIX}${process.pid}_${randomBytes(3).toString('hex')}`;
  await onServer(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    drop: async () => {
      await onServer(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
