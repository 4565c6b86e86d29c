/**
 * Budgets, rate limits, concurrency limits and metered entitlement limits as the hot path
 * counts them: one kind of counter, told apart by what it counts and when.
 *
 * - budget, entitlement: what requests use in a period (calendar, rolling or never); a
 *   reservation holds its estimate until it settles (used) or is released. Hard: used + held +
 *   this request must fit the limit.
 * - rate: requests or units per period, counted when allowed and never given back.
 * - concurrency: reservations in flight; each allowed request holds one until it ends.
 *
 * Every amount is an integer in micro-units of what is counted (a request is 1,000,000, so
 * limits are exact decimals like every other amount).
 */
import { type Period, parsePeriod } from './periods.ts';

export type LimitKind = 'budget' | 'rate' | 'concurrency' | 'entitlement';

export type Metric =
  | { kind: 'credits'; creditType: string | null }
  | { kind: 'requests' }
  | { kind: 'units'; feature: string };

export interface LimitSpec {
  /** The budget id, or `entitlement:<feature>`. */
  id: string;
  kind: LimitKind;
  scope: Readonly<Record<string, string>>;
  metric: Metric;
  period: Period;
  timeZone: string;
  /** Micro-units of the metric (concurrency: micro-units of reservations, 1,000,000 each). */
  limit: bigint;
  mode: 'hard' | 'soft';
  alerts: readonly number[];
}

export const ONE = 1_000_000n;

/** What one request adds to a counter of `spec`, or null when the spec does not count it. */
export function amountFor(
  spec: LimitSpec,
  request: { feature: string; units: bigint; cost: bigint; creditType: string | null },
): bigint | null {
  if (spec.kind === 'concurrency') return ONE;
  switch (spec.metric.kind) {
    case 'requests':
      return ONE;
    case 'units':
      return spec.metric.feature === request.feature ? request.units : null;
    case 'credits':
      // A request that costs no credits is not what a credits budget counts.
      if (request.creditType === null) return null;
      if (spec.metric.creditType !== null && spec.metric.creditType !== request.creditType) return null;
      return request.cost;
  }
}

/** The deny reason when a hard counter of this kind is full. */
export function denyReasonOf(
  kind: LimitKind,
): 'budget_exceeded' | 'limit_exceeded' | 'rate_limited' | 'concurrency_limited' {
  switch (kind) {
    case 'budget':
      return 'budget_exceeded';
    case 'entitlement':
      return 'limit_exceeded';
    case 'rate':
      return 'rate_limited';
    case 'concurrency':
      return 'concurrency_limited';
  }
}

export function parseMetric(text: string, creditType?: string): Metric {
  if (text === 'requests') return { kind: 'requests' };
  if (text.startsWith('units:')) return { kind: 'units', feature: text.slice('units:'.length) };
  return { kind: 'credits', creditType: creditType ?? null };
}

/** The budget document (already validated by the contract) as the hot path counts it. */
export function budgetSpec(
  id: string,
  body: {
    scope: Record<string, string>;
    metric: string;
    creditType?: string | undefined;
    period: string;
    timeZone?: string | undefined;
    limit: bigint;
    mode: 'hard' | 'soft';
    kind: 'budget' | 'rate' | 'concurrency';
    alerts: readonly number[];
  },
): LimitSpec {
  return {
    id,
    kind: body.kind,
    scope: body.scope,
    metric: parseMetric(body.metric, body.creditType),
    period: body.kind === 'concurrency' ? { kind: 'never' } : parsePeriod(body.period),
    timeZone: body.timeZone ?? 'UTC',
    limit: body.limit,
    mode: body.mode,
    alerts: body.kind === 'budget' ? body.alerts : [],
  };
}

/** A metered entitlement's `limit` per `resetPeriod`, as a counter of the customer. */
export function entitlementSpec(
  feature: string,
  entitlement: { limit: bigint; resetPeriod: string; softLimit: boolean },
): LimitSpec {
  return {
    id: `entitlement:${feature}`,
    kind: 'entitlement',
    scope: {},
    metric: { kind: 'units', feature },
    period: parsePeriod(entitlement.resetPeriod),
    timeZone: 'UTC',
    limit: entitlement.limit,
    mode: entitlement.softLimit ? 'soft' : 'hard',
    alerts: [],
  };
}
