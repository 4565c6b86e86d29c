/**
 * The ledger converges: any permutation of a set of credit events, with any events delivered
 * again, cut into any batches, leaves the same ledger, holds, balances, overdrafts and grant
 * marks as applying them once, in order, in one batch.
 */
import type { SqlStore } from '@allot/kit/sql';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreditEvent } from '../src/domain/events.ts';
import { applyEvents } from '../src/store/ledger.ts';
import {
  addGrants,
  eventsFor,
  grant,
  type LedgerStore,
  ledgerState,
  ledgerSums,
  openLedgerStore,
  storeKinds,
  uniqueTenant,
} from './support/ledger.ts';

type Fate = 'active' | 'settled' | 'released' | 'expired' | 'expired-then-late-settle';

const amount = fc.bigInt({ min: 0n, max: 400n });
const slice = fc.tuple(fc.constantFrom<string | null>('g1', 'g2', null), amount);
const holdPlan = fc.record({
  amount: fc.bigInt({ min: 1n, max: 500n }),
  fate: fc.constantFrom<Fate>('active', 'settled', 'released', 'expired', 'expired-then-late-settle'),
  debits: fc.array(slice, { maxLength: 3 }),
  released: amount,
  overage: amount,
});
const scenario = fc.record({
  holds: fc.array(holdPlan, { minLength: 1, maxLength: 6 }),
  g1: fc.constantFrom('kept', 'expired', 'voided'),
  g2: fc.constantFrom('kept', 'expired', 'voided'),
  overdraftPaid: fc.option(fc.bigInt({ min: 1n, max: 300n }), { nil: null }),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer S> ? S : never;

/** The events the hot path could have published for a scenario, in the order it decided them. */
function eventsOf(tenant: string, s: Scenario): CreditEvent[] {
  const ev = eventsFor({ tenant });
  const events: CreditEvent[] = [];
  s.holds.forEach((h, i) => {
    const id = `h${i}`;
    events.push(ev.reserved(id, h.amount, { key: `k${i}` }));
    const debits = h.debits as [string | null, bigint][];
    if (h.fate === 'settled') {
      events.push(ev.settled(id, { held: h.amount, debits, released: h.released, overage: h.overage }));
    } else if (h.fate === 'released' || h.fate === 'expired') {
      events.push(ev.released(id, h.amount, h.fate));
    } else if (h.fate === 'expired-then-late-settle') {
      events.push(ev.released(id, h.amount, 'expired'));
      events.push(ev.settled(id, { held: 0n, debits, overage: h.overage, late: true }));
    }
  });
  for (const [grantId, fate] of [
    ['g1', s.g1],
    ['g2', s.g2],
  ] as const) {
    if (fate === 'expired') events.push(ev.grantExpired(grantId, 123n));
    if (fate === 'voided') events.push(ev.grantVoided(grantId, 77n));
  }
  if (s.overdraftPaid !== null) events.push(ev.overdraftSettled('g2', s.overdraftPaid));
  return events;
}

/** A delivery: every event at least once, some twice, in any order, cut into batches. */
const delivery = (count: number) =>
  fc
    .record({
      again: fc.array(fc.nat(count - 1), { maxLength: 5 }),
      cuts: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: count + 5, maxLength: count + 5 }),
    })
    .chain(({ again, cuts }) => {
      const indices = [...Array.from({ length: count }, (_, i) => i), ...again];
      return fc
        .shuffledSubarray(indices, { minLength: indices.length, maxLength: indices.length })
        .map((order) => {
          const batches: number[][] = [];
          let at = 0;
          for (const size of cuts) {
            if (at >= order.length) break;
            batches.push(order.slice(at, at + size));
            at += size;
          }
          if (at < order.length) batches.push(order.slice(at));
          return batches;
        });
    });

describe.each(storeKinds)('ledger convergence on %s', (kind) => {
  let ledger: LedgerStore;
  let store: SqlStore;

  beforeAll(async () => {
    ledger = await openLedgerStore(kind);
    store = ledger.store;
  });
  afterAll(() => ledger.close());

  const setUp = async () => {
    const tenant = uniqueTenant();
    await addGrants(store, [
      grant(tenant, 'g1', 10_000n),
      grant(tenant, 'g2', 10_000n, { category: 'promotional' }),
    ]);
    return tenant;
  };

  it('reaches the same state from any order, duplication and batching of the events', async () => {
    await fc.assert(
      fc.asyncProperty(
        scenario.chain((s) => {
          const count = eventsOf('x', s).length;
          return fc.tuple(fc.constant(s), delivery(count));
        }),
        async ([s, batches]) => {
          const inOrder = await setUp();
          const shuffled = await setUp();
          await store.transaction((tx) => applyEvents(tx, eventsOf(inOrder, s)));
          const events = eventsOf(shuffled, s);
          for (const batch of batches) {
            await store.transaction((tx) =>
              applyEvents(
                tx,
                batch.map((i) => events[i]!),
              ),
            );
          }
          const expected = await ledgerState(store, inOrder);
          expect(await ledgerState(store, shuffled)).toEqual(expected);
          // Balances are the sums of the ledger, exactly.
          for (const row of await ledgerSums(store, shuffled)) expect(row.ledger).toBe(row.remaining);
        },
      ),
      { numRuns: kind === 'postgres' ? 40 : 25 },
    );
  });
});
