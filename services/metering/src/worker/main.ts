/**
 * The metering worker as a process of its own:
 * `DATABASE_URL=... NATS_URL=... node --import tsx services/metering/src/worker/main.ts`.
 * Migrates the metering schema, then applies the METERING stream's partitions (all, or
 * `METERING_TAKE`, e.g. `0,1` for one of two workers) and the gate's settles until SIGTERM or
 * SIGINT, on which it finishes the batches in hand and exits 0. Killed outright, it loses
 * nothing: what it had not acknowledged is redelivered, and applied once.
 */
import {
  baseEnv,
  envBoolean,
  loadConfig,
  loggerOptions,
  probesApp,
  redactUrl,
  runMain,
  stopOnSignal,
  urlListVariable,
  urlVariable,
} from '@allot/kit';
import { openBus } from '@allot/kit/bus';
import { ConfigReplica, ConfigStore } from '@allot/kit/config-store';
import { openSqlStore } from '@allot/kit/sql';
import { pino } from 'pino';
import { z } from 'zod';
import { MeterCatalog } from '../meters.ts';
import { migrateMetering } from '../service.ts';
import { DEFAULT_PARTITIONS } from '../stream.ts';
import { MeteringWorker } from './worker.ts';

const DAY = 86_400_000;

const workerEnv = baseEnv.extend({
  DATABASE_URL: urlVariable(['postgres:', 'postgresql:'], 'PostgreSQL'),
  NATS_URL: urlListVariable(['nats:', 'tls:'], 'NATS'),
  NATS_PREFIX: z.string().optional(),
  /** Partitions of the stream; every ingest and worker process must agree. */
  METERING_PARTITIONS: z.coerce.number().int().min(1).max(256).default(DEFAULT_PARTITIONS),
  /** The partitions this worker applies, comma-separated. Default all. */
  METERING_TAKE: z
    .string()
    .regex(/^\d{1,3}(,\d{1,3})*$/, 'expected partition numbers like 0,1')
    .optional(),
  /** Whether this worker also turns the gate's settles into usage events (one per deployment). */
  METERING_SETTLED_USAGE: envBoolean.default(true),
  METERING_LATENESS_MS: z.coerce
    .number()
    .int()
    .min(60_000)
    .default(7 * DAY),
  METERING_RETENTION_MS: z.coerce
    .number()
    .int()
    .min(DAY)
    .default(30 * DAY),
  METERING_ACK_WAIT_MS: z.coerce.number().int().min(100).default(30_000),
});

runMain('metering worker', async () => {
  const env = loadConfig(workerEnv);
  const log = pino(loggerOptions({ service: 'metering-worker', level: env.LOG_LEVEL }));
  const take = env.METERING_TAKE?.split(',').map(Number);
  if (take?.some((p) => p >= env.METERING_PARTITIONS)) {
    throw new Error(`METERING_TAKE: partitions go from 0 to ${env.METERING_PARTITIONS - 1}`);
  }
  const store = await openSqlStore({ url: env.DATABASE_URL, max: 4 });
  const applied = await migrateMetering(store);
  const bus = await openBus({
    url: env.NATS_URL,
    name: 'metering-worker',
    replicas: env.NATS_REPLICAS,
    ...(env.NATS_PREFIX === undefined ? {} : { prefix: env.NATS_PREFIX }),
  });
  const replica = new ConfigReplica({ store: new ConfigStore(store, bus), bus, log });
  await replica.start();
  const probes = await probesApp({
    service: 'metering-worker',
    logLevel: env.LOG_LEVEL,
    readiness: [
      { name: 'postgres', check: () => store.ping(), timeoutMs: 2000 },
      { name: 'nats', check: () => bus.ping(), timeoutMs: 1000 },
    ],
  });
  const worker = new MeteringWorker({
    store,
    bus,
    meters: new MeterCatalog(replica),
    partitions: env.METERING_PARTITIONS,
    ...(take ? { take } : {}),
    settledUsage: env.METERING_SETTLED_USAGE,
    latenessMs: env.METERING_LATENESS_MS,
    retentionMs: env.METERING_RETENTION_MS,
    ackWaitMs: env.METERING_ACK_WAIT_MS,
    ...(probes ? { registry: probes.metrics } : {}),
    log,
  });
  await worker.start();
  log.info(
    {
      database: redactUrl(env.DATABASE_URL),
      nats: redactUrl(env.NATS_URL),
      migrations: applied,
      partitions: take ?? 'all',
    },
    'metering worker started',
  );

  stopOnSignal('metering worker', {
    graceMs: env.SHUTDOWN_GRACE_MS,
    log,
    stop: async () => {
      await probes?.close();
      await worker.stop();
      await replica.stop();
      await Promise.allSettled([bus.close(), store.close()]);
      return worker.stats;
    },
  });
  // Probed ready only now: a SIGTERM from here on finishes the batch in hand.
  await probes?.listen({ host: env.HOST, port: env.PORT });
});
