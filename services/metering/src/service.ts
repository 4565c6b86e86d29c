/**
 * Metering assembled: its schema, the meters from the configuration replica, the ingest
 * publisher and (unless `worker: false`) the worker that applies the stream to PostgreSQL.
 */
import { fileURLToPath } from 'node:url';
import type { Bus } from '@allot/kit/bus';
import { ConfigReplica, ConfigStore, migrateConfig } from '@allot/kit/config-store';
import { migrate, type SqlStore } from '@allot/kit/sql';
import type { StreamWorkerLog } from '@allot/kit/stream-worker';
import type { Registry } from 'prom-client';
import { EventIngest } from './ingest.ts';
import { MeterCatalog } from './meters.ts';
import { DEFAULT_PARTITIONS } from './stream.ts';
import { MeteringWorker } from './worker/worker.ts';

const MIGRATIONS = fileURLToPath(new URL('../migrations', import.meta.url));
const DAY = 86_400_000;

export async function migrateMetering(sql: SqlStore): Promise<string[]> {
  await migrateConfig(sql);
  return migrate(sql, { schema: 'metering', dir: MIGRATIONS });
}

export interface MeteringOptions {
  sql: SqlStore;
  bus: Bus;
  /** Share the configuration store and replica of a process that has them (the gate's). */
  config?: { store: ConfigStore; replica: ConfigReplica };
  /** Run the worker in this process. Default true. */
  worker?: boolean;
  partitions?: number;
  /** How old an event may be when it arrives. Default 7 days. */
  latenessMs?: number;
  retentionMs?: number;
  log?: StreamWorkerLog;
  registry?: Registry;
}

export interface MeteringService {
  ingest: EventIngest;
  meters: MeterCatalog;
  config: { store: ConfigStore; replica: ConfigReplica };
  worker: MeteringWorker | undefined;
  latenessMs: number;
  close(): Promise<void>;
}

export async function startMetering(options: MeteringOptions): Promise<MeteringService> {
  await migrateMetering(options.sql);
  let config = options.config;
  let ownReplica: ConfigReplica | undefined;
  if (!config) {
    const store = new ConfigStore(options.sql, options.bus);
    ownReplica = new ConfigReplica({ store, bus: options.bus, ...(options.log ? { log: options.log } : {}) });
    await ownReplica.start();
    config = { store, replica: ownReplica };
  }
  const meters = new MeterCatalog(config.replica);
  const partitions = options.partitions ?? DEFAULT_PARTITIONS;
  const latenessMs = options.latenessMs ?? 7 * DAY;
  const ingest = new EventIngest(options.bus, { partitions });
  const worker =
    options.worker === false
      ? undefined
      : new MeteringWorker({
          store: options.sql,
          bus: options.bus,
          meters,
          partitions,
          latenessMs,
          ...(options.retentionMs ? { retentionMs: options.retentionMs } : {}),
          ...(options.log ? { log: options.log } : {}),
          ...(options.registry ? { registry: options.registry } : {}),
        });
  await worker?.start();
  return {
    ingest,
    meters,
    config,
    worker,
    latenessMs,
    async close() {
      await worker?.stop();
      await ownReplica?.stop();
    },
  };
}
