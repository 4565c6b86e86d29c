/**
 * The control plane and two tenants' data planes over a hub NATS server of our own, started
 * with the configuration the control plane generates (a user per tenant, limited to
 * allot.<tenant>.>). Each data plane is the all-in-one app in data-plane mode
 * (ALLOT_UPLINK_URL) on its own database, Redis prefix and NATS namespace.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ControlPlane,
  controlPlanePlugin,
  hashPassword,
  hubServerConfig,
  migrateControlPlane,
  putTenant,
  startControlPlane,
} from '@allot/control-plane';
import { type AllotApp, createApp, StaticApiKeyStore } from '@allot/kit';
import { NatsBus } from '@allot/kit/bus';
import { freshPgDatabase, until } from '@allot/kit/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servicesOf } from '../services/allot/src/app.ts';
import { type AllotRig, KEYS, openAllot } from './support/allot-app.ts';
import { NatsServer, stopAll } from './support/servers.ts';

const CP_KEY = 'test-control-plane-key-0000';
const CP_PASSWORD = 'control-plane-password-000';

describe('control plane and data planes over the hub', () => {
  const suffix = randomUUID().slice(0, 6);
  const A = `alpha${suffix}`;
  const B = `beta${suffix}`;
  let hub: NatsServer;
  let cpDb: Awaited<ReturnType<typeof freshPgDatabase>>;
  let cpBus: NatsBus;
  let controlPlane: ControlPlane;
  let cpApp: AllotApp;
  let dpA: AllotRig;
  let dpB: AllotRig;
  const credentials: Record<string, string> = {};

  const cp = async (
    tenant: string,
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    url: string,
    body?: unknown,
  ) => {
    const res = await cpApp.inject({
      method,
      url,
      headers: { authorization: `Bearer ${tenant === A ? `${CP_KEY}-a` : `${CP_KEY}-b`}` },
      ...(body === undefined ? {} : { payload: body as object }),
    });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return JSON.parse(res.body || 'null');
  };

  beforeAll(async () => {
    cpDb = await freshPgDatabase();
    await migrateControlPlane(cpDb.store);
    for (const t of [A, B]) credentials[t] = (await putTenant(cpDb.store, t, t)).password;
    const tenants = await cpDb.store.query<{ id: string; nats_user: string; password_hash: string }>(
      'SELECT id, nats_user, password_hash FROM controlplane.tenants',
    );
    hub = await NatsServer.withConfig(
      hubServerConfig({
        controlPlane: { user: 'control-plane', passwordHash: await hashPassword(CP_PASSWORD) },
        tenants: tenants.rows.map((r) => ({
          tenant: r.id,
          user: r.nats_user,
          passwordHash: r.password_hash,
        })),
      }),
    );
    cpBus = await NatsBus.connect({
      url: hub.url,
      user: 'control-plane',
      pass: CP_PASSWORD,
      jetstream: false,
    });
    controlPlane = await startControlPlane({ sql: cpDb.store, hub: cpBus });
    cpApp = await createApp({
      service: 'control-plane',
      logLevel: 'warn',
      apiKeys: new StaticApiKeyStore([
        { key: `${CP_KEY}-a`, principal: { keyId: 'a', tenant: A, scopes: ['admin'] } },
        { key: `${CP_KEY}-b`, principal: { keyId: 'b', tenant: B, scopes: ['admin'] } },
        { key: `${CP_KEY}-op`, principal: { keyId: 'op', tenant: 'operator', scopes: ['admin'] } },
      ]),
    });
    await cpApp.register(controlPlanePlugin, {
      sql: cpDb.store,
      controlPlane,
      operator: 'operator',
      hubUrl: hub.url,
      controlPlaneUser: { user: 'control-plane', passwordHash: 'x' },
    });
    await cpApp.ready();
    const dataPlane = (tenant: string) =>
      openAllot('real', {
        ALLOT_TENANT: tenant,
        ALLOT_UPLINK_URL: hub.url,
        ALLOT_UPLINK_USER: `tenant-${tenant}`,
        ALLOT_UPLINK_PASSWORD: credentials[tenant]!,
      });
    dpA = await dataPlane(A);
    dpB = await dataPlane(B);
  }, 120_000);

  afterAll(async () => {
    await dpA?.close();
    await dpB?.close();
    await cpApp?.close();
    await controlPlane?.close();
    await cpBus?.close().catch(() => {});
    await hub?.stop();
    await cpDb?.drop();
    await stopAll();
  });

  // Everything through the control plane, credits included: the data plane only applies.
  const catalog = async (tenant: string) => {
    await cp(tenant, 'PUT', '/v1/credit-types/credits', { name: 'Credits' });
    await cp(tenant, 'PUT', '/v1/features/llm-tokens', { name: 'LLM tokens', type: 'metered' });
    await cp(tenant, 'PUT', '/v1/plans/pro', {
      name: 'Pro',
      entitlements: [{ feature: 'llm-tokens' }],
      creditRates: [{ feature: 'llm-tokens', creditType: 'credits', rate: '0.002' }],
    });
    await cp(tenant, 'PUT', '/v1/customers/acme', { name: 'Acme' });
    const grant = { creditType: 'credits', amount: '1000', category: 'paid', idempotencyKey: 'g1' };
    await cp(tenant, 'POST', '/v1/customers/acme/grants', grant);
    // The same grant again is the same grant; another one under its key is refused.
    await cp(tenant, 'POST', '/v1/customers/acme/grants', grant);
    await expect(cp(tenant, 'POST', '/v1/customers/acme/grants', { ...grant, amount: '5' })).rejects.toThrow(
      /409/,
    );
    return cp(tenant, 'PUT', '/v1/customers/acme/subscription', { plan: 'pro' });
  };
  const decide = (dp: AllotRig) =>
    dp.call<{ decision: string; reason: string | null }>('POST', '/v1/decisions', {
      customerId: 'acme',
      feature: 'llm-tokens',
      units: 100,
    });

  it('a configuration change reaches its tenant data plane within a second, and only that one', async () => {
    expect((await decide(dpA)).body.reason).toBe('customer_not_found');
    const written = await catalog(A);
    const at = Date.now();
    await until(
      'tenant A decides on the new configuration',
      async () => (await decide(dpA)).body.decision === 'allow',
      5000,
    );
    const elapsed = Date.now() - at;
    process.stdout.write(
      `[uplink] configuration version ${written.version} applied by tenant A's data plane ${elapsed} ms after the write\n`,
    );
    expect(elapsed).toBeLessThan(1000);
    expect((await decide(dpB)).body.reason).toBe('customer_not_found');
    // The grant went down once: 1000 credits, less what the decisions above reserved.
    const balances = await dpA.ok<{ balances: { available: string; held: string }[] }>(
      'GET',
      '/v1/customers/acme/balances',
    );
    expect(Number(balances.balances[0]!.available) + Number(balances.balances[0]!.held)).toBe(1000);
    await until('the control plane hears the acknowledgement', async () => {
      const tenant = await cpDb.store.query<{ applied_version: string }>(
        'SELECT applied_version FROM controlplane.tenant_status WHERE tenant = $1',
        [A],
      );
      return Number(tenant.rows[0]?.applied_version ?? 0) >= written.version;
    });
    // Who changed what: the control plane's audit log names the key.
    const audit = await cp(A, 'GET', '/v1/audit?limit=3');
    expect(audit.entries[0]).toMatchObject({
      kind: 'subscription',
      id: 'acme',
      action: 'put',
      actor: 'key:a',
    });
    // The operator lists tenants with their state, and acts for one by naming it.
    const asOperator = (url: string, method: 'GET' | 'PUT' = 'GET', body?: object, tenant?: string) =>
      cpApp.inject({
        method,
        url,
        headers: { authorization: `Bearer ${CP_KEY}-op`, ...(tenant ? { 'x-allot-tenant': tenant } : {}) },
        ...(body ? { payload: body } : {}),
      });
    const list = JSON.parse((await asOperator('/v1/tenants')).body) as {
      items: { id: string; appliedVersion: number }[];
    };
    expect(list.items.find((t) => t.id === A)?.appliedVersion).toBeGreaterThanOrEqual(written.version);
    expect(
      (
        await cpApp.inject({
          method: 'GET',
          url: '/v1/tenants',
          headers: { authorization: `Bearer ${CP_KEY}-a` },
        })
      ).statusCode,
    ).toBe(403);
    expect(
      (await asOperator('/v1/features/by-operator', 'PUT', { name: 'x', type: 'boolean' }, A)).statusCode,
    ).toBe(200);
    expect(
      JSON.parse((await asOperator('/v1/features/by-operator', 'GET', undefined, A)).body),
    ).toMatchObject({ key: 'by-operator' });
    expect(
      (
        await cpApp.inject({
          method: 'GET',
          url: '/v1/features',
          headers: { authorization: `Bearer ${CP_KEY}-a`, 'x-allot-tenant': B },
        })
      ).statusCode,
    ).toBe(403);
    // Writes on the data plane itself are not served: configuration belongs to the control plane.
    expect((await dpA.call('PUT', '/v1/features/other', { name: 'x', type: 'boolean' })).status).toBe(404);
  });

  it("tenant A's credentials can neither subscribe to nor publish on tenant B's subjects", async () => {
    const asA = await connect({ servers: hub.url, user: `tenant-${A}`, pass: credentials[A]! });
    const asB = await connect({ servers: hub.url, user: `tenant-${B}`, pass: credentials[B]! });
    const errors: string[] = [];
    void (async () => {
      for await (const status of asA.status()) if (status.type === 'error') errors.push(String(status.error));
    })();
    const heardByB: string[] = [];
    const own = asB.subscribe(`allot.${B}.>`, { callback: (_, m) => void heardByB.push(m.subject) });
    await asB.flush();
    const spy = asA.subscribe(`allot.${B}.>`);
    const spyClosed = spy.closed.then((e) => String(e ?? 'closed without error'));
    asA.publish(`allot.${B}.config.changed`, '{"version":999}');
    asA.publish(`allot.${B}.up.aggregates`, '{}');
    await asA.flush();
    await sleep(500);
    expect(await Promise.race([spyClosed, sleep(2000).then(() => 'still open')])).toMatch(/permission/i);
    expect(errors.join('\n')).toMatch(
      /Permissions Violation for Publish to "allot\.[a-z0-9]+\.config\.changed"/,
    );
    expect(
      heardByB.filter((s) => s === `allot.${B}.config.changed` || s === `allot.${B}.up.aggregates`),
    ).toEqual([]);
    // Nor outside the allot tree at all (the control plane's own subjects).
    const outside = asB.subscribe('controlplane.>');
    expect(
      await Promise.race([outside.closed.then((e) => String(e)), sleep(2000).then(() => 'open')]),
    ).toMatch(/permission/i);
    own.unsubscribe();
    await Promise.all([asA.close(), asB.close()]);
  });

  it('a data plane cut off from the hub keeps deciding, and catches up when it returns', async () => {
    await catalog(B);
    await until('tenant B configured', async () => (await decide(dpB)).body.decision === 'allow');
    await hub.kill('SIGKILL');
    // The hub is gone: both keep deciding on what they applied.
    for (let i = 0; i < 5; i++) expect((await decide(dpB)).body.decision).toBe('allow');
    // Meanwhile the control plane changes B's configuration: a block on acme.
    await cp(B, 'PUT', '/v1/blocks/stop-acme', { scope: { customerId: 'acme' }, reason: 'paused' });
    await sleep(500);
    expect((await decide(dpB)).body.decision).toBe('allow');
    await hub.start();
    const back = Date.now();
    await until(
      'tenant B applies the block after the hub returns',
      async () => (await decide(dpB)).body.reason === 'blocked',
      20_000,
    );
    process.stdout.write(
      `[uplink] hub down and back; tenant B caught up ${Date.now() - back} ms after the hub returned\n`,
    );
    const agent = servicesOf(dpB.app).uplink.agent!;
    const cpVersion = (await controlPlane.store.versions()).get(B)!;
    await until('acknowledged', async () => agent.appliedVersion === cpVersion);
  });

  it('only acknowledgements, health, aggregates and configuration cross the uplink during a metering workload', async () => {
    const tap: NatsConnection = await connect({ servers: hub.url, user: 'control-plane', pass: CP_PASSWORD });
    const seen: { subject: string; data: string }[] = [];
    tap.subscribe('>', { callback: (_, m) => void seen.push({ subject: m.subject, data: m.string() }) });
    await tap.flush();
    await cp(A, 'PUT', '/v1/meters/tokens', {
      eventType: 'llm',
      aggregation: 'SUM',
      valueProperty: '$.tokens',
      groupBy: { model: '$.model' },
    });
    await until(
      'the meter reached tenant A',
      async () => servicesOf(dpA.app).metering.meters.meter(A, 'tokens') !== undefined,
    );
    const events = Array.from({ length: 300 }, (_, i) => ({
      specversion: '1.0',
      id: `secret-event-${i}`,
      source: 'secret-source',
      type: 'llm',
      subject: 'acme',
      data: {
        tokens: 10,
        model: i % 2 ? 'gpt-5' : 'claude',
        prompt: `secret-prompt-${i}`,
        user_email: 'someone@example.com',
      },
    }));
    const res = await dpA.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { authorization: `Bearer ${KEYS.admin}`, 'content-type': 'application/json' },
      payload: JSON.stringify(events),
    });
    expect(res.statusCode).toBe(204);
    await until(
      'the aggregates reach the control plane',
      async () => {
        const rows = await cpDb.store.query<{ total: string | null }>(
          "SELECT sum(value)::text AS total FROM controlplane.aggregates WHERE tenant = $1 AND meter = 'tokens'",
          [A],
        );
        return rows.rows[0]?.total === '3000';
      },
      30_000,
    );
    const usage = await cp(A, 'GET', '/v1/analytics/usage?meter=tokens&windowSize=DAY');
    expect(usage.data.reduce((sum: number, r: { value: number }) => sum + r.value, 0)).toBe(3000);
    await tap.drain();

    const allowed =
      /^allot\.[a-z0-9_-]+\.(config\.changed|config\.sync|up\.ack|up\.health|up\.aggregates|inbox\.[0-9a-f-]+)$/;
    const kinds = new Map<string, number>();
    for (const m of seen) {
      expect(m.subject, m.subject).toMatch(allowed);
      const kind =
        m.subject.split('.')[2] === 'inbox' ? 'inbox (replies)' : m.subject.split('.').slice(2, 4).join('.');
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      expect(m.data).not.toMatch(
        /secret-event|secret-source|secret-prompt|someone@example\.com|user_email|prompt/,
      );
    }
    process.stdout.write(
      `[uplink] captured ${seen.length} messages on the hub: ${JSON.stringify(Object.fromEntries(kinds))}\n`,
    );
    expect(kinds.get('up.aggregates')).toBeGreaterThan(0);
  });
});
