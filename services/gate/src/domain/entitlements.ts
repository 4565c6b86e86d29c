/**
 * What a customer may use: its plan, with its add-ons stacked on top, then its overrides.
 *
 * Per feature: an add-on turns a feature on, adds its `limit` to the plan's (a quota pack),
 * and sets `value`, `resetPeriod` and `softLimit` where it gives them (add-ons in the order the
 * subscription lists them, later ones winning). An override replaces each field it sets, so it
 * can also turn a feature off. Credit rates: the plan's, then each add-on's for the features it
 * prices, later ones winning.
 */
import type { config } from '@allot/contracts';
import { parseAmount } from '@allot/credits';

export interface EffectiveEntitlement {
  feature: string;
  enabled: boolean;
  value: number | string | null;
  /** Micro-units per reset period; null: unlimited. */
  limit: bigint | null;
  resetPeriod: 'hour' | 'day' | 'week' | 'month' | 'year' | 'never';
  softLimit: boolean;
}

type Entitlement = config.Entitlement;
type CreditRate = config.CreditRate;

interface Source {
  entitlements: readonly Entitlement[];
  creditRates: readonly CreditRate[];
}

function apply(
  into: Map<string, EffectiveEntitlement>,
  entitlement: Entitlement,
  how: 'base' | 'addon' | 'override',
): void {
  const current = into.get(entitlement.feature);
  const limit = entitlement.limit === undefined ? undefined : parseAmount(entitlement.limit);
  if (!current || how === 'base') {
    into.set(entitlement.feature, {
      feature: entitlement.feature,
      enabled: entitlement.enabled ?? true,
      value: entitlement.value ?? null,
      limit: limit ?? null,
      resetPeriod: entitlement.resetPeriod ?? 'month',
      softLimit: entitlement.softLimit ?? false,
    });
    return;
  }
  const next = { ...current };
  if (how === 'addon') {
    next.enabled = current.enabled || (entitlement.enabled ?? true);
    if (limit !== undefined) next.limit = current.limit === null ? limit : current.limit + limit;
  } else {
    if (entitlement.enabled !== undefined) next.enabled = entitlement.enabled;
    if (limit !== undefined) next.limit = limit;
  }
  if (entitlement.value !== undefined) next.value = entitlement.value;
  if (entitlement.resetPeriod !== undefined) next.resetPeriod = entitlement.resetPeriod;
  if (entitlement.softLimit !== undefined) next.softLimit = entitlement.softLimit;
  into.set(entitlement.feature, next);
}

export function effectiveEntitlements(
  plan: Source | undefined,
  addons: readonly Source[],
  overrides: readonly Entitlement[],
): Map<string, EffectiveEntitlement> {
  const out = new Map<string, EffectiveEntitlement>();
  for (const e of plan?.entitlements ?? []) apply(out, e, 'base');
  for (const addon of addons) for (const e of addon.entitlements) apply(out, e, 'addon');
  for (const e of overrides) apply(out, e, 'override');
  return out;
}

export function effectiveRates(plan: Source | undefined, addons: readonly Source[]): Map<string, CreditRate> {
  const out = new Map<string, CreditRate>();
  for (const r of plan?.creditRates ?? []) out.set(r.feature, r);
  for (const addon of addons) for (const r of addon.creditRates) out.set(r.feature, r);
  return out;
}
