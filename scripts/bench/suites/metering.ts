/**
 * Metering end to end: batches of CloudEvents over HTTP from several clients to the ingest
 * process (acknowledged once durable in JetStream), applied by worker processes to PostgreSQL
 * (dedupe, raw COPY, minute aggregates). Beside it, in the same run, the ceilings: raw
 * JetStream publishes of a message the size of one batch, and a raw COPY of the same rows
 * into a table without indexes. For one worker, then two on a partitioned stream:
 * - ingest: requests of 1000 events at saturation (durable events/s);
 * - applied: how fast the worker(s) drained what was ingested (sustained end to end);
 * - lag: at a fixed rate below that, probes from ingest until queryable (p50, p99).
 */
import type { ChildProcess } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { generateApiKey } from '@allot/kit';
import { freshPgDatabase } from '@allot/kit/testing';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { Pool } from 'undici';
import { uniqueName } from '../lib/baselines.ts';
import type { LoadResult, OpenLoopResult } from '../lib/load.ts';
import { startServer } from '../lib/server.ts';
import type { Row, SuiteContext } from '../lib/suite.ts';
import { drain, eventBatch, spawnWorker, stopWorker } from '../lib/workers.ts';

export const name = 'metering';
export const description =
  'CloudEvents over HTTP to queryable aggregates, vs raw JetStream publish and raw COPY';

const BATCH = 1000;
const CLIENTS = 8;
const WORKER = fileURLToPath(new URL('../../../services/metering/src/worker/main.ts', import.meta.url));

