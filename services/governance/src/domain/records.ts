import { z } from 'zod';

/**
 * What the gate decided, on its way to PostgreSQL: published in the same hot-path message as
 * the credit events of the same operations (the `decisions` list beside `events`), so both
 * are durable together before the caller is answered. Amounts are integer micro-units as
 * strings; times epoch ms.
 */
const micros = z.string().regex(/^-?\d+$/);
const text = z.string().max(256);

/**
 * One counter a reservation touched: [counter id, kind, amount, window start, rolling ms,
 * bucket ms, metric, hard limit (-1: soft)].
 */
export const part = z.tuple([
  z.string().max(2048),
  z.enum(['b', 'e', 'r', 'c']),
  z.number().int(),
  z.number().int(),
  z.number().int(),
  z.number().int(),
  z.enum(['c', 'u', 'q']),
  z.number().int(),
]);
export type Part = z.infer<typeof part>;

const base = {
  /** Unique per effect: d:<decision>, s:<reservation>, l:<reservation>, x:<reservation>. */
  id: text,
  at: z.number().int(),
  tenant: text,
  customerId: text,
};

export const decisionRecord = z.object({
  ...base,
  type: z.literal('decision'),
  decisionId: text,
  feature: text,
  units: micros,
  dimensions: z.record(z.string(), z.string()),
  decision: z.enum(['allow', 'deny']),
  reason: z.string().max(64).nullable(),
  decidedBy: z.string().max(512).nullable(),
  cost: micros.nullable(),
  creditType: text.nullable(),
  resourceId: text,
  idempotencyKey: text.nullable(),
  /** A digest of the request, so a retry with the same key and another body is refused. */
  requestHash: text.nullable(),
  expiresAt: z.number().int().nullable(),
  parts: z.array(part),
  /** The answer the caller got, for a retry after the hot state was rebuilt. */
  answer: z.record(z.string(), z.unknown()),
});

/**
 * Usage a settle added: [counter id, amount counted, window or bucket start, rolling ms,
 * overage: what a hard limit could not take].
 */
export const usageEntry = z.tuple([
  z.string().max(2048),
  z.number().int(),
  z.number().int(),
  z.number().int(),
  z.number().int(),
]);

export const settledRecord = z.object({
  ...base,
  type: z.literal('settled'),
  reservationId: text,
  /** What metering needs to turn the settle into a usage event (absent in older records). */
  feature: text.optional(),
  creditType: text.optional(),
  units: micros,
  cost: micros,
  late: z.boolean(),
  used: z.array(usageEntry),
  answer: z.record(z.string(), z.unknown()),
});

export const endedRecord = z.object({
  ...base,
  type: z.literal('released'),
  reservationId: text,
  reason: z.enum(['released', 'expired']),
});

export const governanceRecord = z.discriminatedUnion('type', [decisionRecord, settledRecord, endedRecord]);
export type GovernanceRecord = z.infer<typeof governanceRecord>;
export type DecisionRecord = z.infer<typeof decisionRecord>;
export type SettledRecord = z.infer<typeof settledRecord>;
export type EndedRecord = z.infer<typeof endedRecord>;
