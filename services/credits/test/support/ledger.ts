/**
 * Fixtures for the durable path: a migrated credits schema on PostgreSQL or PGlite, credit
 * events built the way the engine names them (`r:<hold>`, `s:<hold>`, ...), and a dump of one
 * tenant's ledger state to compare runs with.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { migrate, type SqlExecutor, type SqlStore } from '@allot/kit/sql';
import { freshPgDatabase, freshPgliteStore } from '@allot/kit/testing';
import type { CreditEvent } from '../../src/domain/events.ts';
import { insertGrant, type NewGrant } from '../../src/store/ledger.ts';

export type StoreKind = 'postgres' | 'pglite';
export const storeKinds: StoreKind[] = ['postgres', 'pglite'];

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface LedgerStore {
  store: SqlStore;
  /** For PostgreSQL, the database's URL (another process can connect to it). */
  url: string | undefined;
  close(): Promise<void>;
}

export async function openLedgerStore(kind: StoreKind): Promise<LedgerStore> {
  if (kind === 'postgres') {
    const database = await freshPgDatabase();
    await migrate(database.store, { schema: 'credits', dir: MIGRATIONS });
    return { store: database.store, url: database.url, close: () => database.drop() };
  }
  const store = await freshPgliteStore();
  await migrate(store, { schema: 'credits', dir: MIGRATIONS });
  return { store, url: undefined, close: () => store.close() };
}

/** Tests share a database and keep apart by tenant. */
export function uniqueTenant(): string {
  return `t_${randomBytes(5).toString('hex')}`;
}

export const T0 = Date.parse('2030-01-01T00:00:00Z');

interface PoolOf {
  tenant: string;
  customerId?: string;
  creditType?: string;
  resourceId?: string;
}

/** Event builders for one pool; `at` defaults to T0 plus a step per event built. */
export function eventsFor(pool: PoolOf) {
  let clock = T0;
  const tick = () => {
    clock += 1000;
    return clock;
  };
  const base = (id: string, at?: number) => ({
    id,
    at: at ?? tick(),
    tenant: pool.tenant,
    customerId: pool.customerId ?? 'c1',
    creditType: pool.creditType ?? 'credits',
    resourceId: pool.resourceId ?? '',
  });
  return {
    reserved(holdId: string, amount: bigint, options: { ttlMs?: number; at?: number; key?: string } = {}) {
      const b = base(`r:${holdId}`, options.at);
      return {
        ...b,
        type: 'hold.reserved',
        holdId,
        amount: amount.toString(),
        expiresAt: b.at + (options.ttlMs ?? 60_000),
        idempotencyKey: options.key ?? null,
        metadata: { feature: 'tokens' },
      } satisfies CreditEvent;
    },
    settled(
      holdId: string,
      options: {
        held: bigint;
        debits: [string | null, bigint][];
        released?: bigint;
        overage?: bigint;
        late?: boolean;
        at?: number;
      },
    ) {
      const debited = options.debits.reduce((sum, [, amount]) => sum + amount, 0n);
      const overage = options.overage ?? 0n;
      return {
        ...base(`s:${holdId}`, options.at),
        type: 'hold.settled',
        holdId,
        held: options.held.toString(),
        requested: (debited + overage).toString(),
        debits: options.debits.map(([grantId, amount]) => ({ grantId, amount: amount.toString() })),
        released: (options.released ?? 0n).toString(),
        overage: overage.toString(),
        late: options.late ?? false,
      } satisfies CreditEvent;
    },
    released(holdId: string, amount: bigint, reason: 'released' | 'expired' = 'released', at?: number) {
      return {
        ...base(`${reason === 'expired' ? 'x' : 'l'}:${holdId}`, at),
        type: 'hold.released',
        holdId,
        amount: amount.toString(),
        reason,
      } satisfies CreditEvent;
    },
    grantExpired(grantId: string, amount: bigint, at?: number) {
      return {
        ...base(`ge:${grantId}`, at),
        type: 'grant.expired',
        grantId,
        amount: amount.toString(),
      } satisfies CreditEvent;
    },
    grantVoided(grantId: string, amount: bigint, at?: number) {
      return {
        ...base(`gv:${grantId}`, at),
        type: 'grant.voided',
        grantId,
        amount: amount.toString(),
      } satisfies CreditEvent;
    },
    overdraftSettled(grantId: string, amount: bigint, at?: number) {
      return {
        ...base(`od:${grantId}`, at),
        type: 'overdraft.settled',
        grantId,
        amount: amount.toString(),
      } satisfies CreditEvent;
    },
  };
}

/** A paid grant of `amount` on the default pool, effective at T0 - 1 day. */
export function grant(
  tenant: string,
  id: string,
  amount: bigint,
  overrides: Partial<NewGrant> = {},
): NewGrant {
  return {
    tenant,
    id,
    customerId: 'c1',
    creditType: 'credits',
    amount,
    category: 'paid',
    effectiveAt: new Date(T0 - 86_400_000),
    ...overrides,
  };
}

export async function addGrants(store: SqlStore, grants: NewGrant[]): Promise<void> {
  for (const g of grants) await store.transaction((tx) => insertGrant(tx, g));
}

/** One tenant's ledger, holds, balances, overdrafts and grant marks, without generated columns. */
export async function ledgerState(sql: SqlExecutor, tenant: string) {
  const rows = async (text: string) => (await sql.query(text, [tenant])).rows;
  return {
    ledger: await rows(
      `SELECT id, customer_id, credit_type, resource_id, kind, amount, grant_id, hold_id, event_id, at
       FROM credits.ledger WHERE tenant = $1 AND kind <> 'grant' ORDER BY id COLLATE "C"`,
    ),
    holds: await rows(
      `SELECT id, customer_id, credit_type, resource_id, reserved, amount, status, expires_at, idempotency_key,
         metadata, settled, overage, outcome, created_at, finished_at
       FROM credits.holds WHERE tenant = $1 ORDER BY id COLLATE "C"`,
    ),
    balances: await rows(
      'SELECT grant_id, remaining FROM credits.grant_balances WHERE tenant = $1 ORDER BY grant_id COLLATE "C"',
    ),
    overdrafts: await rows(
      `SELECT customer_id, credit_type, resource_id, amount FROM credits.pool_overdrafts
       WHERE tenant = $1 ORDER BY customer_id, credit_type, resource_id`,
    ),
    grants: await rows(
      'SELECT id, expired_at, voided_at, retired_amount FROM credits.grants WHERE tenant = $1 ORDER BY id COLLATE "C"',
    ),
  };
}

/** Sum of the balance-moving entries of one grant: must equal its grant_balances row. */
export async function ledgerSums(sql: SqlExecutor, tenant: string) {
  const { rows } = await sql.query<{ grant_id: string; ledger: string; remaining: string }>(
    `SELECT b.grant_id, coalesce(sum(l.amount), 0) AS ledger, b.remaining
     FROM credits.grant_balances b
     LEFT JOIN credits.ledger l ON l.tenant = b.tenant AND l.grant_id = b.grant_id
       AND l.kind IN ('grant', 'debit', 'expiry', 'void', 'adjustment')
     WHERE b.tenant = $1 GROUP BY b.grant_id, b.remaining ORDER BY b.grant_id`,
    [tenant],
  );
  return rows;
}
