/**
 * What a hold script's reply means: the caller's answer and the events to make durable. Pure,
 * so the credits engine and the gate (whose decision script runs the same Lua) read replies
 * alike.
 */
import { AppError } from '@allot/kit';
import type { PoolRef } from '../store/keys.ts';
import type { CreditEvent } from './events.ts';

export interface HoldReply {
  status: string;
  [field: string]: unknown;
}

export type HoldOutcome = { status: string; [field: string]: unknown };

export type ReserveResult =
  | { status: 'reserved'; holdId: string; amount: bigint; expiresAt: number; available: bigint }
  | { status: 'insufficient'; holdId: string; available: bigint }
  | { status: 'finished'; holdId: string; outcome: HoldOutcome };

export interface SettleResult {
  holdId: string;
  held: bigint;
  requested: bigint;
  settled: bigint;
  released: bigint;
  overage: bigint;
  overdraft: bigint;
  late: boolean;
  debits: { grantId: string | null; amount: bigint }[];
}

export interface ReleaseResult {
  holdId: string;
  released: bigint;
  status: string;
}

interface Listed<T> {
  n: number;
  items: T[] | Record<string, never>;
}

export function listed<T>(list: unknown): T[] {
  const l = list as Listed<T> | undefined;
  return l && l.n > 0 ? (l.items as T[]) : [];
}

/**
 * An event of `pool`. Not an object spread: V8 (Node 20) builds `{ ...base, more }` in a slow
 * path, ten times the cost of the rest of a reserve.
 */
export function holdEvent<T extends object>(pool: PoolRef, id: string, at: number, fields: T) {
  const base = {
    id,
    at,
    tenant: pool.tenant,
    customerId: pool.customerId,
    creditType: pool.creditType,
    resourceId: pool.resourceId ?? '',
  };
  return Object.assign(base, fields);
}

/** Holds a script found past their TTL (its `swept` or `expired` list), as release events. */
export function expiredHoldEvents(pool: PoolRef, list: unknown): CreditEvent[] {
  return listed<{ holdId: string; amount: string; at: string }>(list).map((hold) =>
    holdEvent(pool, `x:${hold.holdId}`, Number(hold.at), {
      type: 'hold.released' as const,
      holdId: hold.holdId,
      amount: hold.amount,
      reason: 'expired' as const,
    }),
  );
}

/**
 * A reserve's reply: the answer, and the event to store before answering (`reserved` only).
 * `fresh` is true when the script made a new hold (so a failed publish must undo it).
 */
export function reserveOutcome(
  request: PoolRef & { amount: bigint; idempotencyKey?: string; metadata?: Record<string, unknown> },
  holdId: string,
  reply: HoldReply,
): { result: ReserveResult; event: CreditEvent | null; fresh: boolean } {
  switch (reply.status) {
    case 'reserved':
    case 'exists': {
      const amount = reply.amount === undefined ? request.amount : BigInt(reply.amount as string);
      if (reply.status === 'exists' && amount !== request.amount) {
        throw new AppError('idempotency_conflict', 'this idempotency key was used for a different amount');
      }
      const expiresAt = Number(reply.expiresAt);
      const event: CreditEvent = holdEvent(
        request,
        `r:${holdId}`,
        reply.status === 'reserved' ? Number(reply.at) : Date.now(),
        {
          type: 'hold.reserved',
          holdId,
          amount: amount.toString(),
          expiresAt,
          idempotencyKey: request.idempotencyKey ?? null,
          metadata: request.metadata ?? null,
        },
      );
      return {
        result: {
          status: 'reserved',
          holdId,
          amount,
          expiresAt,
          available: BigInt((reply.available as string) ?? '0'),
        },
        event,
        fresh: reply.status === 'reserved',
      };
    }
    case 'conflict':
      throw new AppError('idempotency_conflict', 'this idempotency key was used for a different amount');
    case 'insufficient':
      return {
        result: { status: 'insufficient', holdId, available: BigInt(reply.available as string) },
        event: null,
        fresh: false,
      };
    case 'finished':
      return {
        result: { status: 'finished', holdId, outcome: reply.outcome as HoldOutcome },
        event: null,
        fresh: false,
      };
    default:
      throw new Error(`unexpected reserve reply ${reply.status}`);
  }
}

/** A settle's reply: the answer and its events (the settle, and a late settle's own expiry). */
export function settleOutcome(
  pool: PoolRef,
  holdId: string,
  reply: HoldReply,
): { result: SettleResult; events: CreditEvent[] } {
  if (reply.status === 'not_found') throw new AppError('not_found', `reservation ${holdId} not found`);
  if (reply.status === 'released_before') {
    throw new AppError('conflict', `reservation ${holdId} was released; it cannot be settled`);
  }
  const outcome = reply.outcome as Record<string, unknown>;
  const result = settleResult(holdId, outcome);
  const debits = result.debits.map((d) => ({ grantId: d.grantId, amount: d.amount.toString() }));
  const event: CreditEvent = holdEvent(pool, `s:${holdId}`, Number(outcome.at), {
    type: 'hold.settled',
    holdId,
    held: result.held.toString(),
    requested: result.requested.toString(),
    debits,
    released: result.released.toString(),
    overage: result.overage.toString(),
    late: result.late,
  });
  return { result, events: [event, ...expiredHoldEvents(pool, reply.expired)] };
}

/** A release's reply: the answer and its event. */
export function releaseOutcome(
  pool: PoolRef,
  holdId: string,
  reply: HoldReply,
): { result: ReleaseResult; event: CreditEvent } {
  if (reply.status === 'not_found') throw new AppError('not_found', `reservation ${holdId} not found`);
  if (reply.status === 'settled') {
    throw new AppError('conflict', `reservation ${holdId} was settled; it cannot be released`);
  }
  const outcome = reply.outcome as Record<string, string>;
  const amount = BigInt(outcome.amount ?? '0');
  const reason = reply.status === 'expired' ? 'expired' : 'released';
  const event: CreditEvent = holdEvent(
    pool,
    `${reason === 'expired' ? 'x' : 'l'}:${holdId}`,
    Number(outcome.at),
    {
      type: 'hold.released',
      holdId,
      amount: amount.toString(),
      reason,
    },
  );
  return { result: { holdId, released: amount, status: reason }, event };
}

export function settleResult(holdId: string, outcome: Record<string, unknown>): SettleResult {
  const debits = listed<{ grantId: string; amount: string }>(outcome.debits).map((d) => ({
    grantId: d.grantId as string | null,
    amount: BigInt(d.amount),
  }));
  const overdraft = BigInt((outcome.overdraft as string) ?? '0');
  if (overdraft > 0n) debits.push({ grantId: null, amount: overdraft });
  // A replay rebuilt from PostgreSQL carries the total, not the slices.
  const settled =
    typeof outcome.settled === 'string'
      ? BigInt(outcome.settled)
      : debits.reduce((sum, d) => sum + d.amount, 0n);
  return {
    holdId,
    held: BigInt(outcome.held as string),
    requested: BigInt(outcome.requested as string),
    settled,
    released: BigInt(outcome.released as string),
    overage: BigInt(outcome.overage as string),
    overdraft,
    late: outcome.late === true,
    debits,
  };
}
