/**
 * The gate deployed as in production: the gate process (services/gate/src/standalone.ts:
 * decisions, catalog, governance, the credits engine as a library) and, in a child process,
 * the hot-path stream worker (services/credits/src/worker/main.ts) that writes the ledger and
 * the decision log; on the real servers the bench targets, on a fresh database
 * (BENCH_DATABASE_URL), Redis key prefix and NATS namespace (BENCH_PREFIX). Before it listens
 * it loads the bench's configuration:
 * - customer `hot`: plan pro (metered tokens at 0.002 credits), a customer-wide monthly budget,
 *   a team budget (agents a0..a99 under team t1), a per-agent daily budget (`agent: *`), a rate
 *   limit per minute, and a pool of a billion credits: every limit is checked on every request
 *   and none ever binds;
 * - customers c0..c<BENCH_CUSTOMERS - 1>: the same plan, one monthly budget and a pool each,
 *   written in bulk, and each loaded into the hot state before the port is announced.
 * Logs at BENCH_LOG_LEVEL (default warn: no access log line per request).
 *
 * Scaled out (the `scale` suite): BENCH_REDIS_CLUSTER=true (BENCH_REDIS_URL is a Redis Cluster
 * node), BENCH_NATS_REPLICAS=3 (a JetStream cluster), and for a second gate process on the same
 * stores BENCH_SEED=false (the first one wrote the configuration and loaded the customers) and
 * BENCH_WORKER=false (one stream worker is enough).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { StaticApiKeyStore } from '@allot/kit';
import { NatsBus } from '@allot/kit/bus';
import { migrateConfig } from '@allot/kit/config-store';
import { RedisHotState } from '@allot/kit/hot';
import { PgStore } from '@allot/kit/sql';
import { insertGrant } from '../../../services/credits/src/store/ledger.ts';
import { buildGateApp } from '../../../services/gate/src/standalone.ts';
import { announceListening } from '../lib/server.ts';

const need = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const key = need('BENCH_API_KEY');
const prefix = need('BENCH_PREFIX');
const customers = Number(process.env.BENCH_CUSTOMERS ?? 10_000);
const tenant = 'bench';

const seed = process.env.BENCH_SEED !== 'false';
const replicas = Number(process.env.BENCH_NATS_REPLICAS ?? 1);
const sql = new PgStore({ url: need('BENCH_DATABASE_URL'), max: 8 });
const hot = await RedisHotState.open({
  url: need('BENCH_REDIS_URL'),
  prefix: `${prefix}:`,
  ...(process.env.BENCH_REDIS_CLUSTER === 'true' ? { cluster: true } : {}),
});
const bus = await NatsBus.connect({ url: need('BENCH_NATS_URL'), prefix, replicas });
// A Redis that has been up a while: first loads need not wait out the publish bound.
await hot.call('SET', 'allot:credits:epoch', '0');

// The many customers go in as documents in bulk, before the app (and its replica) starts.
await migrateConfig(sql);
if (seed) await seedCustomers();
async function seedCustomers(): Promise<void> {
  await sql.query(
    `WITH docs AS (
     SELECT 'customer' AS kind, 'c' || i AS id, jsonb_build_object('name', 'Customer ' || i) AS body, i FROM generate_series(0, $1 - 1) i
     UNION ALL
     SELECT 'subscription', 'c' || i, '{"plan":"pro","addons":[],"overrides":[]}'::jsonb, i FROM generate_series(0, $1 - 1) i
     UNION ALL
     SELECT 'budget', 'c' || i || '-monthly', jsonb_build_object('customerId', 'c' || i, 'scope', '{}'::jsonb,
       'metric', 'credits', 'period', 'month', 'limit', '1000000000', 'mode', 'hard', 'kind', 'budget', 'alerts', '[]'::jsonb), i
     FROM generate_series(0, $1 - 1) i
   ), numbered AS (SELECT kind, id, body, row_number() OVER () AS version FROM docs)
   INSERT INTO config.documents (tenant, kind, id, body, version, updated_at)
   SELECT $2, kind, id, body, version, now() FROM numbered`,
    [customers, tenant],
  );
  await sql.query('INSERT INTO config.versions (tenant, version) VALUES ($1, $2)', [tenant, customers * 3]);
}

// The stream worker, as its own process (its logs to this process's stderr).
const worker = process.env.BENCH_WORKER === 'false' ? undefined : spawnWorker();
function spawnWorker() {
  const child = spawn(
    process.execPath,
    [
      '--import',
      import.meta.resolve('tsx'),
      fileURLToPath(new URL('../../../services/credits/src/worker/main.ts', import.meta.url)),
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        DATABASE_URL: need('BENCH_DATABASE_URL'),
        NATS_URL: need('BENCH_NATS_URL'),
        NATS_PREFIX: prefix,
        NATS_REPLICAS: String(replicas),
        LOG_LEVEL: 'warn',
      },
    },
  );
  process.once('exit', () => child.kill('SIGKILL'));
  return child;
}

const keys = new StaticApiKeyStore([{ key, principal: { keyId: 'bench', tenant, scopes: ['admin'] } }]);
const env = { LOG_LEVEL: (process.env.BENCH_LOG_LEVEL ?? 'warn') as 'warn', ALLOT_FAIL_OPEN: false };
const app = await buildGateApp(env, { sql, hot, bus, readiness: [], close: async () => {} }, keys);
await app.ready();
if (seed) await seedCatalog();
async function seedCatalog(): Promise<void> {
  const call = async (method: 'PUT' | 'POST', url: string, payload: object) => {
    const res = await app.inject({ method, url, payload, headers: { authorization: `Bearer ${key}` } });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
  };
  await call('PUT', '/v1/features/llm-tokens', { name: 'LLM tokens', type: 'metered' });
  await call('PUT', '/v1/plans/pro', {
    name: 'Pro',
    entitlements: [{ feature: 'llm-tokens' }],
    creditRates: [{ feature: 'llm-tokens', creditType: 'credits', rate: '0.002' }],
  });
  await call('PUT', '/v1/customers/hot', { name: 'Hot' });
  await call('PUT', '/v1/customers/hot/subscription', { plan: 'pro' });
  await call('PUT', '/v1/customers/hot/entities/t1', { type: 'team' });
  for (let i = 0; i < 100; i++)
    await call('PUT', `/v1/customers/hot/entities/a${i}`, { type: 'agent', parentId: 't1' });
  const huge = '1000000000';
  await call('PUT', '/v1/budgets/hot-monthly', { customerId: 'hot', period: 'month', limit: huge });
  await call('PUT', '/v1/budgets/hot-team', {
    customerId: 'hot',
    scope: { team: 't1' },
    period: 'month',
    limit: huge,
  });
  await call('PUT', '/v1/budgets/hot-agent', {
    customerId: 'hot',
    scope: { agent: '*' },
    period: 'day',
    limit: huge,
  });
  await call('PUT', '/v1/budgets/hot-rate', {
    customerId: 'hot',
    kind: 'rate',
    metric: 'requests',
    period: 'rolling:60000',
    limit: huge,
  });

  // A pool for each of the many customers (in PostgreSQL: the first decision loads it into the
  // hot state), then one decision each, so every one is loaded before the measurement.
  const ids = ['hot', ...Array.from({ length: customers }, (_, i) => `c${i}`)];
  for (let i = 0; i < ids.length; i += 200) {
    await Promise.all(
      ids.slice(i, i + 200).map(async (customerId) => {
        await insertGrant(sql, {
          tenant,
          id: `gr_${randomUUID()}`,
          customerId,
          creditType: 'credits',
          resourceId: '',
          amount: 1_000_000_000_000_000n,
          category: 'paid',
          effectiveAt: new Date(0),
          expiresAt: null,
          costBasis: null,
          metadata: {},
          idempotencyKey: `g-${customerId}`,
        });
        await call('POST', '/v1/decisions', { customerId, feature: 'llm-tokens', units: 1, ttlMs: 1000 });
      }),
    );
    if (i % 2000 === 0) process.stderr.write(`gate server: ${i + 200} of ${ids.length} customers loaded\n`);
  }
}

// BENCH_CPU_PROFILE=<file>: a CPU profile of the measured part only (after the setup above).
const profile = process.env.BENCH_CPU_PROFILE ? await startProfile() : undefined;
await app.listen({ host: '127.0.0.1', port: 0 });
announceListening(app.server, async () => {
  await profile?.();
  worker?.kill('SIGTERM');
  await app.close();
  await Promise.allSettled([bus.close(), hot.close(), sql.close()]);
});

async function startProfile(): Promise<() => Promise<void>> {
  const { Session } = await import('node:inspector/promises');
  const { writeFile } = await import('node:fs/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(process.env.BENCH_CPU_PROFILE!, JSON.stringify(profile));
  };
}
