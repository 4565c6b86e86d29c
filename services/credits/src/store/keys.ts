import { hotKey } from '@allot/kit/hot';

/** A credit pool: one per (customer, credit type, optional resource). */
export interface PoolRef {
  tenant: string;
  customerId: string;
  creditType: string;
  /** '' or absent: the pool has no resource. */
  resourceId?: string;
}

/** `<creditType>/<resourceId>`: ids never contain '/', so this is unambiguous. */
export function poolName(pool: PoolRef): string {
  return `${pool.creditType}/${pool.resourceId ?? ''}`;
}

/** The customer-wide keys: loaded marker, finished holds, their finish times. */
export function customerKeys(tenant: string, customerId: string) {
  return {
    loaded: hotKey(tenant, customerId, 'credits', 'loaded'),
    done: hotKey(tenant, customerId, 'credits', 'done'),
    donex: hotKey(tenant, customerId, 'credits', 'donex'),
  };
}

/** The keys of one pool, each under the customer's hash tag. */
export function poolKeys(pool: PoolRef) {
  const name = poolName(pool);
  return {
    pool: hotKey(pool.tenant, pool.customerId, 'credits', 'pool', name),
    holds: hotKey(pool.tenant, pool.customerId, 'credits', 'holds', name),
    holdsx: hotKey(pool.tenant, pool.customerId, 'credits', 'holdsx', name),
  };
}

/** KEYS of every pool script, in the order the scripts read them. */
export function poolScriptKeys(pool: PoolRef): string[] {
  const c = customerKeys(pool.tenant, pool.customerId);
  const p = poolKeys(pool);
  return [c.loaded, p.pool, p.holds, p.holdsx, c.done, c.donex];
}
