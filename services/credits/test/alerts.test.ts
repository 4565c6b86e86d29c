import { describe, expect, it } from 'vitest';
import {
  type AlertState,
  armedState,
  type BalanceAlertKind,
  balanceAlertId,
  calendarMonth,
  evaluatePoolAlerts,
  expiryAlertId,
  type PoolAlertInput,
  type RechargePolicy,
} from '../src/domain/alerts.ts';

const c = (credits: number) => BigInt(credits) * 1_000_000n;

/** Steps a pool through balances, keeping the states, and returns what fired at each step. */
function walk(
  balances: number[],
  settings: { low?: number; recharge?: { threshold: number; target: number; cap?: number } },
  months: string[] = [],
) {
  let states: Partial<Record<BalanceAlertKind, AlertState>> = {};
  const recharge: RechargePolicy | null = settings.recharge
    ? {
        threshold: c(settings.recharge.threshold),
        target: c(settings.recharge.target),
        monthlyCap: settings.recharge.cap === undefined ? null : c(settings.recharge.cap),
      }
    : null;
  return balances.map((available, i) => {
    const input: PoolAlertInput = {
      available: c(available),
      lowBalanceThreshold: settings.low === undefined ? null : c(settings.low),
      recharge,
      states,
      month: months[i] ?? '2026-01',
    };
    const transitions = evaluatePoolAlerts(input);
    states = { ...states };
    for (const t of transitions) states[t.kind] = t.next;
    return transitions.flatMap((t) =>
      t.firing === null
        ? []
        : [
            t.firing.kind === 'recharge'
              ? `recharge#${t.firing.crossing}:${t.firing.amount / 1_000_000n}${t.firing.capped ? ' capped' : ''}`
              : `${t.firing.kind}#${t.firing.crossing}`,
          ],
    );
  });
}

describe('balance alerts', () => {
  it('fires low once per crossing below the threshold and re-arms at or above it', () => {
    expect(walk([100, 30, 19, 10, 5, 20, 15, 25, 19], { low: 20 })).toEqual([
      [],
      [],
      ['low#1'],
      [],
      [],
      [],
      ['low#2'],
      [],
      ['low#3'],
    ]);
  });

  it('fires depleted at zero or below, once, and re-arms above zero', () => {
    expect(walk([10, 0, -5, 0, 1, -1], {})).toEqual([[], ['depleted#1'], [], [], [], ['depleted#2']]);
  });

  it('fires at once for a pool that starts below its threshold', () => {
    expect(walk([5], { low: 20 })).toEqual([['low#1']]);
  });

  it('sends nothing for a pool without a low threshold, and re-arms when the threshold goes', () => {
    expect(walk([5, 1], {})).toEqual([[], []]);
    const fired = evaluatePoolAlerts({
      available: c(5),
      lowBalanceThreshold: null,
      recharge: null,
      states: { low: { ...armedState, fired: true, crossings: 1 } },
      month: '2026-01',
    });
    expect(fired).toEqual([
      { kind: 'low', next: { ...armedState, fired: false, crossings: 1 }, firing: null },
    ]);
  });

  it('asks for target - available on a recharge crossing', () => {
    expect(walk([50, 10, 5, 50, 12], { recharge: { threshold: 20, target: 50 } })).toEqual([
      [],
      ['recharge#1:40'],
      [],
      [],
      ['recharge#2:38'],
    ]);
  });

  it('never lets the requests of a month exceed the cap, and starts the next month afresh', () => {
    const recharge = { threshold: 20, target: 50, cap: 100 };
    const balances = [10, 50, 10, 50, 10, 50, 10, 50, 10];
    const months = [
      '2026-01',
      '2026-01',
      '2026-01',
      '2026-01',
      '2026-01',
      '2026-01',
      '2026-01',
      '2026-02',
      '2026-02',
    ];
    expect(walk(balances, { recharge }, months)).toEqual([
      ['recharge#1:40'],
      [],
      ['recharge#2:40'],
      [],
      ['recharge#3:20 capped'],
      [],
      [], // the cap is spent: nothing this month, and the alert stays armed
      [],
      ['recharge#4:40'],
    ]);
  });

  it('asks again in a new month while still below, once the cap had stopped it', () => {
    const recharge = { threshold: 20, target: 50, cap: 40 };
    expect(walk([10, 50, 10, 10], { recharge }, ['2026-01', '2026-01', '2026-01', '2026-02'])).toEqual([
      ['recharge#1:40'],
      [],
      [],
      ['recharge#2:40'],
    ]);
  });

  it('fires each kind on its own', () => {
    expect(walk([100, 0], { low: 20, recharge: { threshold: 10, target: 60 } })).toEqual([
      [],
      ['low#1', 'depleted#1', 'recharge#1:60'],
    ]);
  });
});

describe('alert ids', () => {
  const pool = { tenant: 't', customerId: 'c', creditType: 'credits', resourceId: '' };

  it('are the same for the same crossing and differ otherwise', () => {
    expect(balanceAlertId(pool, 'low', 1)).toBe(balanceAlertId({ ...pool }, 'low', 1));
    const ids = new Set([
      balanceAlertId(pool, 'low', 1),
      balanceAlertId(pool, 'low', 2),
      balanceAlertId(pool, 'depleted', 1),
      balanceAlertId({ ...pool, resourceId: 'r' }, 'low', 1),
      balanceAlertId({ ...pool, tenant: 'u' }, 'low', 1),
      expiryAlertId('t', 'g1'),
      expiryAlertId('t', 'g2'),
    ]);
    expect(ids.size).toBe(7);
    expect(balanceAlertId(pool, 'low', 1)).toMatch(/^evt_[A-Za-z0-9_-]{32}$/);
  });

  it('use the UTC calendar month', () => {
    expect(calendarMonth(new Date('2026-01-31T23:59:59Z'))).toBe('2026-01');
    expect(calendarMonth(new Date('2026-02-01T00:00:00Z'))).toBe('2026-02');
  });
});
