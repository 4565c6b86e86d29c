/**
 * The full decision waterfall over HTTP: `POST /v1/decisions` on the all-in-one app (gate,
 * governance, credits and their workers in one process, as `npm start` runs it on the real
 * servers), beside a bare fastify echo route measured in the same run. Two cases: one customer
 * with a plan, three budgets, a rate limit and a credit pool (every limit checked on every
 * request, none binding), and 10,000 customers picked at random. Throughput at saturation,
 * then p50/p99 in open loop at half of that throughput, the echo at the same rate beside it.
 */
import { fileURLToPath } from 'node:url';
import { generateApiKey } from '@allot/kit';
import { freshPgDatabase } from '@allot/kit/testing';
import { uniqueName } from '../lib/baselines.ts';
import { jsonPoster, startServer } from '../lib/server.ts';
import type { SuiteContext } from '../lib/suite.ts';

export const name = 'gate';
export const description = 'POST /v1/decisions (full waterfall, durable reservation) vs a bare fastify echo';

const CUSTOMERS = 10_000;
const CONCURRENCY = 64;

export async function run(ctx: SuiteContext): Promise<void> {
  const echo = await ctx.baselines.httpEcho();
  const echoMax = ctx.report({
    case: 'fastify echo',
    result: await ctx.saturation('fastify echo', echo.post, CONCURRENCY),
  });

  const key = generateApiKey();
  const db = await freshPgDatabase();
  process.stderr.write(`starting the gate server with ${CUSTOMERS} customers (a minute or two)\n`);
  const server = await startServer(fileURLToPath(new URL('../servers/gate.ts', import.meta.url)), {
    env: {
      BENCH_API_KEY: key,
      BENCH_PREFIX: uniqueName('bgate'),
      BENCH_DATABASE_URL: db.url,
      BENCH_REDIS_URL: ctx.baselines.targets.redisUrl,
      BENCH_NATS_URL: ctx.baselines.targets.natsUrl,
      BENCH_CUSTOMERS: String(CUSTOMERS),
    },
    timeoutMs: 600_000,
  });
  const headers = { authorization: `Bearer ${key}` };
  let agent = 0;
  const hot = jsonPoster(
    server.origin,
    '/v1/decisions',
    () => ({
      customerId: 'hot',
      feature: 'llm-tokens',
      units: 1200,
      dimensions: { agent: `a${agent++ % 100}`, model: 'gpt-5' },
      ttlMs: 60_000,
    }),
    headers,
  );
  const many = jsonPoster(
    server.origin,
    '/v1/decisions',
    () => ({
      customerId: `c${Math.floor(Math.random() * CUSTOMERS)}`,
      feature: 'llm-tokens',
      units: 1200,
      ttlMs: 60_000,
    }),
    headers,
  );
  try {
    for (const [label, client] of [
      ['decide, one customer (3 budgets, rate limit, pool)', hot],
      [`decide, ${CUSTOMERS.toLocaleString('en')} customers`, many],
    ] as const) {
      const max = ctx.report({
        case: label,
        result: await ctx.saturation(label, client.post, CONCURRENCY),
        baseline: echoMax,
      });
      const rate = Math.max(100, Math.floor(max.result.opsPerSec / 2 / 100) * 100);
      const echoAtRate = ctx.report({
        case: 'fastify echo',
        result: await ctx.openLoop('fastify echo', echo.post, rate),
      });
      ctx.report({
        case: label,
        result: await ctx.openLoop(label, client.post, rate),
        baseline: echoAtRate,
        note: 'open loop at half of its own saturation throughput; p99 from each intended start',
      });
    }
  } finally {
    await hot.close();
    await many.close();
    await server.stop();
    await db.drop();
  }
}
