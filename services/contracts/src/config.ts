/**
 * The configuration model: what the catalog, customers and governance look like, one schema
 * per kind. The data plane's configuration routes validate with these, the configuration
 * store keeps documents of these shapes, and the gate decides from them; the control plane
 * (later) publishes the same documents down the uplink.
 */
import { z } from 'zod';
import { id, metadata, nonNegativeAmount } from './common.ts';

/** Every kind of configuration document, as the store names them. */
export const configKinds = [
  'feature',
  'plan',
  'addon',
  'customer',
  'subscription',
  'entity',
  'budget',
  'block',
  'meter',
] as const;
export type ConfigKind = (typeof configKinds)[number];

/** A dimension name: `user`, `team`, `agent`, `model`, `region`... */
export const dimensionName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, 'expected a letter, then up to 63 of A-Z a-z 0-9 _ . -')
  .describe('a dimension name, like user, team, agent or model');

/** A dimension value as a request sends it. Numbers serve formulas (`input_tokens`). */
export const dimensionValue = z.union([z.string().max(256), z.number().finite()]);

export const dimensions = z
  .record(dimensionName, dimensionValue)
  .refine((d) => Object.keys(d).length <= 32, 'at most 32 dimensions')
  .describe('what the request is about: user, team, agent, model, and any other dimension');

/** A scope value: a fixed value, or `*`, which gives every distinct value its own counter. */
export const scopeValue = z
  .string()
  .min(1)
  .max(256)
  .describe('a value, or * for each distinct value on its own');

export const scope = z
  .record(dimensionName, scopeValue)
  .refine((s) => Object.keys(s).length <= 16, 'at most 16 dimensions')
  .describe('dimension -> value (or *); empty: every request of the customer');

export const resetPeriod = z.enum(['hour', 'day', 'week', 'month', 'year', 'never']);

// ---------------------------------------------------------------------------------------------
// Catalog

export const featureBody = z.object({
  name: z.string().min(1).max(200),
  type: z.enum(['boolean', 'numeric', 'enum', 'metered']),
  unit: z.string().max(50).optional(),
});

export const entitlement = z.object({
  feature: id,
  enabled: z.boolean().optional().describe('default true for a listed feature'),
  value: z
    .union([z.number().finite(), z.string().max(200)])
    .optional()
    .describe('a numeric or enum feature: the value the customer gets'),
  limit: nonNegativeAmount.optional().describe('a metered feature: units per resetPeriod'),
  resetPeriod: resetPeriod.optional().describe('when the limit starts again; default month'),
  softLimit: z.boolean().optional().describe('true: over the limit is allowed and reported, not denied'),
});
export type Entitlement = z.output<typeof entitlement>;

export const creditRate = z
  .object({
    feature: id,
    creditType: id,
    rate: nonNegativeAmount.optional().describe('credits per unit'),
    formula: z
      .string()
      .min(1)
      .max(1000)
      .optional()
      .describe('a CEL expression over units and dimensions, like 1.1*input_tokens + 5*output_tokens'),
  })
  .refine((r) => (r.rate === undefined) !== (r.formula === undefined), {
    message: 'give exactly one of rate and formula',
    path: ['rate'],
  });
export type CreditRate = z.output<typeof creditRate>;

function uniqueBy<T>(items: readonly T[], key: (item: T) => string): boolean {
  return new Set(items.map(key)).size === items.length;
}

export const planBody = z.object({
  name: z.string().min(1).max(200),
  entitlements: z
    .array(entitlement)
    .max(500)
    .default([])
    .refine((list) => uniqueBy(list, (e) => e.feature), 'one entitlement per feature'),
  creditRates: z
    .array(creditRate)
    .max(500)
    .default([])
    .refine((list) => uniqueBy(list, (r) => r.feature), 'one credit rate per feature'),
  metadata: metadata.optional(),
});
export type PlanBody = z.output<typeof planBody>;
/** An add-on is shaped like a plan; a subscription stacks add-ons on its plan. */
export const addonBody = planBody;

export const customerBody = z.object({
  name: z.string().min(1).max(200),
  metadata: metadata.optional(),
});

export const subscriptionBody = z.object({
  plan: id,
  addons: z
    .array(id)
    .max(50)
    .default([])
    .refine((list) => new Set(list).size === list.length, 'each add-on once'),
  overrides: z
    .array(entitlement)
    .max(500)
    .default([])
    .refine((list) => uniqueBy(list, (e) => e.feature), 'one override per feature'),
});

// ---------------------------------------------------------------------------------------------
// Governance

