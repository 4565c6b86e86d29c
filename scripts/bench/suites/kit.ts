/**
 * The kit's own overhead: each adapter next to the raw client it wraps, same operation,
 * same payload, measured in the same run.
 */
import { fileURLToPath } from 'node:url';
import { generateApiKey } from '@allot/kit';
import { openBus } from '@allot/kit/bus';
import { openHotState } from '@allot/kit/hot';
import { openSqlStore } from '@allot/kit/sql';
import {
  COPY_CASE,
  COPY_COLUMNS,
  COPY_ROWS_PER_OP,
  ECHO_BODY,
  MESSAGE,
  RETURN_ONE,
  uniqueName,
} from '../lib/baselines.ts';
import { jsonPoster, startServer } from '../lib/server.ts';
import type { SuiteContext } from '../lib/suite.ts';

export const name = 'kit';
export const description = "the kit's HTTP app and adapters against the bare fastify route and raw clients";

export async function run(ctx: SuiteContext): Promise<void> {
  await httpApp(ctx);
  await hotState(ctx);
  await bus(ctx);
  await sqlStore(ctx);
}

async function httpApp(ctx: SuiteContext): Promise<void> {
  const bare = await ctx.baselines.httpEcho();
  const baseline = await ctx.measure('fastify echo', bare.post);

  const key = generateApiKey();
  const server = await startServer(fileURLToPath(new URL('../servers/kit-echo.ts', import.meta.url)), {
    env: { BENCH_API_KEY: key },
  });
  const client = jsonPoster(server.origin, '/echo', ECHO_BODY, { authorization: `Bearer ${key}` });
  try {
    await ctx.measure('kit createApp echo', client.post, {
      baseline,
      note: 'createApp with request logging at info, API-key auth, metrics and request ids',
    });
  } finally {
    await client.close();
    await server.stop();
  }
}

async function hotState(ctx: SuiteContext): Promise<void> {
  const raw = await ctx.baselines.redis();
  const baseline = await ctx.measure('redis EVALSHA return 1', raw.evalsha);

  const hot = await openHotState({ url: ctx.baselines.targets.redisUrl });
  try {
    const run = async () => {
      await hot.run(RETURN_ONE, [], []);
    };
    await ctx.measure('kit hot.run return 1', run, {
      baseline,
      note: 'the same one-line script through the adapter (script catalog, defineCommand, reply normalisation)',
    });
  } finally {
    await hot.close();
  }
}

async function bus(ctx: SuiteContext): Promise<void> {
  const raw = await ctx.baselines.nats();
  const baseline = await ctx.measure('jetstream publish', raw.jetstreamPublish);

  const bus = await openBus({ url: ctx.baselines.targets.natsUrl, prefix: uniqueName('bench') });
  try {
    await bus.ensureStream({ name: 'BENCH', subjects: ['bench.>'] });
    const publish = async () => {
      await bus.publish('bench.event', MESSAGE);
    };
    await ctx.measure('kit bus.publish', publish, {
      baseline,
      note: `durable publish of the same ${MESSAGE.length} bytes to a file stream, awaiting the ack`,
    });
  } finally {
    await bus.deleteStream('BENCH');
    await bus.close();
  }
}

async function sqlStore(ctx: SuiteContext): Promise<void> {
  const raw = await ctx.baselines.postgres();
  const baseline = await ctx.measure(`pg COPY ${COPY_ROWS_PER_OP} rows`, raw.copy, COPY_CASE);

  const store = await openSqlStore({ url: ctx.baselines.targets.databaseUrl });
  try {
    const copy = async () => {
      await store.copyFrom(raw.table, COPY_COLUMNS, raw.rows);
    };
    await ctx.measure(`kit sql copyFrom ${COPY_ROWS_PER_OP} rows`, copy, {
      ...COPY_CASE,
      baseline,
      note: 'the same rows as values, escaped and encoded by the adapter on every call',
    });
  } finally {
    await store.close();
  }
}
