/** What `applyEvents` writes for a batch, computed without a database. */
import { describe, expect, it } from 'vitest';
import { MAX_MICROS } from '../src/domain/amount.ts';
import { creditEventProblem, planEvents } from '../src/store/ledger.ts';
import { eventsFor, T0 } from './support/ledger.ts';

const ev = eventsFor({ tenant: 't1' });

describe('planEvents', () => {
  it('derives ledger ids from event ids and leaves out zero amounts', () => {
    const plan = planEvents([
      ev.settled('h1', {
        held: 100n,
        debits: [
          ['g1', 60n],
          ['g2', 0n],
          [null, 10n],
        ],
        released: 30n,
      }),
      ev.released('h2', 0n),
      ev.overdraftSettled('g3', 10n),
    ]);
    expect(plan.ledger.map((e) => [e.id, e.kind, e.amount, e.grantId, e.holdId])).toEqual([
      ['s:h1:debit:0', 'debit', -60n, 'g1', 'h1'],
      ['s:h1:debit:2', 'debit', -10n, null, 'h1'],
      ['s:h1:release', 'release', 30n, null, 'h1'],
      ['od:g3:debit', 'debit', -10n, 'g3', null],
      ['od:g3:repaid', 'adjustment', 10n, null, null],
    ]);
  });

  it('counts an event once however often the batch holds it', () => {
    const settle = ev.settled('h1', { held: 5n, debits: [['g1', 5n]] });
    const plan = planEvents([settle, settle, { ...settle }]);
    expect(plan.events).toBe(1);
    expect(plan.ledger).toHaveLength(1);
  });

  it('orders ledger rows by time then id, whatever the batch order', () => {
    const a = ev.settled('a', { held: 1n, debits: [['g1', 1n]], at: T0 + 2 });
    const b = ev.settled('b', { held: 1n, debits: [['g1', 1n]], at: T0 + 1 });
    const c = ev.settled('c', { held: 1n, debits: [['g1', 1n]], at: T0 + 1 });
    const ids = (events: (typeof a)[]) => planEvents(events).ledger.map((e) => e.id);
    expect(ids([a, c, b])).toEqual(['s:b:debit:0', 's:c:debit:0', 's:a:debit:0']);
    expect(ids([b, a, c])).toEqual(ids([a, c, b]));
  });

  it('merges the events of one hold: reservation fields from the reserve, the highest status wins', () => {
    const reserve = ev.reserved('h1', 100n, { key: 'k' });
    const expiry = ev.released('h1', 100n, 'expired');
    const late = ev.settled('h1', { held: 0n, debits: [['g1', 80n]], late: true });
    for (const order of [
      [reserve, expiry, late],
      [late, expiry, reserve],
      [expiry, late, reserve],
    ]) {
      const [hold] = planEvents(order).holds;
      expect(hold).toMatchObject({
        reserved: true,
        amount: 100n,
        idempotencyKey: 'k',
        createdAt: reserve.at,
        expiresAt: reserve.expiresAt,
        status: 'settled',
        settled: 80n,
        finishedAt: late.at,
      });
    }
    const [placeholder] = planEvents([expiry]).holds;
    expect(placeholder).toMatchObject({
      reserved: false,
      amount: 100n,
      status: 'expired',
      idempotencyKey: null,
    });
  });

  it('marks a grant with its first expiry or void', () => {
    const plan = planEvents([ev.grantExpired('g1', 5n), ev.grantVoided('g1', 0n), ev.grantVoided('g2', 7n)]);
    expect(plan.grantMarks).toMatchObject([
      { grantId: 'g1', amount: 5n, expiredAt: expect.any(Number), voidedAt: expect.any(Number) },
      { grantId: 'g2', amount: 7n, expiredAt: null },
    ]);
  });
});

describe('creditEventProblem', () => {
  it('accepts what the ledger can store', () => {
    expect(creditEventProblem(ev.settled('h', { held: 1n, debits: [['g', MAX_MICROS]] }))).toBeNull();
  });

  it('names negative and oversized amounts, impossible times and NUL characters', () => {
    const settle = ev.settled('h', { held: 1n, debits: [['g', 1n]] });
    expect(creditEventProblem({ ...settle, debits: [{ grantId: 'g', amount: '-1' }] })).toMatch(
      /debits\[0\]\.amount is negative/,
    );
    expect(creditEventProblem({ ...settle, overage: (MAX_MICROS + 1n).toString() })).toMatch(
      /overage is beyond/,
    );
    expect(creditEventProblem({ ...ev.reserved('h', 1n), expiresAt: 9e15 })).toMatch(/expiresAt/);
    expect(creditEventProblem({ ...ev.reserved('h', 1n), metadata: { 'k\u0000': 1 } })).toMatch(/NUL/);
    expect(creditEventProblem({ ...settle, holdId: 'h\u0000' })).toMatch(/NUL/);
  });
});