export const entityBody = z.object({
  type: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{0,31}$/, 'expected a lower-case word like team, user or agent')
    .describe('the dimension this entity answers to: team, user, agent...'),
  parentId: id.optional().describe('the entity above it; absent: directly under the organisation'),
  name: z.string().max(200).optional(),
});

export const budgetMetric = z
  .string()
  .regex(
    /^(credits|requests|units:[A-Za-z0-9._:-]{1,128})$/,
    'expected credits, requests or units:<feature>',
  );

export const budgetPeriod = z
  .string()
  .regex(
    /^(hour|day|week|month|year|never|rolling:\d{4,11})$/,
    'expected hour, day, week, month, year, never or rolling:<ms>',
  );

export const budgetBody = z.object({
  customerId: id,
  scope: scope.default({}),
  metric: budgetMetric.default('credits'),
  creditType: id.optional().describe('metric credits: count this credit type only; default every one'),
  period: budgetPeriod,
  timeZone: z.string().max(64).optional().describe('IANA zone of calendar periods; default UTC'),
  limit: nonNegativeAmount,
  mode: z.enum(['hard', 'soft']).default('hard'),
  kind: z.enum(['budget', 'rate', 'concurrency']).default('budget'),
  alerts: z
    .array(z.number().gt(0).max(10))
    .max(10)
    .default([0.5, 0.8, 1])
    .describe('fractions of the limit that raise an alert, once per period'),
  name: z.string().max(200).optional(),
});
export type BudgetBody = z.output<typeof budgetBody>;

export const blockBody = z.object({
  scope: z
    .record(z.union([dimensionName, z.literal('customerId')]), scopeValue)
    .refine((s) => Object.keys(s).length >= 1, 'a block needs at least one of customerId or a dimension')
    .refine((s) => Object.keys(s).length <= 16, 'at most 16 dimensions')
    .describe(
      'customerId and/or dimension values (or *) to block; every request matching all of them is denied',
    ),
  reason: z.string().max(500).optional(),
});

// ---------------------------------------------------------------------------------------------
// Metering

/**
 * The JSONPath subset meters read event data with: `$` then member names and array indexes,
 * `$.usage.input_tokens`, `$['model name']`, `$.choices[0].tokens`. No wildcards or filters:
 * a meter reads one value per event.
 */
export const jsonPath = z
  .string()
  .max(256)
  .regex(
    /^\$(\.[A-Za-z_$][A-Za-z0-9_$-]*|\[\d{1,6}\]|\['[^'\\]{1,128}'\]|\["[^"\\]{1,128}"\])+$/,
    "expected a JSONPath like $.tokens, $.usage.input_tokens, $['model name'] or $.items[0].n",
  );

export const meterAggregations = ['SUM', 'COUNT', 'UNIQUE_COUNT', 'AVG', 'MIN', 'MAX', 'LATEST'] as const;

export const meterBody = z.object({
  name: z.string().max(200).optional(),
  description: z.string().max(1000).optional(),
  eventType: z.string().min(1).max(256).describe('the CloudEvents type this meter counts'),
  aggregation: z.enum(meterAggregations),
  valueProperty: jsonPath.optional().describe('where the value is in the event data; not for COUNT'),
  groupBy: z
    .record(dimensionName, jsonPath)
    .refine((g) => Object.keys(g).length <= 16, 'at most 16 group-by properties')
    .refine((g) => !('subject' in g), 'subject is always available to group by; do not define it')
    .default({})
    .describe('name -> JSONPath of the properties usage can be grouped and filtered by'),
});
export type MeterBody = z.output<typeof meterBody>;

/** What the schema cannot say about a meter: COUNT takes no value, every other aggregation needs one. */
export function meterProblem(meter: MeterBody): string | null {
  if (meter.aggregation === 'COUNT' && meter.valueProperty !== undefined) {
    return 'valueProperty: COUNT counts events; it takes no valueProperty';
  }
  if (meter.aggregation !== 'COUNT' && meter.valueProperty === undefined) {
    return `valueProperty: ${meter.aggregation} needs a valueProperty`;
  }
  return null;
}

/** The body of each kind, as it is stored. */
export const configBodies = {
  feature: featureBody,
  plan: planBody,
  addon: addonBody,
  customer: customerBody,
  subscription: subscriptionBody,
  entity: entityBody,
  budget: budgetBody,
  block: blockBody,
  meter: meterBody,
} as const satisfies Record<ConfigKind, z.ZodType>;
export type ConfigBody<K extends ConfigKind> = z.output<(typeof configBodies)[K]>;

/** A stored document as the API returns it: the body plus its key and version. */
export const configDocument = z.object({
  id: z.string(),
  version: z.number().int().describe('the configuration version that last changed it'),
  updatedAt: z.string(),
});