export async function run(ctx: SuiteContext): Promise<void> {
  const targets = ctx.baselines.targets;
  // --- the ceilings, same run
  const sample = JSON.stringify({ tenant: 'bench', ingestedAt: Date.now(), events: eventBatch(BATCH) });
  const nc = await connect({ servers: targets.natsUrl });
  const jsm = await jetstreamManager(nc);
  const rawStream = uniqueName('BENCH_METER').toUpperCase();
  const rawSubject = `${rawStream.toLowerCase()}.ev`;
  await jsm.streams.add({ name: rawStream, subjects: [rawSubject] });
  const js = jetstream(nc);
  const payload = new TextEncoder().encode(sample);
  const natsRow = ctx.report({
    case: `raw JetStream publish, ${BATCH}-event message (${Math.round(payload.length / 1024)} KiB)`,
    result: await ctx.saturation(
      'raw JetStream publish',
      async () => {
        await js.publish(rawSubject, payload);
      },
      CLIENTS,
    ),
    note: 'ops are messages; ×1000 for events',
  });
  await jsm.streams.delete(rawStream);
  await nc.close();

  const db = await freshPgDatabase();
  const raw = new pg.Pool({ connectionString: db.url, max: 4 });
  await raw.query(
    'CREATE TABLE bench_events (tenant text, time timestamptz, source text, id text, type text, subject text, data jsonb, ingested_at timestamptz)',
  );
  const rows = eventBatch(BATCH).map(
    (e) =>
      `bench\t${e.time}\t${e.source}\t${e.id}\t${e.type}\t${e.subject}\t${JSON.stringify(e.data)}\t${e.time}\n`,
  );
  const copyBody = Buffer.from(rows.join(''));
  const copyRow = ctx.report({
    case: `raw COPY of ${BATCH} event rows (no indexes)`,
    result: await ctx.saturation(
      'raw COPY',
      async () => {
        const client = await raw.connect();
        try {
          await pipeline(Readable.from([copyBody]), client.query(copyFrom('COPY bench_events FROM STDIN')));
        } finally {
          client.release();
        }
      },
      2,
    ),
    note: 'ops are batches; ×1000 for rows',
  });
  await raw.query('DROP TABLE bench_events');

  // --- the pipeline
  const key = generateApiKey();
  const prefix = uniqueName('bmeter');
  const server = await startServer(fileURLToPath(new URL('../servers/metering.ts', import.meta.url)), {
    env: {
      BENCH_API_KEY: key,
      BENCH_PREFIX: prefix,
      BENCH_DATABASE_URL: db.url,
      BENCH_NATS_URL: targets.natsUrl,
    },
    timeoutMs: 60_000,
  });
  const http = new Pool(server.origin, { connections: 64 });
  const post = async (events: unknown[]) => {
    const res = await http.request({
      method: 'POST',
      path: '/v1/events',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/cloudevents-batch+json' },
      body: JSON.stringify(events),
    });
    const text = await res.body.text();
    if (res.statusCode !== 204) throw new Error(`POST /v1/events: ${res.statusCode} ${text.slice(0, 200)}`);
  };
  const workerEnv = {
    DATABASE_URL: db.url,
    NATS_URL: targets.natsUrl,
    NATS_PREFIX: prefix,
    LOG_LEVEL: 'warn',
  };
  const applied = async () =>
    Number(
      (await raw.query<{ n: string }>("SELECT count(*)::text AS n FROM metering.seen WHERE tenant = 'bench'"))
        .rows[0]!.n,
    );
  let workers: ChildProcess[] = [];
  try {
    for (const take of [[undefined], ['0,1', '2,3']] as const) {
      const label = `${take.length} worker${take.length > 1 ? 's' : ''}`;
      workers = take.map((t) => spawnWorker(WORKER, { ...workerEnv, ...(t ? { METERING_TAKE: t } : {}) }));
      await sleep(3000);
      const before = (await drain(applied, Infinity)).count;
      const startedAt = performance.now();
      const ingest = await ctx.saturation(
        `ingest ${BATCH}-event requests, ${label}`,
        () => post(eventBatch(BATCH)),
        CLIENTS,
      );
      const ingested = ingest.ops * BATCH;
      ctx.report({
        case: `ingest over HTTP, ${BATCH} events a request (${label})`,
        result: ingest,
        baseline: natsRow,
        note: `${Math.round(ingest.opsPerSec * BATCH).toLocaleString('en-US')} durable events/s acknowledged`,
      });
      // Everything ingested (warm-up included) applied: the sustained rate end to end.
      const done = await drain(applied, 180_000);
      const total = done.count;
      const seconds = (done.at - startedAt) / 1000;
      const appliedPerSec = (total - before) / seconds;
      ctx.report({
        case: `applied to PostgreSQL (${label})`,
        result: synthetic(ingest, appliedPerSec / BATCH, ingest.latencyMs),
        baseline: copyRow,
        note: `${Math.round(appliedPerSec).toLocaleString('en-US')} events/s end to end (${(total - before).toLocaleString('en-US')} events in ${seconds.toFixed(1)} s, ${ingested.toLocaleString('en-US')} in the measured window)`,
      });

      // Lag at half of what the workers sustained, in requests of 100 events.
      const rate = Math.max(10, Math.floor(appliedPerSec / 2 / 100));
      const lags: number[] = [];
      let probing = true;
      const probes = (async () => {
        for (let p = 0; probing; p++) {
          const subject = `probe-${label.replace(' ', '')}-${p}`;
          const sent = performance.now();
          await post([
            {
              specversion: '1.0',
              id: `probe-${subject}`,
              source: 'probe',
              type: 'llm',
              subject,
              data: { tokens: 1, model: 'x' },
            },
          ]);
          for (;;) {
            const { rows: found } = await raw.query(
              "SELECT 1 FROM metering.aggregates WHERE tenant = 'bench' AND meter = 'tokens' AND subject = $1 LIMIT 1",
              [subject],
            );
            if (found.length > 0) break;
            await sleep(2);
          }
          lags.push(performance.now() - sent);
          await sleep(50);
        }
      })();
      const load = await ctx.openLoop(
        `ingest at ${rate * 100} events/s, ${label}`,
        () => post(eventBatch(100)),
        rate,
      );
      probing = false;
      await probes;
      lags.sort((a, b) => a - b);
      const pct = (q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))] ?? 0;
      ctx.report({
        case: `ingest → queryable lag (${label})`,
        result: {
          ...load,
          latencyMs: {
            p50: pct(0.5),
            p90: pct(0.9),
            p99: pct(0.99),
            p999: pct(0.999),
            max: lags.at(-1) ?? 0,
            mean: lags.reduce((a, b) => a + b, 0) / Math.max(1, lags.length),
          },
        },
        note: `${lags.length} probes at ${(rate * 100).toLocaleString('en-US')} events/s of load: the time from POST to the probe's aggregate being readable`,
      });
      await Promise.all(workers.map(stopWorker));
      workers = [];
    }
  } finally {
    await Promise.all(workers.map(stopWorker));
    await http.close();
    await server.stop();
    await raw.end();
    await db.drop();
  }
}

function synthetic(like: LoadResult, opsPerSec: number, latencyMs: LoadResult['latencyMs']): LoadResult {
  return { ...like, opsPerSec, latencyMs } as LoadResult;
}

export type { OpenLoopResult, Row };
