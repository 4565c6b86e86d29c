/**
 * Balance alerts as a state machine per (pool, kind), without I/O. Each kind fires once when
 * the pool's available balance crosses into its condition, and re-arms only once the balance is
 * back out of it:
 *
 * | kind     | fires when                  | re-arms when                 |
 * | -------- | --------------------------- | ---------------------------- |
 * | low      | available < low threshold   | available >= low threshold   |
 * | depleted | available <= 0              | available > 0                |
 * | recharge | available < recharge thresh | available >= recharge thresh |
 *
 * A recharge asks for `target - available`, cut so that the requests of one calendar month (UTC)
 * never add up to more than the monthly cap; with nothing left under the cap it does not fire and
 * stays armed, so the next month's first evaluation asks again. Amounts are micro-units.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const balanceAlertKinds = ['low', 'depleted', 'recharge'] as const;
export type BalanceAlertKind = (typeof balanceAlertKinds)[number];

export const alertEventTypes = {
  low: 'credits.balance.low',
  depleted: 'credits.balance.depleted',
  recharge: 'credits.recharge.requested',
  expired: 'credits.grant.expired',
} as const;

export interface AlertState {
  /** Fired and waiting for the balance to come back: it does not fire again until then. */
  fired: boolean;
  /** How many times it fired; the next crossing is number `crossings + 1`. */
  crossings: number;
  /** Recharge only: the month `monthRequested` counts ('2026-01'), or null. */
  month: string | null;
  monthRequested: bigint;
}

export const armedState: AlertState = { fired: false, crossings: 0, month: null, monthRequested: 0n };

export interface RechargePolicy {
  threshold: bigint;
  target: bigint;
  /** Null: no cap. */
  monthlyCap: bigint | null;
}

export interface PoolAlertInput {
  available: bigint;
  lowBalanceThreshold: bigint | null;
  recharge: RechargePolicy | null;
  states: Partial<Record<BalanceAlertKind, AlertState>>;
  /** The calendar month (UTC) of the evaluation, 'YYYY-MM'. */
  month: string;
}

export type AlertFiring =
  | { kind: 'low'; crossing: number; threshold: bigint }
  | { kind: 'depleted'; crossing: number }
  | {
      kind: 'recharge';
      crossing: number;
      amount: bigint;
      /** True when the cap cut the request below `target - available`. */
      capped: boolean;
      policy: RechargePolicy;
      /** Requested this month, this request included. */
      monthRequested: bigint;
    };

export interface AlertTransition {
  kind: BalanceAlertKind;
  next: AlertState;
  firing: AlertFiring | null;
}

/** What each kind does at this balance; only kinds whose state changes are listed. */
export function evaluatePoolAlerts(input: PoolAlertInput): AlertTransition[] {
  const transitions: AlertTransition[] = [];
  const push = (kind: BalanceAlertKind, next: AlertState, firing: AlertFiring | null) => {
    const before = input.states[kind] ?? armedState;
    const changed =
      firing !== null ||
      before.fired !== next.fired ||
      before.month !== next.month ||
      before.monthRequested !== next.monthRequested;
    if (changed) transitions.push({ kind, next, firing });
  };
  const { available } = input;

  const low = input.states.low ?? armedState;
  const lowThreshold = input.lowBalanceThreshold;
  if (lowThreshold === null || available >= lowThreshold) {
    push('low', { ...low, fired: false }, null);
  } else if (!low.fired) {
    const crossing = low.crossings + 1;
    push(
      'low',
      { ...low, fired: true, crossings: crossing },
      { kind: 'low', crossing, threshold: lowThreshold },
    );
  }

  const depleted = input.states.depleted ?? armedState;
  if (available > 0n) {
    push('depleted', { ...depleted, fired: false }, null);
  } else if (!depleted.fired) {
    const crossing = depleted.crossings + 1;
    push('depleted', { ...depleted, fired: true, crossings: crossing }, { kind: 'depleted', crossing });
  }

  const recharge = input.states.recharge ?? armedState;
  const policy = input.recharge;
  // A new month starts from nothing requested.
  const monthRequested = recharge.month === input.month ? recharge.monthRequested : 0n;
  const current: AlertState = { ...recharge, month: input.month, monthRequested };
  if (policy === null || available >= policy.threshold) {
    push('recharge', { ...recharge, fired: false }, null);
  } else if (!recharge.fired) {
    const wanted = policy.target - available;
    const room = policy.monthlyCap === null ? wanted : policy.monthlyCap - monthRequested;
    const amount = wanted < room ? wanted : room;
    if (amount > 0n) {
      const crossing = recharge.crossings + 1;
      const total = monthRequested + amount;
      push(
        'recharge',
        { fired: true, crossings: crossing, month: input.month, monthRequested: total },
        { kind: 'recharge', crossing, amount, capped: amount < wanted, policy, monthRequested: total },
      );
    } else {
      push('recharge', current, null);
    }
  }
  return transitions;
}

