/**
 * Scaling out on clustered engines: a 3-node Redis Cluster and a 3-node NATS JetStream cluster
 * with R3 streams, started for the run from the same binaries as the single servers, beside
 * the single Redis and NATS the bench targets, all measured in the same run:
 * - the engines raw: an EVALSHA on Redis and on the cluster (a hash-tagged key), a 128-byte
 *   JetStream publish on R1 and on R3;
 * - decisions/s (`POST /v1/decisions`, the full waterfall, at saturation): one gate process on
 *   the single servers, then one and two gate processes on the clusters (the load spread over
 *   both);
 * - events/s end to end (CloudEvents over HTTP, applied to PostgreSQL): one worker on the
 *   single servers, then one and two workers (two partitions each) on the clusters.
 * Each row's ratio is against the single-server row of its kind. On this 2-core machine every
 * process competes for the same two cores, so a second process shows what clustering costs,
 * not what it gains: docs/scaling.md turns these per-core figures into capacity.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { generateApiKey } from '@allot/kit';
import { freshPgDatabase } from '@allot/kit/testing';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Cluster } from 'ioredis';
import pg from 'pg';
import { Pool } from 'undici';
import { NatsCluster, RedisCluster } from '../../../test/support/clusters.ts';
import { MESSAGE, RETURN_ONE, uniqueName } from '../lib/baselines.ts';
import type { LoadResult, Op } from '../lib/load.ts';
import { jsonPoster, type ServerUnderTest, startServer } from '../lib/server.ts';
import type { Row, SuiteContext } from '../lib/suite.ts';
import { drain, eventBatch, spawnWorker, stopWorker } from '../lib/workers.ts';

export const name = 'scale';
export const description =
  'decisions/s and events/s on one and two processes over a Redis Cluster and a NATS R3 cluster, vs single servers';

const CUSTOMERS = 1_000;
const CONCURRENCY = 64;
const BATCH = 1000;
const CLIENTS = 8;
const GATE = fileURLToPath(new URL('../servers/gate.ts', import.meta.url));
const METERING = fileURLToPath(new URL('../servers/metering.ts', import.meta.url));
const WORKER = fileURLToPath(new URL('../../../services/metering/src/worker/main.ts', import.meta.url));

interface Engines {
  label: string;
  redisUrl: string;
  redisCluster: boolean;
  natsUrl: string;
  replicas: number;
}

export async function run(ctx: SuiteContext): Promise<void> {
  process.stderr.write('starting a 3-node Redis Cluster and a 3-node NATS cluster\n');
  const [redisCluster, natsCluster] = await Promise.all([RedisCluster.start(), NatsCluster.start()]);
  const single: Engines = {
    label: 'single Redis, single NATS (R1)',
    redisUrl: ctx.baselines.targets.redisUrl,
    redisCluster: false,
    natsUrl: ctx.baselines.targets.natsUrl,
    replicas: 1,
  };
  const clustered: Engines = {
    label: 'Redis Cluster ×3, NATS ×3 (R3)',
    redisUrl: redisCluster.url,
    redisCluster: true,
    natsUrl: natsCluster.url,
    replicas: 3,
  };
  try {
    await rawEngines(ctx, redisCluster, natsCluster);
    await decisions(ctx, single, clustered);
    await events(ctx, single, clustered);
  } finally {
    await Promise.all([redisCluster.stop(), natsCluster.stop()]);
  }
}

async function rawEngines(ctx: SuiteContext, redisCluster: RedisCluster, natsCluster: NatsCluster) {
  const redis = await ctx.baselines.redis();
  const singleEval = ctx.report({
    case: 'raw EVALSHA, single Redis',
    result: await ctx.saturation('raw EVALSHA, single Redis', redis.evalsha, CONCURRENCY),
  });
  const cluster = new Cluster([{ host: '127.0.0.1', port: redisCluster.ports[0]! }], {
    enableAutoPipelining: true,
    lazyConnect: true,
  });
  try {
    // The script on every primary, so each EVALSHA finds it wherever its key lives.
    await cluster.connect();
    const [sha] = await Promise.all(
      cluster.nodes('master').map(async (node) => String(await node.script('LOAD', RETURN_ONE.lua))),
    );
    let n = 0;
    ctx.report({
      case: 'raw EVALSHA, Redis Cluster ×3 (keys over all slots)',
      result: await ctx.saturation(
        'raw EVALSHA, Redis Cluster',
        async () => {
          await cluster.evalsha(sha!, 1, `{c${n++ % 10_000}}:k`);
        },
        CONCURRENCY,
      ),
      baseline: singleEval,
    });
  } finally {
    cluster.disconnect();
  }

  const publishRows: Row[] = [];
  for (const [label, url, replicas] of [
    ['raw JetStream publish, single NATS (R1)', ctx.baselines.targets.natsUrl, 1],
    ['raw JetStream publish, NATS ×3 (R3)', natsCluster.url, 3],
  ] as const) {
    const nc = await connect({ servers: url.split(',') });
    const jsm = await jetstreamManager(nc);
    const stream = uniqueName('BENCH_SCALE').toUpperCase();
    const subject = `${stream.toLowerCase()}.ev`;
    await jsm.streams.add({ name: stream, subjects: [subject], num_replicas: replicas });
    const js = jetstream(nc);
    publishRows.push(
      ctx.report({
        case: label,
        result: await ctx.saturation(
          label,
          async () => {
            await js.publish(subject, MESSAGE);
          },
          CONCURRENCY,
        ),
        ...(publishRows[0] ? { baseline: publishRows[0] } : {}),
        note: '128-byte messages, acknowledged by the stream',
      }),
    );
    await jsm.streams.delete(stream);
    await nc.close();
  }
}

async function decisions(ctx: SuiteContext, single: Engines, clustered: Engines) {
  const key = generateApiKey();
  const headers = { authorization: `Bearer ${key}` };
  let baseline: Row | undefined;
  for (const [engines, processes] of [
    [single, 1],
    [clustered, 1],
    [clustered, 2],
  ] as const) {
    const db = await freshPgDatabase();
    const prefix = uniqueName('bscale');
    const servers: ServerUnderTest[] = [];
    const label = `decide, ${processes} gate process${processes > 1 ? 'es' : ''}, ${engines.label}`;
    process.stderr.write(`${label}: starting (${CUSTOMERS} customers)\n`);
    try {
      for (let i = 0; i < processes; i++) {
        servers.push(
          await startServer(GATE, {
            env: {
              BENCH_API_KEY: key,
              BENCH_PREFIX: prefix,
              BENCH_DATABASE_URL: db.url,
              BENCH_REDIS_URL: engines.redisUrl,
              BENCH_REDIS_CLUSTER: String(engines.redisCluster),
              BENCH_NATS_URL: engines.natsUrl,
              BENCH_NATS_REPLICAS: String(engines.replicas),
              BENCH_CUSTOMERS: String(CUSTOMERS),
              BENCH_SEED: String(i === 0),
              BENCH_WORKER: String(i === 0),
            },
            timeoutMs: 600_000,
          }),
        );
      }
      const posters = servers.map((server) =>
        jsonPoster(
          server.origin,
          '/v1/decisions',
          () => ({
            customerId: `c${Math.floor(Math.random() * CUSTOMERS)}`,
            feature: 'llm-tokens',
            units: 1200,
            ttlMs: 60_000,
          }),
          headers,
        ),
      );
      let turn = 0;
      const op: Op = () => posters[turn++ % posters.length]!.post();
      const row = ctx.report({
        case: label,
        result: await ctx.saturation(label, op, CONCURRENCY),
        ...(baseline ? { baseline } : {}),
        note: `${CUSTOMERS.toLocaleString('en-US')} customers picked at random`,
      });
      baseline ??= row;
      await Promise.all(posters.map((p) => p.close()));
    } finally {
      for (const server of servers.reverse()) await server.stop();
      await db.drop();
    }
  }
}

async function events(ctx: SuiteContext, single: Engines, clustered: Engines) {
  let baseline: Row | undefined;
  for (const [engines, takes] of [
    [single, [undefined]],
    [clustered, [undefined]],
    [clustered, ['0,1', '2,3']],
  ] as const) {
    const label = `events end to end, ${takes.length} worker${takes.length > 1 ? 's' : ''}, ${engines.label}`;
    process.stderr.write(`${label}: starting\n`);
    const key = generateApiKey();
    const prefix = uniqueName('bscalem');
    const db = await freshPgDatabase();
    const sql = new pg.Pool({ connectionString: db.url, max: 2 });
    const server = await startServer(METERING, {
      env: {
        BENCH_API_KEY: key,
        BENCH_PREFIX: prefix,
        BENCH_DATABASE_URL: db.url,
        BENCH_NATS_URL: engines.natsUrl,
        BENCH_NATS_REPLICAS: String(engines.replicas),
      },
      timeoutMs: 60_000,
    });
    const http = new Pool(server.origin, { connections: 64 });
    const workers = takes.map((take) =>
      spawnWorker(WORKER, {
        DATABASE_URL: db.url,
        NATS_URL: engines.natsUrl,
        NATS_PREFIX: prefix,
        NATS_REPLICAS: String(engines.replicas),
        LOG_LEVEL: 'warn',
        ...(take ? { METERING_TAKE: take } : {}),
      }),
    );
    try {
      await sleep(3000);
      const applied = async () =>
        Number(
          (
            await sql.query<{ n: string }>(
              "SELECT count(*)::text AS n FROM metering.seen WHERE tenant = 'bench'",
            )
          ).rows[0]?.n ?? 0,
        );
      const post = async () => {
        const res = await http.request({
          method: 'POST',
          path: '/v1/events',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/cloudevents-batch+json' },
          body: JSON.stringify(eventBatch(BATCH)),
        });
        const text = await res.body.text();
        if (res.statusCode !== 204)
          throw new Error(`POST /v1/events: ${res.statusCode} ${text.slice(0, 200)}`);
      };
      const startedAt = performance.now();
      const ingest = await ctx.saturation(label, post, CLIENTS);
      const done = await drain(applied, 180_000);
      const perSec = done.count / ((done.at - startedAt) / 1000);
      const row = ctx.report({
        case: label,
        result: { ...ingest, opsPerSec: perSec / BATCH } as LoadResult,
        ...(baseline ? { baseline } : {}),
        note: `${Math.round(perSec).toLocaleString('en-US')} events/s applied (ingest acknowledged ${Math.round(ingest.opsPerSec * BATCH).toLocaleString('en-US')}/s); ops are ${BATCH}-event requests`,
      });
      baseline ??= row;
    } finally {
      await Promise.all(workers.map(stopWorker));
      await http.close();
      await server.stop();
      await sql.end();
      await db.drop();
    }
  }
}
