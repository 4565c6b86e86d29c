/**
 * The durable path on PostgreSQL and PGlite: `applyEvents` (every event type, idempotency,
 * out-of-order delivery), the synchronous writes, and the reads built on them.
 */
import type { SqlStore } from '@allot/kit/sql';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CreditEvent } from '../src/domain/events.ts';
import {
  applyEvents,
  GrantConflictError,
  InvalidCreditEventError,
  insertGrant,
  upsertCreditType,
  upsertPool,
} from '../src/store/ledger.ts';
import {
  balances,
  customerHotState,
  dueGrantExpiries,
  dueHoldExpiries,
  InvalidCursorError,
  ledgerPage,
  pruneFinishedHolds,
} from '../src/store/queries.ts';
import {
  addGrants,
  eventsFor,
  grant,
  type LedgerStore,
  ledgerState,
  ledgerSums,
  openLedgerStore,
  storeKinds,
  T0,
  uniqueTenant,
} from './support/ledger.ts';

describe.each(storeKinds)('credits ledger on %s', (kind) => {
  let ledger: LedgerStore;
  let store: SqlStore;
  let tenant: string;
  let ev: ReturnType<typeof eventsFor>;

  const apply = (events: CreditEvent[]) => store.transaction((tx) => applyEvents(tx, events));
  const remaining = async (grantId: string) => {
    const { rows } = await store.query<{ remaining: string }>(
      'SELECT remaining FROM credits.grant_balances WHERE tenant = $1 AND grant_id = $2',
      [tenant, grantId],
    );
    return rows[0] ? BigInt(rows[0].remaining) : undefined;
  };
  const overdraft = async () => {
    const { rows } = await store.query<{ amount: string }>(
      'SELECT amount FROM credits.pool_overdrafts WHERE tenant = $1',
      [tenant],
    );
    return rows[0] ? BigInt(rows[0].amount) : 0n;
  };
  const hold = async (holdId: string) =>
    (await store.query('SELECT * FROM credits.holds WHERE tenant = $1 AND id = $2', [tenant, holdId]))
      .rows[0];

  beforeAll(async () => {
    ledger = await openLedgerStore(kind);
    store = ledger.store;
  });
  afterAll(() => ledger.close());
  beforeEach(() => {
    tenant = uniqueTenant();
    ev = eventsFor({ tenant });
  });

  describe('applyEvents', () => {
    it('settles a hold: a debit per slice, the release, the balances and the hold', async () => {
      await addGrants(store, [grant(tenant, 'g1', 1_000n), grant(tenant, 'g2', 1_000n)]);
      const result = await apply([
        ev.reserved('h1', 500n, { key: 'k1' }),
        ev.settled('h1', {
          held: 500n,
          debits: [
            ['g1', 300n],
            ['g2', 100n],
          ],
          released: 100n,
        }),
      ]);
      expect(result).toEqual({ events: 2, ledgerEntries: 3 });
      const state = await ledgerState(store, tenant);
      expect(state.ledger.map((e) => [e.id, e.kind, e.amount, e.grant_id, e.hold_id])).toEqual([
        ['s:h1:debit:0', 'debit', '-300', 'g1', 'h1'],
        ['s:h1:debit:1', 'debit', '-100', 'g2', 'h1'],
        ['s:h1:release', 'release', '100', null, 'h1'],
      ]);
      expect(await remaining('g1')).toBe(700n);
      expect(await remaining('g2')).toBe(900n);
      expect(await hold('h1')).toMatchObject({
        status: 'settled',
        amount: '500',
        settled: '400',
        overage: '0',
        idempotency_key: 'k1',
        metadata: { feature: 'tokens' },
        reserved: true,
        outcome: {
          status: 'settled',
          held: '500',
          requested: '400',
          debits: [
            { grantId: 'g1', amount: '300' },
            { grantId: 'g2', amount: '100' },
          ],
          released: '100',
          overage: '0',
          late: false,
        },
      });
      expect(await ledgerSums(store, tenant)).toEqual([
        { grant_id: 'g1', ledger: '700', remaining: '700' },
        { grant_id: 'g2', ledger: '900', remaining: '900' },
      ]);
    });

    it('changes nothing when the same batch comes again', async () => {
      await addGrants(store, [grant(tenant, 'g1', 1_000n)]);
      const batch = [
        ev.reserved('h1', 200n),
        ev.settled('h1', { held: 200n, debits: [['g1', 150n]], released: 50n }),
        ev.reserved('h2', 100n),
      ];
      await apply(batch);
      const before = await ledgerState(store, tenant);
      expect(await apply(batch)).toEqual({ events: 3, ledgerEntries: 0 });
      expect(await ledgerState(store, tenant)).toEqual(before);
      expect(await remaining('g1')).toBe(850n);
    });

    it('applies copies of an event inside one batch once', async () => {
      await addGrants(store, [grant(tenant, 'g1', 1_000n)]);
      const settle = ev.settled('h1', { held: 200n, debits: [['g1', 200n]] });
      const result = await apply([ev.reserved('h1', 200n), settle, { ...settle }, settle]);
      expect(result).toEqual({ events: 2, ledgerEntries: 1 });
      expect(await remaining('g1')).toBe(800n);
    });

    it('applies overlapping batches once', async () => {
      await addGrants(store, [grant(tenant, 'g1', 10_000n)]);
      const events = Array.from({ length: 10 }, (_, i) =>
        ev.settled(`h${i}`, { held: 100n, debits: [['g1', 100n]] }),
      );
      await apply(events.slice(0, 6));
      await apply(events.slice(3, 8));
      await apply(events.slice(5));
      expect(await remaining('g1')).toBe(9_000n);
      expect((await ledgerState(store, tenant)).ledger).toHaveLength(10);
    });

    it('takes a settle before its reserve, and the reserve fills in the hold without reopening it', async () => {
      await addGrants(store, [grant(tenant, 'g1', 1_000n)]);
      const reserve = ev.reserved('h1', 500n, { key: 'k1', ttlMs: 30_000 });
      const settle = ev.settled('h1', { held: 500n, debits: [['g1', 400n]], released: 100n });
      await apply([settle]);
      expect(await hold('h1')).toMatchObject({
        status: 'settled',
        reserved: false,
        amount: '500',
        idempotency_key: null,
      });
      await apply([reserve]);
      expect(await hold('h1')).toMatchObject({
        status: 'settled',
        reserved: true,
        amount: '500',
        settled: '400',
        idempotency_key: 'k1',
        metadata: { feature: 'tokens' },
        expires_at: new Date(reserve.expiresAt),
        created_at: new Date(reserve.at),
        finished_at: new Date(settle.at),
      });
      expect(await remaining('g1')).toBe(600n);
    });

    it('never reopens a released or expired hold, and a late settle outranks the expiry', async () => {
      await addGrants(store, [grant(tenant, 'g1', 1_000n)]);
      await apply([ev.released('h1', 100n, 'released'), ev.reserved('h1', 100n)]);
      expect(await hold('h1')).toMatchObject({ status: 'released', reserved: true });

      const expiry = ev.released('h2', 300n, 'expired');
      const late = ev.settled('h2', { held: 0n, debits: [['g1', 250n]], late: true });
      await apply([ev.reserved('h2', 300n), late]);
      await apply([expiry]);
      expect(await hold('h2')).toMatchObject({
        status: 'settled',
        settled: '250',
        finished_at: new Date(late.at),
      });
      const other = eventsFor({ tenant, customerId: 'c2' });
      await apply([other.reserved('h3', 300n), other.released('h3', 300n, 'expired')]);
      await apply([other.settled('h3', { held: 0n, debits: [], overage: 40n, late: true })]);
      expect(await hold('h3')).toMatchObject({ status: 'settled', settled: '0', overage: '40' });
      const entries = (await ledgerState(store, tenant)).ledger.map((e) => [e.id, e.kind, e.amount]);
      expect(entries).toEqual([
        ['l:h1:release', 'release', '100'],
        ['s:h2:debit:0', 'debit', '-250'],
        ['s:h3:overage', 'overage', '40'],
        ['x:h2:release', 'release', '300'],
        ['x:h3:release', 'release', '300'],
      ]);
    });

    it('records overage as an entry, never as a debit', async () => {
      await addGrants(store, [grant(tenant, 'g1', 100n)]);
      await apply([
        ev.reserved('h1', 100n),
        ev.settled('h1', { held: 100n, debits: [['g1', 100n]], overage: 30n }),
      ]);
      expect(await remaining('g1')).toBe(0n);
      expect(await overdraft()).toBe(0n);
      expect(await hold('h1')).toMatchObject({ settled: '100', overage: '30' });
      const kinds = (await ledgerState(store, tenant)).ledger.map((e) => [e.kind, e.amount]);
      expect(kinds).toEqual([
        ['debit', '-100'],
        ['overage', '30'],
      ]);
    });

    it('keeps a soft pool overdraft and pays it off from the next grant', async () => {
      await upsertPool(store, { tenant, customerId: 'c1', creditType: 'credits', mode: 'soft' });
      await addGrants(store, [grant(tenant, 'g1', 100n)]);
      await apply([
        ev.reserved('h1', 150n),
        ev.settled('h1', {
          held: 150n,
          debits: [
            ['g1', 100n],
            [null, 50n],
          ],
        }),
      ]);
      expect(await remaining('g1')).toBe(0n);
      expect(await overdraft()).toBe(50n);

      await addGrants(store, [grant(tenant, 'g2', 200n)]);
      const payoff = ev.overdraftSettled('g2', 50n);
      await apply([payoff]);
      await apply([payoff]);
      expect(await remaining('g2')).toBe(150n);
      expect(await overdraft()).toBe(0n);
      const entries = (await ledgerState(store, tenant)).ledger.map((e) => [
        e.id,
        e.kind,
        e.amount,
        e.grant_id,
      ]);
      expect(entries).toEqual([
        ['od:g2:debit', 'debit', '-50', 'g2'],
        ['od:g2:repaid', 'adjustment', '50', null],
        ['s:h1:debit:0', 'debit', '-100', 'g1'],
        ['s:h1:debit:1', 'debit', '-50', null],
      ]);
      // The ledger sums to the balance: grants - overdraft.
      const { rows } = await store.query<{ sum: string }>(
        `SELECT sum(amount) AS sum FROM credits.ledger WHERE tenant = $1
         AND kind IN ('grant', 'debit', 'expiry', 'void', 'adjustment')`,
        [tenant],
      );
      expect(rows[0]?.sum).toBe('150');
    });

    it('expires and voids grants once: entry, balance, marks', async () => {
      await addGrants(store, [grant(tenant, 'g1', 100n), grant(tenant, 'g2', 100n)]);
      await apply([ev.settled('h1', { held: 30n, debits: [['g1', 30n]] })]);
      const expiry = ev.grantExpired('g1', 70n);
      const voiding = ev.grantVoided('g2', 100n);
      await apply([expiry, voiding]);
      await apply([expiry, voiding, ev.grantVoided('g1', 0n, T0 + 999_000)]);
      expect(await remaining('g1')).toBe(0n);
      expect(await remaining('g2')).toBe(0n);
      const state = await ledgerState(store, tenant);
      expect(state.grants).toEqual([
        {
          id: 'g1',
          expired_at: new Date(expiry.at),
          voided_at: new Date(T0 + 999_000),
          retired_amount: '70',
        },
        { id: 'g2', expired_at: null, voided_at: new Date(voiding.at), retired_amount: '100' },
      ]);
      expect(state.ledger.map((e) => [e.id, e.kind, e.amount])).toEqual([
        ['ge:g1:expiry', 'expiry', '-70'],
        ['gv:g2:void', 'void', '-100'],
        ['s:h1:debit:0', 'debit', '-30'],
      ]);
    });

    it('refuses an event the ledger cannot take, and applies nothing of its batch', async () => {
      await addGrants(store, [grant(tenant, 'g1', 100n)]);
      const bad = { ...ev.settled('h1', { held: 10n, debits: [['g1', 10n]] }) };
      bad.debits = [{ grantId: 'g1', amount: '-10' }];
      await expect(apply([ev.reserved('h0', 5n), bad])).rejects.toBeInstanceOf(InvalidCreditEventError);
      const nul = { ...ev.reserved('h2', 5n), metadata: { note: 'a\u0000b' } };
      await expect(apply([nul])).rejects.toThrow(/NUL/);
      expect((await ledgerState(store, tenant)).holds).toEqual([]);
    });

    it.runIf(kind === 'postgres')('applies overlapping batches committed at once exactly once', async () => {
      await addGrants(store, [grant(tenant, 'g1', 1_000_000n), grant(tenant, 'g2', 1_000_000n)]);
      const events = Array.from({ length: 400 }, (_, i) => [
        ev.reserved(`h${i}`, 100n),
        ev.settled(`h${i}`, { held: 100n, debits: [[i % 2 ? 'g1' : 'g2', 60n]], released: 40n }),
      ]).flat();
      const shuffled = [...events].reverse();
      await Promise.all([apply(events), apply(shuffled), apply(events.slice(100, 500)), apply(events)]);
      expect(await remaining('g1')).toBe(1_000_000n - 200n * 60n);
      expect(await remaining('g2')).toBe(1_000_000n - 200n * 60n);
      expect((await ledgerState(store, tenant)).ledger).toHaveLength(800);
    });
  });

  describe('grants, credit types and pools', () => {
    it('inserts a grant with its ledger entry, balance and pool', async () => {
      const { grant: created, created: isNew } = await store.transaction((tx) =>
        insertGrant(tx, {
          ...grant(tenant, 'g1', 2_500_000n, { idempotencyKey: 'k1', resourceId: 'gpu' }),
          category: 'promotional',
          priority: 5,
          expiresAt: new Date(T0 + 86_400_000),
          costBasis: '0.5',
          metadata: { campaign: 'spring' },
        }),
      );
      expect(isNew).toBe(true);
      expect(created).toMatchObject({
        id: 'g1',
        amount: 2_500_000n,
        category: 'promotional',
        priority: 5,
        resourceId: 'gpu',
        costBasis: '0.500000',
        metadata: { campaign: 'spring' },
        idempotencyKey: 'k1',
        expiresAt: new Date(T0 + 86_400_000),
      });
      expect(await remaining('g1')).toBe(2_500_000n);
      const { rows } = await store.query(
        'SELECT id, kind, amount, grant_id FROM credits.ledger WHERE tenant = $1',
        [tenant],
      );
      expect(rows).toEqual([{ id: 'g1:grant', kind: 'grant', amount: '2500000', grant_id: 'g1' }]);
      const pools = await store.query('SELECT mode, resource_id FROM credits.pools WHERE tenant = $1', [
        tenant,
      ]);
      expect(pools.rows).toEqual([{ mode: 'hard', resource_id: 'gpu' }]);
    });

    it('returns the stored grant for a retry and refuses a different grant under the same key or id', async () => {
      const first = grant(tenant, 'g1', 100n, { idempotencyKey: 'k1', costBasis: '1.50' });
      await store.transaction((tx) => insertGrant(tx, first));
      // A retry carries a new generated id and no effectiveAt (defaulted to now): the key decides.
      const { effectiveAt: _ignored, ...withoutTime } = first;
      const retry = await store.transaction((tx) =>
        insertGrant(tx, { ...withoutTime, id: 'g1-retry', costBasis: '1.5' }),
      );
      expect(retry).toMatchObject({ created: false, grant: { id: 'g1', amount: 100n } });
      await expect(
        store.transaction((tx) => insertGrant(tx, { ...first, id: 'g1-other', amount: 200n })),
      ).rejects.toBeInstanceOf(GrantConflictError);
      await expect(
        store.transaction((tx) => insertGrant(tx, { ...first, idempotencyKey: 'k2' })),
      ).rejects.toThrow(/already exists with a different body/);
      // Without a key, the id makes it idempotent.
      const plain = grant(tenant, 'g2', 100n);
      await store.transaction((tx) => insertGrant(tx, plain));
      expect((await store.transaction((tx) => insertGrant(tx, plain))).created).toBe(false);
      await expect(
        store.transaction((tx) => insertGrant(tx, { ...plain, amount: 1n })),
      ).rejects.toBeInstanceOf(GrantConflictError);
      expect(await remaining('g1')).toBe(100n);
      const { rows } = await store.query<{ n: string }>(
        "SELECT count(*) AS n FROM credits.ledger WHERE tenant = $1 AND kind = 'grant'",
        [tenant],
      );
      expect(rows[0]?.n).toBe('2');
    });

    it('upserts credit types and pool settings', async () => {
      await upsertCreditType(store, { tenant, key: 'gpu-minutes', name: 'GPU minutes' });
      const renamed = await upsertCreditType(store, {
        tenant,
        key: 'gpu-minutes',
        name: 'GPU min',
        unit: 'min',
      });
      expect(renamed).toMatchObject({ key: 'gpu-minutes', name: 'GPU min', unit: 'min' });
      const soft = await upsertPool(store, {
        tenant,
        customerId: 'c1',
        creditType: 'credits',
        mode: 'soft',
        rechargeThreshold: 10n,
        rechargeTarget: 100n,
        rechargeMonthlyCap: 1_000n,
        lowBalanceThreshold: 20n,
      });
      expect(soft).toMatchObject({
        mode: 'soft',
        resourceId: '',
        rechargeTarget: 100n,
        lowBalanceThreshold: 20n,
      });
      const reset = await upsertPool(store, { tenant, customerId: 'c1', creditType: 'credits' });
      expect(reset).toMatchObject({ mode: 'hard', rechargeThreshold: null, rechargeTarget: null });
    });
  });

  describe('reads', () => {
    const now = new Date(T0);
    const day = 86_400_000;

    it('lists balances per pool with grants in burn order', async () => {
      await upsertPool(store, { tenant, customerId: 'c1', creditType: 'gpu', mode: 'soft' });
      await addGrants(store, [
        grant(tenant, 'paid-late', 100n, { expiresAt: new Date(T0 + 9 * day) }),
        grant(tenant, 'never', 100n, { expiresAt: null }),
        grant(tenant, 'promo', 100n, { expiresAt: new Date(T0 + 9 * day), category: 'promotional' }),
        grant(tenant, 'soon', 100n, { expiresAt: new Date(T0 + day) }),
        grant(tenant, 'urgent', 100n, { priority: 1 }),
        grant(tenant, 'older', 100n, {
          expiresAt: new Date(T0 + 9 * day),
          effectiveAt: new Date(T0 - 5 * day),
        }),
        grant(tenant, 'future', 100n, { effectiveAt: new Date(T0 + day) }),
        grant(tenant, 'lapsed', 100n, { expiresAt: new Date(T0 - 1) }),
        grant(tenant, 'voided', 100n),
        grant(tenant, 'gpu-1', 10n, { creditType: 'gpu' }),
      ]);
      await apply([
        ev.grantVoided('voided', 100n),
        ev.reserved('h1', 30n),
        ev.settled('h2', { held: 20n, debits: [['urgent', 20n]] }),
      ]);
      const gpu = eventsFor({ tenant, creditType: 'gpu' });
      await apply([
        gpu.settled('h3', {
          held: 25n,
          debits: [
            ['gpu-1', 10n],
            [null, 15n],
          ],
        }),
      ]);

      const pools = await balances(store, tenant, 'c1', { now });
      expect(pools.map((p) => [p.creditType, p.mode, p.remaining, p.held, p.overdraft, p.available])).toEqual(
        [
          ['credits', 'hard', 580n, 30n, 0n, 550n],
          ['gpu', 'soft', 0n, 0n, 15n, -15n],
        ],
      );
      expect(pools[0]?.grants.map((g) => [g.grantId, g.remaining])).toEqual([
        ['urgent', 80n],
        ['soon', 100n],
        ['promo', 100n],
        ['older', 100n],
        ['paid-late', 100n],
        ['never', 100n],
      ]);
      expect(pools[0]?.grants[0]).toMatchObject({ granted: 100n, category: 'paid', priority: 1 });
      expect(await balances(store, tenant, 'nobody')).toEqual([]);
    });

    it('pages the ledger newest first with an opaque cursor', async () => {
      await addGrants(store, [
        grant(tenant, 'g1', 1_000n),
        grant(tenant, 'g2', 1_000n, { creditType: 'gpu' }),
      ]);
      const gpu = eventsFor({ tenant, creditType: 'gpu' });
      for (let i = 0; i < 5; i++) {
        await apply([ev.settled(`a${i}`, { held: 1n, debits: [['g1', 1n]] })]);
        await apply([gpu.settled(`b${i}`, { held: 1n, debits: [['g2', 1n]] })]);
      }
      const ids: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await ledgerPage(store, tenant, 'c1', { limit: 3, cursor });
        ids.push(...page.entries.map((e) => e.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(4);
      expect(ids).toEqual([
        ...Array.from({ length: 5 }, (_, k) => [`s:b${4 - k}:debit:0`, `s:a${4 - k}:debit:0`]).flat(),
        'g2:grant',
        'g1:grant',
      ]);
      const onlyGpu = await ledgerPage(store, tenant, 'c1', { creditType: 'gpu', limit: 10 });
      expect(onlyGpu.entries.map((e) => e.id)).toEqual([
        's:b4:debit:0',
        's:b3:debit:0',
        's:b2:debit:0',
        's:b1:debit:0',
        's:b0:debit:0',
        'g2:grant',
      ]);
      expect(onlyGpu.nextCursor).toBeNull();
      expect(onlyGpu.entries[0]).toMatchObject({ kind: 'debit', amount: -1n, grantId: 'g2', holdId: 'b4' });
      const second = await ledgerPage(store, tenant, 'c1', { creditType: 'gpu', limit: 2 });
      const rest = await ledgerPage(store, tenant, 'c1', {
        creditType: 'gpu',
        limit: 10,
        cursor: second.nextCursor,
      });
      expect(rest.entries.map((e) => e.id)).toEqual(onlyGpu.entries.slice(2).map((e) => e.id));
      await expect(ledgerPage(store, tenant, 'c1', { limit: 3, cursor: 'bogus' })).rejects.toBeInstanceOf(
        InvalidCursorError,
      );
      await expect(ledgerPage(store, tenant, 'c1', { limit: 0 })).rejects.toThrow(RangeError);
    });

    it('gives a rebuild everything it needs for one customer', async () => {
      await upsertPool(store, { tenant, customerId: 'c1', creditType: 'credits', mode: 'soft' });
      await addGrants(store, [
        grant(tenant, 'b', 100n, { priority: 2 }),
        grant(tenant, 'a', 100n, { priority: 1 }),
        grant(tenant, 'spent', 50n),
        grant(tenant, 'spent-expiring', 50n, { expiresAt: new Date(T0 + day) }),
        grant(tenant, 'gone', 100n),
      ]);
      const old = eventsFor({ tenant });
      await apply([
        ev.reserved('active', 40n, { key: 'k-active', ttlMs: 5_000 }),
        ev.reserved('done', 60n, { key: 'k-done' }),
        ev.settled('done', {
          held: 60n,
          debits: [
            ['spent', 50n],
            ['spent-expiring', 50n],
            [null, 5n],
          ],
          released: 0n,
        }),
        ev.released('freed', 10n, 'released'),
        ev.grantVoided('gone', 100n),
        old.released('ancient', 5n, 'expired', T0 - 2 * day),
      ]);
      const state = await customerHotState(store, tenant, 'c1', { now });
      expect(state.pools).toHaveLength(1);
      const [pool] = state.pools;
      expect(pool).toMatchObject({ creditType: 'credits', resourceId: '', mode: 'soft', overdraft: 5n });
      expect(pool?.grants.map((g) => [g.grantId, g.remaining, g.priority])).toEqual([
        ['a', 100n, 1],
        ['b', 100n, 2],
        ['spent-expiring', 0n, 100],
      ]);
      expect(pool?.retired).toEqual([
        { grantId: 'gone', kind: 'voided', amount: 100n, at: expect.any(Date) },
      ]);
      expect(pool?.holds).toEqual([
        { holdId: 'active', amount: 40n, expiresAt: expect.any(Date), idempotencyKey: 'k-active' },
      ]);
      expect(state.finishedHolds.map((h) => [h.holdId, h.status, h.settled, h.overage])).toEqual([
        ['done', 'settled', 105n, 0n],
        ['freed', 'released', null, null],
      ]);
      expect(state.finishedHolds[0]?.outcome).toMatchObject({ status: 'settled', held: '60', late: false });
      expect(state.finishedHolds[1]?.outcome).toEqual({ status: 'released', amount: '10' });
    });

    it('finds grants and holds due to expire, across tenants, earliest first', async () => {
      await addGrants(store, [
        grant(tenant, 'later', 100n, { expiresAt: new Date(T0 - 1_000) }),
        grant(tenant, 'first', 100n, { expiresAt: new Date(T0 - 2_000) }),
        grant(tenant, 'not-yet', 100n, { expiresAt: new Date(T0 + 1_000) }),
        grant(tenant, 'done', 100n, { expiresAt: new Date(T0 - 3_000) }),
      ]);
      await apply([
        ev.grantExpired('done', 100n),
        ev.reserved('due', 10n, { at: T0 - 10_000, ttlMs: 5_000 }),
        ev.reserved('fresh', 10n, { at: T0, ttlMs: 5_000 }),
        ev.reserved('over', 10n, { at: T0 - 10_000, ttlMs: 1_000 }),
        ev.released('over', 10n, 'expired'),
      ]);
      const grants = (await dueGrantExpiries(store, now, 100)).filter((g) => g.tenant === tenant);
      expect(grants.map((g) => [g.grantId, g.remaining])).toEqual([
        ['first', 100n],
        ['later', 100n],
      ]);
      const holds = (await dueHoldExpiries(store, now, 100)).filter((h) => h.tenant === tenant);
      expect(holds).toEqual([
        {
          tenant,
          holdId: 'due',
          customerId: 'c1',
          creditType: 'credits',
          resourceId: '',
          amount: 10n,
          expiresAt: new Date(T0 - 5_000),
        },
      ]);
    });

    it('prunes holds that finished before the cutoff, oldest first, and keeps their ledger entries', async () => {
      await addGrants(store, [grant(tenant, 'g1', 1_000n)]);
      await apply([
        ev.reserved('old-settled', 10n, { at: T0 - 30_000 }),
        ev.settled('old-settled', { held: 10n, debits: [['g1', 10n]], at: T0 - 20_000 }),
        ev.reserved('old-released', 10n, { at: T0 - 30_000 }),
        ev.released('old-released', 10n, 'released', T0 - 19_000),
        ev.reserved('recent', 10n, { at: T0 - 30_000 }),
        ev.released('recent', 10n, 'released', T0 - 1_000),
        ev.reserved('active', 10n, { at: T0 - 30_000, ttlMs: 3_600_000 }),
      ]);
      const before = await ledgerState(store, tenant);
      const mine = async () =>
        (
          await store.query<{ id: string }>('SELECT id FROM credits.holds WHERE tenant = $1 ORDER BY id', [
            tenant,
          ])
        ).rows.map((r) => r.id);
      // Other tenants' old holds may be pruned too: count only this tenant's.
      let pruned = 0;
      while ((await mine()).includes('old-settled') || (await mine()).includes('old-released')) {
        const n = await pruneFinishedHolds(store, new Date(T0 - 10_000), 1);
        expect(n).toBe(1);
        pruned++;
        if (pruned > 1000) throw new Error('pruning made no progress');
      }
      expect(await mine()).toEqual(['active', 'recent']);
      expect((await ledgerState(store, tenant)).ledger).toEqual(before.ledger);
    });
  });
});
