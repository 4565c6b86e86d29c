/** The gate's public contract: a decision, and what settles or releases its reservation. */
import { z } from 'zod';
import { id, idempotencyKey, nonNegativeAmount } from './common.ts';
import { dimensions } from './config.ts';

export const denyReasons = [
  'blocked',
  'customer_not_found',
  'feature_not_found',
  'not_entitled',
  'rate_limited',
  'concurrency_limited',
  'limit_exceeded',
  'budget_exceeded',
  'insufficient_credits',
] as const;
export type DenyReason = (typeof denyReasons)[number];

export const decisionRequest = z.object({
  customerId: id,
  feature: id,
  units: nonNegativeAmount.default('1').describe('how much of the feature the request will use, estimated'),
  dimensions: dimensions.default({}),
  resourceId: id
    .nullable()
    .optional()
    .describe('the credit pool of one resource; absent: the customer-wide pool'),
  ttlMs: z
    .number()
    .int()
    .min(1000)
    .max(86_400_000)
    .default(60_000)
    .describe('how long the reservation holds before it is released on its own'),
  idempotencyKey: idempotencyKey.optional(),
});
export type DecisionRequest = z.output<typeof decisionRequest>;

export const limitState = z.object({
  id: z.string().describe('the budget (or entitlement:<feature> for a metered entitlement limit)'),
  kind: z.enum(['budget', 'rate', 'concurrency', 'entitlement']),
  scope: z.record(z.string(), z.string()).describe('the counter: the scope with * filled in'),
  limit: z.string(),
  used: z.string().describe('used in the current period, held reservations included'),
  remaining: z.string(),
});

export const decision = z.object({
  decisionId: z.string(),
  decision: z.enum(['allow', 'deny']),
  reason: z.enum(denyReasons).nullable(),
  message: z.string().nullable().describe('why, in words'),
  reservationId: z.string().nullable(),
  expiresAt: z.string().nullable(),
  cost: z.object({ creditType: z.string(), amount: z.string() }).nullable(),
  balance: z.object({ creditType: z.string(), available: z.string() }).nullable(),
  limits: z.array(limitState).describe('every limit that applied, and the one that denied first'),
  config: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
  retryAfterMs: z.number().int().nullable(),
  decidedBy: z
    .string()
    .nullable()
    .describe('the block, entitlement, limit or pool that denied (null when allowed)'),
});
export type Decision = z.output<typeof decision>;

export const decisionBatch = z.object({
  decisions: z.array(decisionRequest).min(1).max(100),
});

export const settleBody = z.object({
  units: nonNegativeAmount.optional().describe('the actual usage; absent: what was reserved'),
  dimensions: dimensions.optional().describe('dimensions known only afterwards (output_tokens...)'),
  idempotencyKey: idempotencyKey.optional(),
});

export const settlement = z.object({
  reservationId: z.string(),
  status: z.enum(['settled', 'released']),
  settled: z.string().describe('credits charged'),
  released: z.string().describe('credits held but not used, returned'),
  overage: z.string().describe('credits used beyond what the pool could cover (recorded, not charged)'),
  cost: z.object({ creditType: z.string(), amount: z.string() }).nullable(),
  balance: z.object({ creditType: z.string(), available: z.string() }).nullable(),
});

export const releaseBody = z.object({ idempotencyKey: idempotencyKey.optional() });
