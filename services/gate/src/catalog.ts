/**
 * The gate's view of the configuration, built in memory from the replica and rebuilt when the
 * tenant's configuration changes: customers, features, effective entitlements and credit
 * rates, budgets and limits, blocks and entity trees. Nothing here is fetched per request.
 */
import { config } from '@allot/contracts';
import { parseAmount } from '@allot/credits';
import { budgetSpec, type Entity, type EntityTree, entitlementSpec, type LimitSpec } from '@allot/governance';
import type { ConfigReplica } from '@allot/kit/config-store';
import { type EffectiveEntitlement, effectiveEntitlements, effectiveRates } from './domain/entitlements.ts';
import { compileFormula, flatCost } from './domain/formula.ts';

type Body<K extends config.ConfigKind> = config.ConfigBody<K>;

/** What one unit-and-dimensions request costs, in micro-credits of `creditType`. */
export interface PricedRate {
  creditType: string;
  /** A formula reads dimensions; a flat rate only units. */
  usesDimensions: boolean;
  cost(units: bigint, dimensions: Readonly<Record<string, string | number>>): bigint;
}

export interface CustomerView {
  id: string;
  name: string;
  entitlements: ReadonlyMap<string, EffectiveEntitlement>;
  rates: ReadonlyMap<string, PricedRate>;
  /** Numeric and enum entitlement values, returned with every decision. */
  config: Readonly<Record<string, number | string>>;
  /** Budgets, rate and concurrency limits of the customer, in the order the waterfall checks them. */
  limits: readonly LimitSpec[];
  /** Metered entitlement limits by feature. */
  entitlementLimits: ReadonlyMap<string, LimitSpec>;
  tree: EntityTree;
}

export interface Block {
  id: string;
  scope: Readonly<Record<string, string>>;
  reason: string | null;
}

const waterfallOrder: Record<LimitSpec['kind'], number> = {
  rate: 0,
  concurrency: 1,
  entitlement: 2,
  budget: 3,
};

export class TenantCatalog {
  readonly tenant: string;
  readonly #replica: ConfigReplica;
  readonly #customers = new Map<string, CustomerView | null>();
  readonly #features = new Map<string, Body<'feature'>>();
  readonly #budgetsByCustomer = new Map<string, LimitSpec[]>();
  readonly #treeByCustomer = new Map<string, Map<string, Entity>>();
  readonly #formulas = new Map<string, ReturnType<typeof compileFormula>>();
  readonly blocks: readonly Block[];

  constructor(replica: ConfigReplica, tenant: string) {
    this.tenant = tenant;
    this.#replica = replica;
    for (const doc of replica.list(tenant, 'feature')) {
      const body = config.featureBody.safeParse(doc.body);
      if (body.success) this.#features.set(doc.id, body.data);
    }
    for (const doc of replica.list(tenant, 'budget')) {
      const body = config.budgetBody.safeParse(doc.body);
      if (!body.success) continue;
      try {
        const spec = budgetSpec(doc.id, { ...body.data, limit: parseAmount(body.data.limit) });
        const list = this.#budgetsByCustomer.get(body.data.customerId) ?? [];
        list.push(spec);
        this.#budgetsByCustomer.set(body.data.customerId, list);
      } catch {
        // Refused at the route; a document that slipped through counts nothing.
      }
    }
    for (const doc of replica.list(tenant, 'entity')) {
      const body = config.entityBody.safeParse(doc.body);
      if (!body.success) continue;
      const slash = doc.id.indexOf('/');
      const customerId = doc.id.slice(0, slash);
      const id = doc.id.slice(slash + 1);
      const tree = this.#treeByCustomer.get(customerId) ?? new Map<string, Entity>();
      tree.set(id, { id, type: body.data.type, parentId: body.data.parentId ?? null });
      this.#treeByCustomer.set(customerId, tree);
    }
    const blocks: Block[] = [];
    for (const doc of replica.list(tenant, 'block')) {
      const body = config.blockBody.safeParse(doc.body);
      if (body.success) blocks.push({ id: doc.id, scope: body.data.scope, reason: body.data.reason ?? null });
    }
    this.blocks = blocks;
  }

  feature(key: string): Body<'feature'> | undefined {
    return this.#features.get(key);
  }

