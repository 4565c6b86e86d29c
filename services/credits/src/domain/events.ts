import { z } from 'zod';

/**
 * What the hot path decided, on its way to PostgreSQL. Redis decides (per grant, exactly);
 * each event is appended to the CREDITS JetStream stream before the caller is answered, and
 * the credits worker applies it to the ledger once, keyed by `id`. Amounts are integer
 * micro-units as strings. Events of one customer may arrive out of order across
 * publishers: every effect is an insert keyed by id or a monotonic state change, so the
 * ledger converges whatever the order.
 */
const micros = z.string().regex(/^-?\d+$/);
const id = z.string().min(1).max(256);

const base = {
  /** Unique per effect; the worker applies an event id at most once. */
  id,
  /** When Redis applied it (epoch ms). Ledger entries carry this time. */
  at: z.number().int(),
  tenant: id,
  customerId: id,
  creditType: id,
  /** '' when the pool has no resource. */
  resourceId: z.string().max(128),
};

/** One slice of a charge: `amount` taken from `grantId`, or, with grantId null, a soft pool's overdraft. */
export const debitSlice = z.object({ grantId: id.nullable(), amount: micros });

export const holdReserved = z.object({
  ...base,
  type: z.literal('hold.reserved'),
  holdId: id,
  amount: micros,
  expiresAt: z.number().int(),
  idempotencyKey: z.string().max(256).nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
});

export const holdSettled = z.object({
  ...base,
  type: z.literal('hold.settled'),
  holdId: id,
  /** What the hold still held when settled (0 when it had expired first: a late settle). */
  held: micros,
  /** The actual amount asked for. */
  requested: micros,
  /** Debited from grants, per grant in burn order. */
  debits: z.array(debitSlice),
  /** Held but not used, returned to the pool. */
  released: micros,
  /** Asked for but beyond what a hard pool had: recorded, never debited. */
  overage: micros,
  late: z.boolean(),
});

export const holdReleased = z.object({
  ...base,
  type: z.literal('hold.released'),
  holdId: id,
  amount: micros,
  reason: z.enum(['released', 'expired']),
});

export const grantExpired = z.object({
  ...base,
  type: z.literal('grant.expired'),
  grantId: id,
  amount: micros,
});
export const grantVoided = z.object({
  ...base,
  type: z.literal('grant.voided'),
  grantId: id,
  amount: micros,
});

/** A new grant paid off part or all of a soft pool's overdraft. */
export const overdraftSettled = z.object({
  ...base,
  type: z.literal('overdraft.settled'),
  grantId: id,
  amount: micros,
});

export const creditEvent = z.discriminatedUnion('type', [
  holdReserved,
  holdSettled,
  holdReleased,
  grantExpired,
  grantVoided,
  overdraftSettled,
]);
export type CreditEvent = z.infer<typeof creditEvent>;
export type HoldReserved = z.infer<typeof holdReserved>;
export type HoldSettled = z.infer<typeof holdSettled>;
export type HoldReleased = z.infer<typeof holdReleased>;

/** Many events per JetStream message (group commit on the way in). */
export const creditEventBatch = z.object({ events: z.array(creditEvent) });

export const CREDITS_STREAM = 'CREDITS';
/** `credits.ev.<partition>`: a customer always maps to one partition, so its events stay in order per publisher. */
export const creditsSubject = (partition: number) => `credits.ev.${partition}`;
