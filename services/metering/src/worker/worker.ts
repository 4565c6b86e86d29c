/**
 * The metering worker: applies the METERING stream's partitions to PostgreSQL (raw events,
 * deduplication, aggregates; see store/writer.ts), exactly once across crashes and
 * redeliveries, and turns the gate's settled reservations (on the hot-path stream) into usage
 * events of type `allot.reservation.settled`. Several workers split the partitions between
 * them (`partitions`); each partition has its own durable consumer.
 */

import { formatAmount } from '@allot/contracts/amount';
import { creditsStreamConfig } from '@allot/credits';
import type { Bus, BusMessage } from '@allot/kit/bus';
import type { SqlStore } from '@allot/kit/sql';
import { StreamWorker, type StreamWorkerLog } from '@allot/kit/stream-worker';
import { Counter, type Registry } from 'prom-client';
import type { UsageEvent } from '../domain/events.ts';
import type { MeterCatalog } from '../meters.ts';
import {
  type ApplyResult,
  applyBatches,
  EventPartitions,
  type IngestedBatch,
  partitionDays,
} from '../store/writer.ts';
import { DEFAULT_PARTITIONS, METERING_STREAM, meteringStreamConfig, partitionConsumer } from '../stream.ts';

export const SETTLED_EVENT_TYPE = 'allot.reservation.settled';
export const SETTLED_EVENT_SOURCE = 'allot:gate';
const DAY = 86_400_000;

export interface MeteringWorkerOptions {
  store: SqlStore;
  bus: Bus;
  meters: MeterCatalog;
  /** Partitions of the stream (as ingest splits them). Default 4. */
  partitions?: number;
  /** The partitions this worker takes. Default all of them. */
  take?: readonly number[];
  /** Also turn the gate's settles into usage events (one worker per deployment). Default true. */
  settledUsage?: boolean;
  /** How long raw events are kept (by event day). Default 30 days. */
  retentionMs?: number;
  /**
   * How old an event may be when it arrives (ingest refuses older ones). (source, id) pairs
   * are remembered a day longer, so one still in the stream is covered. Default 7 days.
   */
  latenessMs?: number;
  ackWaitMs?: number;
  fetchMax?: number;
  maxEventsPerCommit?: number;
  log?: StreamWorkerLog;
  registry?: Registry;
}

export interface MeteringStats {
  events: number;
  fresh: number;
  duplicates: number;
  skipped: number;
}

export class MeteringWorker {
  readonly #o: MeteringWorkerOptions;
  readonly #workers: StreamWorker<IngestedBatch, ApplyResult>[] = [];
  readonly #partitions: EventPartitions;
  readonly #stats: MeteringStats = { events: 0, fresh: 0, duplicates: 0, skipped: 0 };
  readonly #metrics: { events: Counter<'outcome'> } | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;