  entityTree(customerId: string): EntityTree {
    return this.#treeByCustomer.get(customerId) ?? new Map();
  }

  budgets(customerId: string): readonly LimitSpec[] {
    return this.#budgetsByCustomer.get(customerId) ?? [];
  }

  /** The customer as the gate decides for it, or null when there is no such customer. */
  customer(id: string): CustomerView | null {
    let view = this.#customers.get(id);
    if (view === undefined) {
      view = this.#build(id);
      this.#customers.set(id, view);
    }
    return view;
  }

  #build(id: string): CustomerView | null {
    const customerDoc = this.#replica.get(this.tenant, 'customer', id);
    const customer = customerDoc ? config.customerBody.safeParse(customerDoc.body) : undefined;
    if (!customer?.success) return null;
    const subscriptionDoc = this.#replica.get(this.tenant, 'subscription', id);
    const subscription = subscriptionDoc
      ? config.subscriptionBody.safeParse(subscriptionDoc.body)
      : undefined;
    const sub = subscription?.success ? subscription.data : undefined;
    const plan = sub ? this.#plan('plan', sub.plan) : undefined;
    const addons = (sub?.addons ?? []).map((key) => this.#plan('addon', key)).filter((a) => a !== undefined);
    const entitlements = effectiveEntitlements(plan, addons, sub?.overrides ?? []);

    const rates = new Map<string, PricedRate>();
    for (const [feature, rate] of effectiveRates(plan, addons)) {
      const priced = this.#price(rate);
      if (priced) rates.set(feature, priced);
    }
    const values: Record<string, number | string> = {};
    const entitlementLimits = new Map<string, LimitSpec>();
    for (const [feature, e] of entitlements) {
      const type = this.#features.get(feature)?.type;
      if (e.enabled && e.value !== null && (type === 'numeric' || type === 'enum')) values[feature] = e.value;
      if (e.enabled && e.limit !== null) {
        entitlementLimits.set(
          feature,
          entitlementSpec(feature, { limit: e.limit, resetPeriod: e.resetPeriod, softLimit: e.softLimit }),
        );
      }
    }
    const limits = [...this.budgets(id)].sort((a, b) => waterfallOrder[a.kind] - waterfallOrder[b.kind]);
    return {
      id,
      name: customer.data.name,
      entitlements,
      rates,
      config: values,
      limits,
      entitlementLimits,
      tree: this.entityTree(id),
    };
  }

  #plan(kind: 'plan' | 'addon', key: string) {
    const doc = this.#replica.get(this.tenant, kind, key);
    const body = doc ? config.planBody.safeParse(doc.body) : undefined;
    return body?.success ? body.data : undefined;
  }

  #price(rate: config.CreditRate): PricedRate | null {
    if (rate.rate !== undefined) {
      const perUnit = rate.rate;
      return {
        creditType: rate.creditType,
        usesDimensions: false,
        cost: (units) => flatCost(perUnit, units),
      };
    }
    if (rate.formula === undefined) return null;
    let formula = this.#formulas.get(rate.formula);
    if (!formula) {
      try {
        formula = compileFormula(rate.formula);
      } catch {
        // Refused at the route; a formula that slipped through prices nothing.
        return null;
      }
      this.#formulas.set(rate.formula, formula);
    }
    const compiled = formula;
    return {
      creditType: rate.creditType,
      usesDimensions: compiled.dimensions.length > 0,
      cost: (units, dims) => compiled.cost(units, dims),
    };
  }
}

/** Every tenant's catalog, each rebuilt lazily after its configuration changed. */
export class Catalog {
  readonly #replica: ConfigReplica;
  readonly #tenants = new Map<string, TenantCatalog>();

  constructor(replica: ConfigReplica) {
    this.#replica = replica;
    replica.onChange((tenant) => this.#tenants.delete(tenant));
  }

  get replica(): ConfigReplica {
    return this.#replica;
  }

  tenant(tenant: string): TenantCatalog {
    let catalog = this.#tenants.get(tenant);
    if (!catalog) {
      catalog = new TenantCatalog(this.#replica, tenant);
      this.#tenants.set(tenant, catalog);
    }
    return catalog;
  }
}
