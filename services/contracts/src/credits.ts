import { z } from 'zod';
import { id, idempotencyKey, metadata, nonNegativeAmount, positiveAmount, timestamp } from './common.ts';

export const creditTypeBody = z.object({
  name: z.string().min(1).max(200),
  unit: z.string().max(50).optional(),
});
export const creditType = z.object({
  key: z.string(),
  name: z.string(),
  unit: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const grantBody = z
  .object({
    creditType: id,
    amount: positiveAmount,
    category: z.enum(['paid', 'promotional']),
    priority: z
      .number()
      .int()
      .min(0)
      .max(1_000_000_000)
      .optional()
      .describe('lower burns first; default 100'),
    effectiveAt: timestamp.optional(),
    expiresAt: timestamp.optional(),
    resourceId: id.optional().describe('the pool of one resource; absent: the customer-wide pool'),
    costBasis: nonNegativeAmount.optional().describe('what the customer paid per credit, for reporting'),
    metadata: metadata.optional(),
    idempotencyKey,
  })
  .refine((g) => !g.expiresAt || !g.effectiveAt || Date.parse(g.expiresAt) > Date.parse(g.effectiveAt), {
    message: 'must be after effectiveAt',
    path: ['expiresAt'],
  });

export const grant = z.object({
  id: z.string(),
  customerId: z.string(),
  creditType: z.string(),
  resourceId: z.string().nullable(),
  amount: z.string(),
  category: z.enum(['paid', 'promotional']),
  priority: z.number(),
  effectiveAt: z.string(),
  expiresAt: z.string().nullable(),
  costBasis: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()),
  createdAt: z.string(),
  voidedAt: z.string().nullable(),
  expiredAt: z.string().nullable(),
});

export const grantBalance = z.object({
  grantId: z.string(),
  category: z.enum(['paid', 'promotional']),
  priority: z.number(),
  effectiveAt: z.string(),
  expiresAt: z.string().nullable(),
  granted: z.string(),
  remaining: z.string(),
});

export const balance = z.object({
  creditType: z.string(),
  resourceId: z.string().nullable(),
  mode: z.enum(['hard', 'soft']),
  available: z.string().describe('what a new reservation may take now'),
  held: z.string().describe('sum of active reservations'),
  overdraft: z.string().describe('what a soft pool owes; the next grant pays it first'),
  grants: z.array(grantBalance).describe('grants in effect, in burn order'),
});

export const ledgerEntry = z.object({
  id: z.string(),
  creditType: z.string(),
  resourceId: z.string().nullable(),
  kind: z.enum(['grant', 'debit', 'release', 'expiry', 'void', 'adjustment', 'overage']),
  amount: z.string(),
  grantId: z.string().nullable(),
  reservationId: z.string().nullable(),
  at: z.string(),
  recordedAt: z.string(),
});

export const ledgerQuery = z.object({
  creditType: id.optional(),
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const poolBody = z.object({
  mode: z
    .enum(['hard', 'soft'])
    .default('hard')
    .describe('hard never goes below zero; soft records an overdraft'),
  resourceId: id.optional(),
  lowBalanceThreshold: nonNegativeAmount.optional(),
  autoRecharge: z
    .object({ threshold: nonNegativeAmount, target: positiveAmount, monthlyCap: positiveAmount.optional() })
    .optional(),
});
