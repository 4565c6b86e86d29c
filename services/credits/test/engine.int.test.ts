/**
 * The credits hot path, case by case, on both backends: the embedded hot state (clock injected)
 * with the in-process bus, and the real Redis with the real NATS. The same cases must pass on
 * both, so the Lua scripts cannot behave differently on Redis and in the embedded VM. The
 * ledger is a stub here; what the hot path decided is read from Redis and from the events the
 * stream stored.
 */
import { AppError } from '@allot/kit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { burnOrder } from '../src/domain/burn-order.ts';
import type { CreditEvent } from '../src/domain/events.ts';
import { CreditsEngine, type SettleResult } from '../src/engine.ts';
import type { PoolRef } from '../src/store/keys.ts';
import {
  addGrant,
  type BackendKind,
  burnFields,
  dedupeEvents,
  EPOCH_KEY,
  type GrantSpec,
  grantMeta,
  type HotPath,
  inspectPool,
  openHotPath,
} from './support/hot-path.ts';

const pool: PoolRef = { tenant: 't1', customerId: 'c1', creditType: 'credits' };
/** TTLs short enough to wait out on Redis. */
const SHORT_TTL = 300;
const PAST_TTL = 400;

async function rejection(pending: Promise<unknown>): Promise<AppError> {
  const error = await pending.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe.each<BackendKind>(['embedded', 'redis'])('credits hot path on %s', (kind) => {
  let hp: HotPath;
  let engine: CreditsEngine;

  beforeEach(async () => {
    hp = await openHotPath(kind);
    engine = hp.engine;
  });

  afterEach(async () => {
    try {
      // Every message the stream stored parsed as a batch of `creditEvent`s.
      expect(hp.bus.invalid).toEqual([]);
      // A repeated event id always carries the same effect.
      dedupeEvents(hp.bus.events);
    } finally {
      await hp.close();
    }
  });

  const state = (p: PoolRef = pool) => inspectPool(hp.hot, p);
  const eventsOf = <T extends CreditEvent['type']>(type: T, events = hp.bus.events) =>
    [...dedupeEvents(events).values()].filter((e): e is Extract<CreditEvent, { type: T }> => e.type === type);

  async function reserved(
    amount: bigint,
    options: { ttlMs?: number; idempotencyKey?: string; p?: PoolRef } = {},
  ) {
    const result = await engine.reserve({
      ...(options.p ?? pool),
      amount,
      ttlMs: options.ttlMs ?? 60_000,
      ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
    });
    if (result.status !== 'reserved') throw new Error(`expected a hold, got ${result.status}`);
    return result;
  }

  describe('burn order', () => {
    it('burns by priority, earliest expiry, promotional before paid, earliest effective, earliest created; one slice per grant', async () => {
      const t = hp.now();
      const grants: GrantSpec[] = [
        {
          id: 'g-paid-created-later',
          amount: 10n,
          priority: 2,
          expiresAt: t + 7_200_000,
          effectiveAt: t - 1000,
          createdAt: 20,
        },
        { id: 'g-no-expiry', amount: 10n, priority: 2, expiresAt: null, category: 'promotional' },
        {
          id: 'g-promo',
          amount: 10n,
          priority: 2,
          expiresAt: t + 7_200_000,
          category: 'promotional',
          effectiveAt: t - 1000,
        },
        { id: 'g-priority-1', amount: 10n, priority: 1, expiresAt: null },
        {
          id: 'g-effective-later',
          amount: 10n,
          priority: 2,
          expiresAt: t + 7_200_000,
          effectiveAt: t - 1000,
          createdAt: 10,
        },
        { id: 'g-expires-first', amount: 10n, priority: 2, expiresAt: t + 3_600_000 },
        {
          id: 'g-effective-first',
          amount: 10n,
          priority: 2,
          expiresAt: t + 7_200_000,
          effectiveAt: t - 5000,
          createdAt: 30,
        },
      ];
      const expected = [
        'g-priority-1',
        'g-expires-first',
        'g-promo',
        'g-effective-first',
        'g-effective-later',
        'g-paid-created-later',
        'g-no-expiry',
      ];
      // The domain's order and the Lua order are the same rule.
      expect(burnOrder(grants.map(burnFields)).map((g) => g.id)).toEqual(expected);
      for (const grant of grants) await addGrant(engine, pool, grant);

      const hold = await reserved(65n);
      expect(hold.available).toBe(5n);
      const settled = await engine.settle({ ...pool, holdId: hold.holdId, amount: 65n });
      expect(settled.debits).toEqual(
        expected.map((grantId, i) => ({ grantId, amount: i < expected.length - 1 ? 10n : 5n })),
      );
      expect(settled).toMatchObject({ settled: 65n, overage: 0n, overdraft: 0n, released: 0n, late: false });
      const [event] = eventsOf('hold.settled');
      expect(event?.debits).toEqual(
        settled.debits.map((d) => ({ grantId: d.grantId, amount: String(d.amount) })),
      );

      // The next charge starts where this one stopped.
      const next = await reserved(5n);
      const rest = await engine.settle({ ...pool, holdId: next.holdId, amount: 5n });
      expect(rest.debits).toEqual([{ grantId: 'g-no-expiry', amount: 5n }]);
      const s = await state();
      expect([...s.remaining.values()].every((left) => left === 0n)).toBe(true);
    });

    it('does not spend grants that are not yet effective or have expired', async () => {
      const t = hp.now();
      await addGrant(engine, pool, { id: 'g-now', amount: 10n });
      await addGrant(engine, pool, { id: 'g-future', amount: 100n, effectiveAt: t + PAST_TTL, priority: 0 });
      await addGrant(engine, pool, { id: 'g-expired', amount: 100n, expiresAt: t - 1, priority: 0 });
      await addGrant(engine, pool, {
        id: 'g-expiring',
        amount: 20n,
        expiresAt: t + PAST_TTL * 2,
        priority: 1,
      });

      const denied = await engine.reserve({ ...pool, amount: 31n, ttlMs: 60_000 });
      expect(denied).toMatchObject({ status: 'insufficient', available: 30n });
      const hold = await reserved(30n);
      const settled = await engine.settle({ ...pool, holdId: hold.holdId, amount: 25n });
      expect(settled.debits).toEqual([
        { grantId: 'g-expiring', amount: 20n },
        { grantId: 'g-now', amount: 5n },
      ]);

      await hp.advance(PAST_TTL + 50);
      // g-future is effective now (priority 0, burns first); g-expiring is spent anyway.
      const later = await reserved(105n);
      expect(later.available).toBe(0n);
      const again = await engine.settle({ ...pool, holdId: later.holdId, amount: 105n });
      expect(again.debits).toEqual([
        { grantId: 'g-future', amount: 100n },
        { grantId: 'g-now', amount: 5n },
      ]);
      expect((await state()).remaining.get('g-expired')).toBe(100n);
    });
  });

  describe('settle', () => {
    it('settles part of a hold and releases the rest', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const hold = await reserved(60n);
      expect(hold.available).toBe(40n);
      const settled = await engine.settle({ ...pool, holdId: hold.holdId, amount: 25n });
      expect(settled).toEqual<SettleResult>({
        holdId: hold.holdId,
        held: 60n,
        requested: 25n,
        settled: 25n,
        released: 35n,
        overage: 0n,
        overdraft: 0n,
        late: false,
        debits: [{ grantId: 'g', amount: 25n }],
      });
      const s = await state();
      expect(s.held).toBe(0n);
      expect(s.holds.size).toBe(0);
      expect(s.holdIndex.size).toBe(0);
      expect(s.remaining.get('g')).toBe(75n);
      expect(eventsOf('hold.settled')).toMatchObject([
        { holdId: hold.holdId, held: '60', requested: '25', released: '35', overage: '0', late: false },
      ]);
    });

    it('charges above the hold when the balance allows it', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const hold = await reserved(30n);
      const settled = await engine.settle({ ...pool, holdId: hold.holdId, amount: 50n });
      expect(settled).toMatchObject({ held: 30n, settled: 50n, released: 0n, overage: 0n });
      expect((await state()).remaining.get('g')).toBe(50n);
    });

    it('records the part beyond the balance as overage in a hard pool, without touching other holds', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const first = await reserved(30n);
      const other = await reserved(50n);
      const settled = await engine.settle({ ...pool, holdId: first.holdId, amount: 80n });
      expect(settled).toMatchObject({
        held: 30n,
        requested: 80n,
        settled: 50n,
        overage: 30n,
        overdraft: 0n,
        debits: [{ grantId: 'g', amount: 50n }],
      });
      // The other hold still gets everything it reserved.
      const second = await engine.settle({ ...pool, holdId: other.holdId, amount: 50n });
      expect(second).toMatchObject({ settled: 50n, overage: 0n });
      const s = await state();
      expect(s.remaining.get('g')).toBe(0n);
      expect(s.od).toBe(0n);
      expect(eventsOf('hold.settled').map((e) => e.overage)).toEqual(['30', '0']);
    });

    it('records an overdraft in a soft pool, and the next grant pays it first', async () => {
      await addGrant(engine, pool, { id: 'g1', amount: 100n }, 'soft');
      const hold = await reserved(80n);
      const settled = await engine.settle({ ...pool, holdId: hold.holdId, amount: 150n });
      expect(settled).toMatchObject({
        settled: 150n,
        overage: 0n,
        overdraft: 50n,
        debits: [
          { grantId: 'g1', amount: 100n },
          { grantId: null, amount: 50n },
        ],
      });
      expect((await state()).od).toBe(50n);
      // A soft pool reserves beyond its balance, and settles it as more overdraft.
      const beyond = await reserved(10n);
      expect(beyond.available).toBe(-60n);
      expect(await engine.release({ ...pool, holdId: beyond.holdId })).toMatchObject({ released: 10n });

      expect(await addGrant(engine, pool, { id: 'g2', amount: 200n })).toEqual({ overdraftPaid: 50n });
      expect(eventsOf('overdraft.settled')).toMatchObject([{ grantId: 'g2', amount: '50' }]);
      // Added twice (a retry): paid once, the same event again.
      expect(await addGrant(engine, pool, { id: 'g2', amount: 200n })).toEqual({ overdraftPaid: 50n });
      expect(hp.bus.events.filter((e) => e.type === 'overdraft.settled')).toHaveLength(2);
      const s = await state();
      expect(s.od).toBe(0n);
      expect(s.remaining.get('g2')).toBe(150n);
      const next = await reserved(150n);
      expect(next.available).toBe(0n);

      // A grant smaller than the overdraft is taken whole.
      const big = await engine.settle({ ...pool, holdId: next.holdId, amount: 190n });
      expect(big.overdraft).toBe(40n);
      expect(await addGrant(engine, pool, { id: 'g3', amount: 30n })).toEqual({ overdraftPaid: 30n });
      expect((await state()).od).toBe(10n);
      expect((await state()).remaining.get('g3')).toBe(0n);
    });

    it('settles nothing for zero and releases the whole hold', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const hold = await reserved(40n);
      const settled = await engine.settle({ ...pool, holdId: hold.holdId, amount: 0n });
      expect(settled).toMatchObject({ settled: 0n, released: 40n, debits: [] });
      expect(eventsOf('hold.settled')).toMatchObject([{ debits: [] }]);
    });
  });

  describe('release', () => {
    it('returns the whole hold, idempotently', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const hold = await reserved(40n);
      const released = await engine.release({ ...pool, holdId: hold.holdId });
      expect(released).toEqual({ holdId: hold.holdId, released: 40n, status: 'released' });
      expect(await engine.release({ ...pool, holdId: hold.holdId })).toEqual(released);
      const events = hp.bus.events.filter((e) => e.type === 'hold.released');
      expect(events).toHaveLength(2);
      expect(new Set(events.map((e) => e.id)).size).toBe(1);
      expect(events[0]).toMatchObject({ amount: '40', reason: 'released' });
      const s = await state();
      expect(s.held).toBe(0n);
      expect((await reserved(100n)).available).toBe(0n);
    });

    it('refuses to release a settled hold and to settle a released one (409)', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const settledHold = await reserved(10n);
      await engine.settle({ ...pool, holdId: settledHold.holdId, amount: 10n });
      const releaseError = await rejection(engine.release({ ...pool, holdId: settledHold.holdId }));
      expect(releaseError).toMatchObject({ code: 'conflict', status: 409 });

      const releasedHold = await reserved(10n);
      await engine.release({ ...pool, holdId: releasedHold.holdId });
      const settleError = await rejection(
        engine.settle({ ...pool, holdId: releasedHold.holdId, amount: 10n }),
      );
      expect(settleError).toMatchObject({ code: 'conflict', status: 409 });

      const unknown = await rejection(engine.settle({ ...pool, holdId: 'h_unknown', amount: 1n }));
      expect(unknown).toMatchObject({ code: 'not_found', status: 404 });
      expect(await rejection(engine.release({ ...pool, holdId: 'h_unknown' }))).toMatchObject({
        code: 'not_found',
      });
      expect((await state()).remaining.get('g')).toBe(90n);
    });
  });

  describe('hold expiry', () => {
    it('releases a hold at its TTL, once, with reason expired', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const hold = await reserved(70n, { ttlMs: SHORT_TTL });
      // Redis stamps with its own clock, a millisecond or two off this one.
      expect(Math.abs(hold.expiresAt - (hp.now() + SHORT_TTL))).toBeLessThanOrEqual(
        kind === 'redis' ? 50 : 0,
      );
      expect(await engine.sweep(pool)).toBe(0);
      await hp.advance(PAST_TTL);
      expect(await engine.sweep(pool)).toBe(1);
      expect(await engine.sweep(pool)).toBe(0);
      const s = await state();
      expect(s.held).toBe(0n);
      expect(s.holds.size + s.holdIndex.size).toBe(0);
      // A release afterwards says what happened, with the same event.
      expect(await engine.release({ ...pool, holdId: hold.holdId })).toEqual({
        holdId: hold.holdId,
        released: 70n,
        status: 'expired',
      });
      const expired = eventsOf('hold.released');
      expect(expired).toEqual([
        expect.objectContaining({
          id: `x:${hold.holdId}`,
          amount: '70',
          reason: 'expired',
          at: hold.expiresAt,
        }),
      ]);
      expect((await reserved(100n)).available).toBe(0n);
    });

    it('expires holds on the way of any operation on the pool', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const a = await reserved(30n, { ttlMs: SHORT_TTL });
      const b = await reserved(30n, { ttlMs: SHORT_TTL });
      await hp.advance(PAST_TTL);
      const c = await reserved(100n);
      expect(c.available).toBe(0n);
      expect(
        eventsOf('hold.released')
          .map((e) => [e.holdId, e.reason])
          .sort(),
      ).toEqual(
        [
          [a.holdId, 'expired'],
          [b.holdId, 'expired'],
        ].sort(),
      );
    });

    it('records a settle after expiry as a debit when the balance allows it', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const hold = await reserved(30n, { ttlMs: SHORT_TTL });
      await hp.advance(PAST_TTL);
      const settled = await engine.settle({ ...pool, holdId: hold.holdId, amount: 30n });
      expect(settled).toEqual<SettleResult>({
        holdId: hold.holdId,
        held: 0n,
        requested: 30n,
        settled: 30n,
        released: 0n,
        overage: 0n,
        overdraft: 0n,
        late: true,
        debits: [{ grantId: 'g', amount: 30n }],
      });
      expect(await engine.settle({ ...pool, holdId: hold.holdId, amount: 30n })).toEqual(settled);
      expect(eventsOf('hold.released')).toMatchObject([{ holdId: hold.holdId, reason: 'expired' }]);
      expect(eventsOf('hold.settled')).toMatchObject([{ holdId: hold.holdId, late: true, held: '0' }]);
      // Settled now, so it can no longer be released.
      expect(await rejection(engine.release({ ...pool, holdId: hold.holdId }))).toMatchObject({
        code: 'conflict',
      });
    });

    it('records a settle after expiry as overage when the balance is gone, and as both when it is short', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const lateHold = await reserved(30n, { ttlMs: SHORT_TTL });
      const shortHold = await reserved(30n, { ttlMs: SHORT_TTL });
      await hp.advance(PAST_TTL);
      const rest = await reserved(100n);
      const gone = await engine.settle({ ...pool, holdId: lateHold.holdId, amount: 30n });
      expect(gone).toMatchObject({ late: true, settled: 0n, overage: 30n, debits: [] });
      await engine.release({ ...pool, holdId: rest.holdId });
      const other = await reserved(80n);
      const short = await engine.settle({ ...pool, holdId: shortHold.holdId, amount: 30n });
      expect(short).toMatchObject({ late: true, settled: 20n, overage: 10n });
      expect((await engine.settle({ ...pool, holdId: other.holdId, amount: 80n })).settled).toBe(80n);
    });
  });

  describe('grants', () => {
    it('voids a grant: what is left stops being spendable, once', async () => {
      await addGrant(engine, pool, { id: 'g1', amount: 100n, priority: 1 });
      await addGrant(engine, pool, { id: 'g2', amount: 50n, priority: 2 });
      const hold = await reserved(30n);
      await engine.settle({ ...pool, holdId: hold.holdId, amount: 30n });
      const voided = await engine.retireGrant({ ...pool, grantId: 'g1', kind: 'voided' });
      expect(voided).toEqual({ status: 'voided', amount: 70n });
      expect(await engine.retireGrant({ ...pool, grantId: 'g1', kind: 'voided' })).toEqual(voided);
      // Expiring it afterwards reports the void.
      expect(await engine.retireGrant({ ...pool, grantId: 'g1', kind: 'expired' })).toEqual(voided);
      expect(eventsOf('grant.voided')).toMatchObject([{ id: 'gv:g1', grantId: 'g1', amount: '70' }]);
      expect(eventsOf('grant.expired')).toEqual([]);
      expect(await engine.reserve({ ...pool, amount: 51n, ttlMs: 1000 })).toMatchObject({
        status: 'insufficient',
        available: 50n,
      });
      // Adding it again does not bring it back.
      await addGrant(engine, pool, { id: 'g1', amount: 100n, priority: 1 });
      expect((await state()).remaining.has('g1')).toBe(false);
      expect(await rejection(engine.retireGrant({ ...pool, grantId: 'nope', kind: 'voided' }))).toMatchObject(
        {
          code: 'not_found',
        },
      );
    });

    it('expires a grant only once it is due, with the amount left', async () => {
      const t = hp.now();
      await addGrant(engine, pool, { id: 'g-exp', amount: 100n, expiresAt: t + PAST_TTL, priority: 1 });
      await addGrant(engine, pool, { id: 'g-forever', amount: 10n, priority: 2 });
      const hold = await reserved(40n);
      await engine.settle({ ...pool, holdId: hold.holdId, amount: 40n });
      expect(await engine.retireGrant({ ...pool, grantId: 'g-exp', kind: 'expired' })).toEqual({
        status: 'not_due',
        amount: 0n,
      });
      expect(await engine.retireGrant({ ...pool, grantId: 'g-forever', kind: 'expired' })).toMatchObject({
        status: 'not_due',
      });
      await hp.advance(PAST_TTL + 50);
      // Past its expiry it is not spendable, retired or not.
      expect(await engine.reserve({ ...pool, amount: 11n, ttlMs: 1000 })).toMatchObject({ available: 10n });
      const expired = await engine.retireGrant({ ...pool, grantId: 'g-exp', kind: 'expired' });
      expect(expired).toEqual({ status: 'expired', amount: 60n });
      expect(await engine.retireGrant({ ...pool, grantId: 'g-exp', kind: 'expired' })).toEqual(expired);
      expect(await engine.retireGrant({ ...pool, grantId: 'g-exp', kind: 'voided' })).toEqual(expired);
      expect(eventsOf('grant.expired')).toMatchObject([{ id: 'ge:g-exp', grantId: 'g-exp', amount: '60' }]);
      expect(eventsOf('grant.voided')).toEqual([]);
    });

    it('takes held credits with a voided grant: the hold then settles as overage', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const hold = await reserved(60n);
      expect(await engine.retireGrant({ ...pool, grantId: 'g', kind: 'voided' })).toEqual({
        status: 'voided',
        amount: 100n,
      });
      const settled = await engine.settle({ ...pool, holdId: hold.holdId, amount: 60n });
      expect(settled).toMatchObject({ settled: 0n, overage: 60n });
      expect((await state()).held).toBe(0n);
    });
  });

  describe('idempotency', () => {
    it('a reserve retried with the same key returns the same hold and holds once', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const first = await reserved(40n, { idempotencyKey: 'k1' });
      expect(first.holdId).toBe(CreditsEngine.holdIdFor(pool, 'k1'));
      const again = await reserved(40n, { idempotencyKey: 'k1' });
      expect(again).toEqual(first);
      const s = await state();
      expect(s.held).toBe(40n);
      expect(s.holds.size).toBe(1);

      const conflict = await rejection(
        engine.reserve({ ...pool, amount: 41n, ttlMs: 60_000, idempotencyKey: 'k1' }),
      );
      expect(conflict).toMatchObject({ code: 'idempotency_conflict', status: 409 });
      expect((await state()).held).toBe(40n);

      const settled = await engine.settle({ ...pool, holdId: first.holdId, amount: 10n });
      expect(
        await engine.reserve({ ...pool, amount: 40n, ttlMs: 60_000, idempotencyKey: 'k1' }),
      ).toMatchObject({
        status: 'finished',
        holdId: first.holdId,
        outcome: { status: 'settled', requested: '10' },
      });
      expect((await state()).remaining.get('g')).toBe(100n - settled.settled);
      const reserves = hp.bus.events.filter((e) => e.type === 'hold.reserved');
      expect(new Set(reserves.map((e) => e.id))).toEqual(new Set([`r:${first.holdId}`]));
    });

    it('keeps the same idempotency key on two pools apart', async () => {
      const gpu: PoolRef = { ...pool, creditType: 'gpu-minutes' };
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      await addGrant(engine, gpu, { id: 'g-gpu', amount: 100n });
      const a = await reserved(10n, { idempotencyKey: 'same' });
      const b = await reserved(20n, { idempotencyKey: 'same', p: gpu });
      expect(b.holdId).not.toBe(a.holdId);
      expect(await engine.settle({ ...pool, holdId: a.holdId, amount: 10n })).toMatchObject({ settled: 10n });
      expect(await engine.settle({ ...gpu, holdId: b.holdId, amount: 20n })).toMatchObject({
        settled: 20n,
        debits: [{ grantId: 'g-gpu', amount: 20n }],
      });
      expect((await state(gpu)).held).toBe(0n);
      expect(new Set(dedupeEvents(hp.bus.events).keys())).toContain(`s:${b.holdId}`);
    });

    it('a settle retried returns the identical result and publishes the same event', async () => {
      await addGrant(engine, pool, { id: 'g1', amount: 30n, priority: 1 });
      await addGrant(engine, pool, { id: 'g2', amount: 100n, priority: 2 });
      const hold = await reserved(50n);
      const first = await engine.settle({ ...pool, holdId: hold.holdId, amount: 45n });
      // A retry carries the same amount; whatever it carries, the first answer stands.
      const again = await engine.settle({ ...pool, holdId: hold.holdId, amount: 45n });
      const different = await engine.settle({ ...pool, holdId: hold.holdId, amount: 1n });
      expect(again).toEqual(first);
      expect(different).toEqual(first);
      const settles = hp.bus.events.filter((e) => e.type === 'hold.settled');
      expect(settles).toHaveLength(3);
      expect(settles[1]).toEqual(settles[0]);
      expect(settles[2]).toEqual(settles[0]);
      const s = await state();
      expect(s.remaining.get('g1')).toBe(0n);
      expect(s.remaining.get('g2')).toBe(85n);
    });
  });

  describe('groups', () => {
    /** One hold of 20, then a burst: what each call answers, with pool-specific ids replaced. */
    async function burst(p: PoolRef, together: boolean) {
      await addGrant(engine, p, { id: 'g', amount: 100n });
      const first = await reserved(20n, { p });
      const calls: (() => Promise<unknown>)[] = [
        () => engine.reserve({ ...p, amount: 30n, ttlMs: 60_000, idempotencyKey: 'k1' }),
        () => engine.reserve({ ...p, amount: 30n, ttlMs: 60_000, idempotencyKey: 'k2' }),
        () => engine.settle({ ...p, holdId: first.holdId, amount: 10n }),
        () => engine.reserve({ ...p, amount: 50n, ttlMs: 60_000, idempotencyKey: 'k3' }),
        () => engine.reserve({ ...p, amount: 30n, ttlMs: 60_000, idempotencyKey: 'k1' }),
        () => engine.reserve({ ...p, amount: 25n, ttlMs: 60_000 }),
        () => engine.release({ ...p, holdId: first.holdId }).catch((e: unknown) => (e as AppError).code),
        () => engine.settle({ ...p, holdId: first.holdId, amount: 10n }),
      ];
      const run = vi.spyOn(hp.hot, 'run');
      const answers: unknown[] = [];
      if (together) answers.push(...(await Promise.all(calls.map((call) => call()))));
      else for (const call of calls) answers.push(await call());
      const scripts = run.mock.calls.length;
      run.mockRestore();
      const ids = new Map<string, string>();
      // Hold ids differ per pool, and on Redis the clock moves between calls made one by one.
      const anonymous = JSON.stringify(answers, (key, value: unknown) => {
        if (key === 'expiresAt') return undefined;
        if (typeof value === 'bigint') return value.toString();
        if (typeof value === 'string' && value.startsWith('h_')) {
          if (!ids.has(value)) ids.set(value, `hold${ids.size}`);
          return ids.get(value);
        }
        return value;
      });
      const s = await state(p);
      return { answers: JSON.parse(anonymous) as unknown[], scripts, held: s.held, remaining: s.remaining };
    }

    it('runs a burst of calls on one pool as one script, each answered as if it ran alone', async () => {
      const alone = await burst({ ...pool, customerId: 'one-by-one' }, false);
      const together = await burst({ ...pool, customerId: 'together' }, true);
      expect(alone.scripts).toBe(8);
      expect(together.scripts).toBe(1);
      expect(together.answers).toEqual(alone.answers);
      expect(together.held).toBe(alone.held);
      expect(together.remaining).toEqual(alone.remaining);
      expect(together.answers).toMatchObject([
        { status: 'reserved', amount: '30', available: '50' },
        { status: 'reserved', amount: '30', available: '20' },
        { settled: '10', released: '10', overage: '0' },
        { status: 'insufficient', available: '30' },
        { status: 'reserved', amount: '30', holdId: (together.answers[0] as { holdId: string }).holdId },
        { status: 'reserved', amount: '25', available: '5' },
        'conflict',
        { settled: '10', released: '10' },
      ]);
      // 20 + 30 + 30 + 25 reserved, 20 of it settled for 10 (the replay charges nothing more).
      expect(together.held).toBe(85n);
      expect(together.remaining.get('g')).toBe(90n);
    });

    it('keeps pools apart: calls on two pools in one turn run as two scripts', async () => {
      const other: PoolRef = { ...pool, creditType: 'gpu-minutes' };
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      await addGrant(engine, other, { id: 'g2', amount: 5n });
      const run = vi.spyOn(hp.hot, 'run');
      const [a, b] = await Promise.all([
        engine.reserve({ ...pool, amount: 60n, ttlMs: 60_000 }),
        engine.reserve({ ...other, amount: 60n, ttlMs: 60_000 }),
      ]);
      expect(run.mock.calls.length).toBe(2);
      run.mockRestore();
      expect(a).toMatchObject({ status: 'reserved', available: 40n });
      expect(b).toMatchObject({ status: 'insufficient', available: 5n });
    });
  });

  describe('publication', () => {
    it('undoes a reserve whose events could not be stored; a retry then succeeds', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      hp.bus.fault('fail');
      const failed = await rejection(
        engine.reserve({ ...pool, amount: 60n, ttlMs: 60_000, idempotencyKey: 'k' }),
      );
      expect(failed).toMatchObject({ code: 'unavailable', status: 503 });
      const s = await state();
      expect(s.held).toBe(0n);
      expect(s.holds.size + s.holdIndex.size).toBe(0);
      expect(hp.bus.events.filter((e) => e.type === 'hold.reserved')).toEqual([]);

      const retry = await reserved(60n, { idempotencyKey: 'k' });
      expect(retry.holdId).toBe(CreditsEngine.holdIdFor(pool, 'k'));
      expect(retry.available).toBe(40n);
      expect((await state()).held).toBe(60n);
      expect(eventsOf('hold.reserved')).toMatchObject([
        { holdId: retry.holdId, amount: '60', idempotencyKey: 'k' },
      ]);
    });

    it('keeps an undone reserve bound to its amount, since its event may have reached the stream', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      // Stored, but the acknowledgement never came: the caller hears 503 and Redis undoes the hold.
      hp.bus.fault('lost-ack');
      expect(
        await rejection(engine.reserve({ ...pool, amount: 30n, ttlMs: 60_000, idempotencyKey: 'k' })),
      ).toMatchObject({
        code: 'unavailable',
      });
      const holdId = CreditsEngine.holdIdFor(pool, 'k');
      expect(hp.bus.events).toMatchObject([{ type: 'hold.reserved', holdId, amount: '30' }]);
      expect((await state()).held).toBe(0n);
      // The undone hold cannot be settled or released...
      expect(await rejection(engine.settle({ ...pool, holdId, amount: 30n }))).toMatchObject({
        code: 'not_found',
      });
      expect(await rejection(engine.release({ ...pool, holdId }))).toMatchObject({ code: 'not_found' });
      // ...and the key cannot be reused for another amount, which the ledger would not know.
      expect(
        await rejection(engine.reserve({ ...pool, amount: 31n, ttlMs: 60_000, idempotencyKey: 'k' })),
      ).toMatchObject({ code: 'idempotency_conflict' });
      const retry = await reserved(30n, { idempotencyKey: 'k' });
      expect(retry).toMatchObject({ holdId, amount: 30n });
      expect(await engine.settle({ ...pool, holdId, amount: 30n })).toMatchObject({ settled: 30n });
    });

    it('reports grant and sweep publications that fail as 503, and their retries converge', async () => {
      await addGrant(engine, pool, { id: 'g1', amount: 100n }, 'soft');
      const hold = await reserved(10n, { ttlMs: SHORT_TTL });
      await engine.settle({ ...pool, holdId: (await reserved(0n)).holdId, amount: 150n });
      hp.bus.fault('fail');
      expect(await rejection(addGrant(engine, pool, { id: 'g2', amount: 100n }))).toMatchObject({
        code: 'unavailable',
      });
      // 150 asked, 90 free beside the 10 held: 60 of overdraft, which g2 pays first.
      expect(await addGrant(engine, pool, { id: 'g2', amount: 100n })).toEqual({ overdraftPaid: 60n });
      hp.bus.fault('fail');
      expect(await rejection(engine.retireGrant({ ...pool, grantId: 'g2', kind: 'voided' }))).toMatchObject({
        code: 'unavailable',
      });
      expect(await engine.retireGrant({ ...pool, grantId: 'g2', kind: 'voided' })).toEqual({
        status: 'voided',
        amount: 40n,
      });
      await hp.advance(PAST_TTL);
      hp.bus.fault('fail');
      expect(await rejection(engine.sweep(pool))).toMatchObject({ code: 'unavailable' });
      // Swept in Redis all the same; the expiry event went with the failed message.
      expect(await engine.sweep(pool)).toBe(0);
      expect(hp.bus.refused.flat()).toContainEqual(expect.objectContaining({ id: `x:${hold.holdId}` }));
      expect(eventsOf('overdraft.settled')).toMatchObject([{ grantId: 'g2', amount: '60' }]);
      expect(eventsOf('grant.voided')).toMatchObject([{ grantId: 'g2', amount: '40' }]);
    });

    it('publishes holds it expired on the way even when it refuses the reserve', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      await reserved(10n, { idempotencyKey: 'k' });
      const lapsed = await reserved(20n, { ttlMs: SHORT_TTL });
      await hp.advance(PAST_TTL);
      expect(
        await rejection(engine.reserve({ ...pool, amount: 11n, ttlMs: 60_000, idempotencyKey: 'k' })),
      ).toMatchObject({ code: 'idempotency_conflict' });
      expect(eventsOf('hold.released')).toMatchObject([{ holdId: lapsed.holdId, reason: 'expired' }]);
    });

    it('a settle whose event could not be stored fails, and its retry publishes the same effect', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const hold = await reserved(60n);
      hp.bus.fault('fail');
      expect(await rejection(engine.settle({ ...pool, holdId: hold.holdId, amount: 50n }))).toMatchObject({
        code: 'unavailable',
      });
      expect(hp.bus.events.filter((e) => e.type === 'hold.settled')).toEqual([]);
      const retry = await engine.settle({ ...pool, holdId: hold.holdId, amount: 50n });
      expect(retry).toMatchObject({ settled: 50n, released: 10n });
      expect(hp.bus.events.filter((e) => e.type === 'hold.settled')).toEqual([
        creditEventMatching(hp.bus.refused.flat(), `s:${hold.holdId}`),
      ]);
      expect((await state()).remaining.get('g')).toBe(50n);
    });

    it('a release whose event could not be stored fails, and its retry publishes it', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const hold = await reserved(60n);
      hp.bus.fault('fail');
      expect(await rejection(engine.release({ ...pool, holdId: hold.holdId }))).toMatchObject({
        code: 'unavailable',
      });
      expect(await engine.release({ ...pool, holdId: hold.holdId })).toMatchObject({ released: 60n });
      expect(eventsOf('hold.released')).toMatchObject([{ holdId: hold.holdId, reason: 'released' }]);
    });

    it('stores in the stream exactly what was acknowledged', async () => {
      await addGrant(engine, pool, { id: 'g', amount: 100n });
      const holds = await Promise.all([1n, 2n, 3n, 4n].map((amount) => reserved(amount)));
      await Promise.all(holds.map((h) => engine.settle({ ...pool, holdId: h.holdId, amount: h.amount })));
      const consumer = await hp.bus.consumer('CREDITS', { durable: 'reader', ackWaitMs: 30_000 });
      const read: CreditEvent[] = [];
      for (;;) {
        const messages = await consumer.fetch({ max: 100, expiresMs: 200 });
        if (messages.length === 0) break;
        for (const message of messages) {
          expect(message.subject).toMatch(/credits\.ev\.0$/);
          read.push(...(JSON.parse(Buffer.from(message.data).toString('utf8')).events as CreditEvent[]));
          await message.ack();
        }
      }
      expect(read).toEqual(hp.bus.events);
      // One tick's operations went out as one message each time (group commit).
      expect(hp.bus.stored.length).toBeLessThan(holds.length * 2);
    });
  });

  describe('rebuild', () => {
    it('loads a customer that is not in the hot state from the ledger snapshot, and honours it', async () => {
      const t = hp.now();
      const c2: PoolRef = { tenant: 't1', customerId: 'c2', creditType: 'credits' };
      const doneOutcome = {
        status: 'settled',
        held: '5',
        requested: '5',
        debits: { n: 1, items: [{ grantId: 'g1', amount: '5' }] },
        overdraft: '0',
        released: '0',
        overage: '0',
        late: false,
        at: String(t - 1000),
      };
      hp.ledger.snapshots.set('t1/c2', {
        pools: [
          {
            creditType: 'credits',
            resourceId: '',
            mode: 'hard',
            overdraft: 0n,
            grants: [
              { id: 'g1', remaining: 50n, meta: grantMeta({ id: 'g1', amount: 100n, priority: 1 }) },
              {
                id: 'g-lapsed',
                remaining: 40n,
                meta: grantMeta({ id: 'g-lapsed', amount: 40n, expiresAt: t - 1 }),
              },
            ],
            retired: [{ id: 'g-void', kind: 'voided', amount: 25n }],
            holds: [
              { id: 'h-active', amount: 20n, expiresAt: t + 60_000 },
              { id: 'h-old', amount: 10n, expiresAt: t - 1 },
            ],
          },
          {
            creditType: 'gpu',
            resourceId: 'a100',
            mode: 'soft',
            overdraft: 30n,
            grants: [],
            retired: [],
            holds: [],
          },
        ],
        done: [{ holdId: 'h-done', outcome: doneOutcome, at: t - 1000 }],
      });

      expect(await engine.reserve({ ...c2, amount: 31n, ttlMs: 60_000 })).toMatchObject({
        status: 'insufficient',
        available: 30n,
      });
      expect(hp.ledger.calls).toEqual(['caughtUp', 'snapshot t1/c2']);
      // The hold that had lapsed was expired on the way, and said so.
      expect(eventsOf('hold.released')).toMatchObject([
        { customerId: 'c2', holdId: 'h-old', amount: '10', reason: 'expired', at: t - 1 },
      ]);
      expect(await engine.reserve({ ...c2, amount: 30n, ttlMs: 60_000 })).toMatchObject({
        status: 'reserved',
      });
      const active = await engine.settle({ ...c2, holdId: 'h-active', amount: 20n });
      expect(active).toMatchObject({ held: 20n, settled: 20n, debits: [{ grantId: 'g1', amount: 20n }] });
      // A finished hold replays its first answer.
      expect(await engine.settle({ ...c2, holdId: 'h-done', amount: 5n })).toEqual<SettleResult>({
        holdId: 'h-done',
        held: 5n,
        requested: 5n,
        settled: 5n,
        released: 0n,
        overage: 0n,
        overdraft: 0n,
        late: false,
        debits: [{ grantId: 'g1', amount: 5n }],
      });
      expect(await engine.retireGrant({ ...c2, grantId: 'g-void', kind: 'voided' })).toEqual({
        status: 'voided',
        amount: 25n,
      });
      // The soft pool's overdraft is paid by its next grant.
      const gpu: PoolRef = { ...c2, creditType: 'gpu', resourceId: 'a100' };
      expect(await addGrant(engine, gpu, { id: 'g-gpu', amount: 100n })).toEqual({ overdraftPaid: 30n });
      expect((await state(gpu)).mode).toBe('soft');
      // Loaded once.
      expect(hp.ledger.calls.filter((c) => c.startsWith('snapshot'))).toHaveLength(1);
    });

    it('keeps a grant whole when the rebuilt overdraft is below zero (a credit)', async () => {
      // The ledger paid off more overdraft than it knows was run up: a settle whose event was
      // lost with Redis had run it up (see the simulation, seed 40821).
      hp.ledger.snapshots.set('t1/c4', {
        pools: [
          {
            creditType: 'credits',
            resourceId: '',
            mode: 'soft',
            overdraft: -30n,
            grants: [],
            retired: [],
            holds: [],
          },
        ],
        done: [],
      });
      const c4: PoolRef = { tenant: 't1', customerId: 'c4', creditType: 'credits' };
      expect(await addGrant(engine, c4, { id: 'g', amount: 100n })).toEqual({ overdraftPaid: 0n });
      const s = await state(c4);
      expect(s.remaining.get('g')).toBe(100n);
      expect(s.od).toBe(-30n);
      expect(eventsOf('overdraft.settled')).toEqual([]);
      // The credit is spendable once, beside the grant.
      expect((await reserved(130n, { p: c4 })).available).toBe(0n);
    });

    it('loads a customer once when many calls find it missing at the same time', async () => {
      const c3: PoolRef = { tenant: 't1', customerId: 'c3', creditType: 'credits' };
      hp.ledger.snapshots.set('t1/c3', {
        pools: [
          {
            creditType: 'credits',
            resourceId: '',
            mode: 'hard',
            overdraft: 0n,
            grants: [{ id: 'g', remaining: 10n, meta: grantMeta({ id: 'g', amount: 10n }) }],
            retired: [],
            holds: [],
          },
        ],
        done: [],
      });
      const results = await Promise.all(
        Array.from({ length: 20 }, () => engine.reserve({ ...c3, amount: 1n, ttlMs: 60_000 })),
      );
      expect(results.filter((r) => r.status === 'reserved')).toHaveLength(10);
      expect(hp.ledger.calls.filter((c) => c.startsWith('snapshot'))).toHaveLength(1);
    });

    it('after the hot state lost its data, waits out the publish bound (twice the timeout) before loading', async () => {
      const fresh = await openHotPath(kind, { freshEpoch: true, publisher: { publishTimeoutMs: 100 } });
      try {
        const started = Date.now();
        const result = await fresh.engine.reserve({ ...pool, amount: 0n, ttlMs: 1000 });
        expect(result.status).toBe('reserved');
        expect(Date.now() - started).toBeGreaterThanOrEqual(650);
        expect(await fresh.hot.call('GET', EPOCH_KEY)).not.toBeNull();
      } finally {
        await fresh.close();
      }
    });
  });
});

function creditEventMatching(events: readonly CreditEvent[], id: string): CreditEvent {
  const event = events.find((e) => e.id === id);
  if (!event) throw new Error(`no event ${id} among ${events.map((e) => e.id).join(', ')}`);
  return event;
}
