/**
 * The all-in-one app (every service's routes on one fastify instance, as `npm start` builds it)
 * on fresh stores: a fresh PostgreSQL database, Redis key prefix and NATS namespace ('real'),
 * or PGlite, the embedded hot state and the in-process bus ('embedded'). Driven with
 * `app.inject`, under keys of each scope and of a second tenant.
 */
import { randomUUID } from 'node:crypto';
import { type AllotApp, loadConfig, StaticApiKeyStore } from '@allot/kit';
import type { Bus } from '@allot/kit/bus';
import { EmbeddedHotState, type HotState } from '@allot/kit/hot';
import type { SqlStore } from '@allot/kit/sql';
import type { Stores } from '@allot/kit/stores';
import {
  freshEmbeddedBus,
  freshNatsBus,
  freshPgDatabase,
  freshPgliteStore,
  freshRedisHotState,
} from '@allot/kit/testing';
import { buildAllot } from '../../services/allot/src/app.ts';
import { allotEnv } from '../../services/allot/src/config.ts';

export type Backend = 'real' | 'embedded';

export const KEYS = {
  admin: 'test-admin-key-000000000000',
  decide: 'test-decide-key-00000000000',
  read: 'test-read-key-0000000000000',
  other: 'test-other-tenant-key-00000',
} as const;

export interface Reply<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export interface AllotRig {
  app: AllotApp;
  tenant: string;
  sql: SqlStore;
  hot: HotState;
  bus: Bus;
  /** A request as `key` (admin by default); the body parsed as JSON. */
  call<T = Record<string, unknown>>(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    url: string,
    body?: unknown,
    key?: keyof typeof KEYS,
  ): Promise<Reply<T>>;
  /** The same, failing the test unless the answer is 2xx. */
  ok<T = Record<string, unknown>>(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    url: string,
    body?: unknown,
  ): Promise<T>;
  close(): Promise<void>;
}

export async function openAllot(backend: Backend, env: Record<string, string> = {}): Promise<AllotRig> {
  const cleanups: (() => Promise<void>)[] = [];
  let sql: SqlStore;
  let hot: HotState;
  let bus: Bus;
  if (backend === 'real') {
    const db = await freshPgDatabase();
    const redis = await freshRedisHotState();
    const nats = await freshNatsBus();
    sql = db.store;
    hot = redis;
    bus = nats.bus;
    cleanups.push(
      () => nats.cleanup(),
      () => redis.cleanup(),
      () => db.drop(),
    );
    // A Redis that has been up a while: a first load need not wait out the publish bound.
    await hot.call('SET', 'allot:credits:epoch', '0');
  } else {
    const pglite = await freshPgliteStore();
    const embedded = await freshEmbeddedBus();
    hot = await EmbeddedHotState.open();
    sql = pglite;
    bus = embedded.bus;
    cleanups.push(
      () => embedded.cleanup(),
      () => pglite.close(),
    );
  }
  const tenant = env.ALLOT_TENANT ?? `t${randomUUID().slice(0, 8)}`;
  const keys = new StaticApiKeyStore([
    { key: KEYS.admin, principal: { keyId: 'admin', tenant, scopes: ['admin'] } },
    { key: KEYS.decide, principal: { keyId: 'decide', tenant, scopes: ['decide'] } },
    { key: KEYS.read, principal: { keyId: 'read', tenant, scopes: ['read'] } },
    { key: KEYS.other, principal: { keyId: 'other', tenant: `${tenant}-other`, scopes: ['admin'] } },
  ]);
  const stores: Stores = {
    sql,
    hot,
    bus,
    readiness: [],
    async close() {
      // The fixtures own the stores; they close them.
    },
  };
  const app = await buildAllot(loadConfig(allotEnv, { LOG_LEVEL: 'warn', ...env }), stores, keys);
  await app.ready();
  const call: AllotRig['call'] = async (method, url, body, key = 'admin') => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${KEYS[key]}` },
      ...(body === undefined ? {} : { payload: body as object }),
    });
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null } as never;
  };
  return {
    app,
    tenant,
    sql,
    hot,
    bus,
    call,
    async ok(method, url, body) {
      const res = await call(method, url, body);
      if (res.status >= 300)
        throw new Error(`${method} ${url} answered ${res.status}: ${JSON.stringify(res.body)}`);
      return res.body as never;
    },
    async close() {
      await app.close();
      if (backend === 'embedded') await hot.close();
      for (const cleanup of cleanups) await cleanup().catch(() => {});
    },
  };
}

/** A catalog most gate tests share: metered tokens at 0.002 credits each, a numeric setting. */
export async function basicCatalog(rig: AllotRig, customers: string[] = ['acme']): Promise<void> {
  await rig.ok('PUT', '/v1/credit-types/credits', { name: 'Credits' });
  await rig.ok('PUT', '/v1/features/llm-tokens', { name: 'LLM tokens', type: 'metered' });
  await rig.ok('PUT', '/v1/features/max-context', { name: 'Context', type: 'numeric' });
  await rig.ok('PUT', '/v1/features/export', { name: 'Export', type: 'boolean' });
  await rig.ok('PUT', '/v1/plans/pro', {
    name: 'Pro',
    entitlements: [{ feature: 'llm-tokens' }, { feature: 'max-context', value: 128000 }],
    creditRates: [{ feature: 'llm-tokens', creditType: 'credits', rate: '0.002' }],
  });
  for (const customer of customers) {
    await rig.ok('PUT', `/v1/customers/${customer}`, { name: customer });
    await rig.ok('PUT', `/v1/customers/${customer}/subscription`, { plan: 'pro' });
  }
}

export async function grant(rig: AllotRig, customerId: string, amount: string, creditType = 'credits') {
  return rig.ok('POST', `/v1/customers/${customerId}/grants`, {
    creditType,
    amount,
    category: 'paid',
    idempotencyKey: randomUUID(),
  });
}