/** 'YYYY-MM' in UTC. */
export function calendarMonth(at: Date): string {
  return at.toISOString().slice(0, 7);
}

export interface PoolKey {
  tenant: string;
  customerId: string;
  creditType: string;
  /** '' when the pool has no resource. */
  resourceId: string;
}

/**
 * The event id of one crossing: the same pool, kind and crossing number always give the same id,
 * so an alert published twice (a retry, a redelivery) is recognised downstream as one.
 */
export function balanceAlertId(pool: PoolKey, kind: BalanceAlertKind, crossing: number): string {
  return digestId(
    'alert',
    pool.tenant,
    pool.customerId,
    pool.creditType,
    pool.resourceId,
    kind,
    String(crossing),
  );
}

/** The event id of a grant's expiry alert: one per grant. */
export function expiryAlertId(tenant: string, grantId: string): string {
  return digestId('expired', tenant, grantId);
}

function digestId(...parts: string[]): string {
  return `evt_${createHash('sha256').update(parts.join('\u0000')).digest('base64url').slice(0, 32)}`;
}

// ---------------------------------------------------------------------------------------------
// The events, as published on the EVENTS stream (`events.<type>`) and POSTed to webhooks

/** Exact decimals, like every amount of the API. */
const decimal = z.string().regex(/^-?\d+(\.\d{1,6})?$/);

const envelope = {
  /** Deterministic per crossing (per grant for expiries): receivers dedupe on it. */
  id: z.string(),
  tenant: z.string(),
  customerId: z.string(),
  creditType: z.string(),
  /** Null for the customer-wide pool. */
  resourceId: z.string().nullable(),
  occurredAt: z.iso.datetime({ offset: true }),
};

export const creditAlertEvent = z.discriminatedUnion('type', [
  z.object({
    ...envelope,
    type: z.literal(alertEventTypes.low),
    data: z.object({ available: decimal, threshold: decimal }),
  }),
  z.object({
    ...envelope,
    type: z.literal(alertEventTypes.depleted),
    data: z.object({ available: decimal }),
  }),
  z.object({
    ...envelope,
    type: z.literal(alertEventTypes.expired),
    data: z.object({ grantId: z.string(), amount: decimal }),
  }),
  z.object({
    ...envelope,
    type: z.literal(alertEventTypes.recharge),
    data: z.object({
      /** What to add: target - available, cut to what the monthly cap leaves. */
      amount: decimal,
      available: decimal,
      threshold: decimal,
      target: decimal,
      monthlyCap: decimal.nullable(),
      /** 'YYYY-MM' (UTC) the cap applies to. */
      month: z.string(),
      /** Requested in `month`, this request included. */
      monthRequested: decimal,
      capped: z.boolean(),
    }),
  }),
]);
export type CreditAlertEvent = z.infer<typeof creditAlertEvent>;
