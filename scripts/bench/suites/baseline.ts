/**
 * Every baseline, in saturation and in open loop: the machine's ceiling for a bare HTTP
 * route, Redis, NATS and PostgreSQL COPY, with this generator on the same machine.
 */
import { COPY_CASE, COPY_ROWS_PER_OP } from '../lib/baselines.ts';
import type { SuiteContext } from '../lib/suite.ts';

export const name = 'baseline';
export const description =
  'the floors other suites compare against: fastify echo, Redis, NATS, PostgreSQL COPY';

export async function run(ctx: SuiteContext): Promise<void> {
  const http = await ctx.baselines.httpEcho();
  await ctx.measure('fastify echo', http.post);

  const redis = await ctx.baselines.redis();
  await ctx.measure('redis PING', redis.ping);
  await ctx.measure('redis EVALSHA return 1', redis.evalsha);

  const nats = await ctx.baselines.nats();
  await ctx.measure('nats publish+flush', nats.publish);
  await ctx.measure('jetstream publish', nats.jetstreamPublish);

  const postgres = await ctx.baselines.postgres();
  await ctx.measure(`pg COPY ${COPY_ROWS_PER_OP} rows`, postgres.copy, COPY_CASE);
}