  constructor(options: MeteringWorkerOptions) {
    this.#o = options;
    this.#partitions = new EventPartitions(options.store);
    this.#metrics = options.registry
      ? {
          events: new Counter({
            name: 'allot_metering_worker_events_total',
            help: 'Events applied, by outcome: fresh (counted), duplicate (seen before), skipped (a meter could not read its value)',
            labelNames: ['outcome'],
            registers: [options.registry],
          }),
        }
      : undefined;
    const count = options.partitions ?? DEFAULT_PARTITIONS;
    const take = options.take ?? Array.from({ length: count }, (_, i) => i);
    const ackWaitMs = options.ackWaitMs ?? 30_000;
    const common = {
      store: options.store,
      bus: options.bus,
      weight: (batch: IngestedBatch) => batch.events.length,
      prepare: (batches: readonly IngestedBatch[]) =>
        this.#partitions.ensure(partitionDays(batches.flatMap((b) => b.events.map((e) => e.time)))),
      commit: (tx: Parameters<typeof applyBatches>[0], batches: readonly IngestedBatch[]) =>
        applyBatches(tx, batches, (tenant, type) => options.meters.forType(tenant, type)),
      afterCommit: (_: unknown, result: ApplyResult) => this.#count(result),
      ...(options.log ? { log: options.log } : {}),
      fetchMax: options.fetchMax ?? 32,
      maxWeightPerCommit: options.maxEventsPerCommit ?? 20_000,
      concurrency: 1,
    };
    for (const [i, partition] of take.entries()) {
      this.#workers.push(
        new StreamWorker<IngestedBatch, ApplyResult>({
          ...common,
          name: 'metering',
          stream: meteringStreamConfig,
          consumer: partitionConsumer(partition, ackWaitMs),
          decode: decodeBatch,
          // One set of metrics for the partitions of this process.
          ...(i === 0 && options.registry ? { registry: options.registry } : {}),
        }),
      );
    }
    if (options.settledUsage ?? true) {
      this.#workers.push(
        new StreamWorker<IngestedBatch, ApplyResult>({
          ...common,
          name: 'metering_settled',
          stream: creditsStreamConfig,
          consumer: { durable: 'metering-settled', ackWaitMs },
          decode: decodeSettled,
          maxWeightPerCommit: 20_000,
        }),
      );
    }
  }

  get stats(): Readonly<MeteringStats> {
    return { ...this.#stats };
  }

  async start(): Promise<void> {
    await this.#o.bus.ensureStream(meteringStreamConfig);
    for (const worker of this.#workers) await worker.start();
    const prune = () => {
      void this.prune().catch((error: unknown) =>
        this.#o.log?.warn({ err: error }, 'metering worker: retention pass failed'),
      );
    };
    prune();
    this.#pruneTimer = setInterval(prune, 3_600_000);
    this.#pruneTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#pruneTimer);
    await Promise.all(this.#workers.map((w) => w.stop()));
  }

  /** Resolves once everything stored on the streams before the call is applied. */
  async caughtUp(options: { timeoutMs?: number } = {}): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.caughtUp(options)));
  }

  /** Drops raw partitions past the retention and forgets (source, id) pairs past the dedupe window. */
  prune(now = Date.now()) {
    return this.#partitions.prune(
      now,
      this.#o.retentionMs ?? 30 * DAY,
      (this.#o.latenessMs ?? 7 * DAY) + DAY,
    );
  }

  #count(result: ApplyResult): void {
    this.#stats.events += result.events;
    this.#stats.fresh += result.fresh;
    this.#stats.duplicates += result.duplicates;
    this.#stats.skipped += result.skipped;
    this.#metrics?.events.inc({ outcome: 'fresh' }, result.fresh);
    this.#metrics?.events.inc({ outcome: 'duplicate' }, result.duplicates);
    this.#metrics?.events.inc({ outcome: 'skipped' }, result.skipped);
  }
}

function decodeBatch(message: BusMessage): IngestedBatch | { malformed: string } {
  try {
    const batch = JSON.parse(Buffer.from(message.data).toString('utf8')) as IngestedBatch;
    if (typeof batch.tenant !== 'string' || !Array.isArray(batch.events)) {
      return { malformed: 'expected { tenant, ingestedAt, events }' };
    }
    return batch;
  } catch (error) {
    return { malformed: (error as Error).message };
  }
}

interface SettledLike {
  type?: string;
  tenant?: string;
  customerId?: string;
  reservationId?: string;
  feature?: string;
  creditType?: string;
  units?: string;
  cost?: string;
  at?: number;
}

/** The gate's settles on the hot-path stream, as usage events (one message: one batch per tenant). */
function decodeSettled(message: BusMessage): IngestedBatch | { malformed: string } {
  let raw: { decisions?: SettledLike[] };
  try {
    raw = JSON.parse(Buffer.from(message.data).toString('utf8')) as typeof raw;
  } catch (error) {
    return { malformed: (error as Error).message };
  }
  const events: UsageEvent[] = [];
  let tenant = '';
  for (const r of raw.decisions ?? []) {
    if (r.type !== 'settled' || !r.tenant || !r.customerId || !r.reservationId || !r.feature) continue;
    // A hot-path message is one customer's, so one tenant's.
    tenant = r.tenant;
    events.push({
      id: r.reservationId,
      source: SETTLED_EVENT_SOURCE,
      type: SETTLED_EVENT_TYPE,
      subject: r.customerId,
      time: typeof r.at === 'number' ? r.at : Date.now(),
      data: {
        feature: r.feature,
        units: formatAmount(BigInt(r.units ?? '0')),
        creditType: r.creditType || null,
        cost: formatAmount(BigInt(r.cost ?? '0')),
      },
    });
  }
  // A message with nothing to meter is applied as an empty batch (and acknowledged).
  return { tenant, ingestedAt: Date.now(), events };
}

export { METERING_STREAM };
