/**
 * The credits worker: applies the CREDITS stream to the PostgreSQL ledger, on the kit's
 * `StreamWorker` (group commit, ack after commit, malformed messages terminated, refused ones
 * retried alone). A crash between commit and ack redelivers a batch, which changes nothing:
 * `applyEvents` is idempotent by event id.
 */
import type { Bus, BusMessage, Consumer } from '@allot/kit/bus';
import type { SqlExecutor, SqlStore } from '@allot/kit/sql';
import { groupByWeight, StreamWorker, streamCaughtUp } from '@allot/kit/stream-worker';
import { Counter, type Registry } from 'prom-client';
import { CREDITS_STREAM, type CreditEvent, creditEventBatch } from '../domain/events.ts';
import { applyEvents, creditEventProblem } from '../store/ledger.ts';

export const CREDITS_SUBJECTS = 'credits.ev.>';
export const CREDITS_DURABLE = 'credits-ledger';
const SEVEN_DAYS_MS = 7 * 24 * 60 * 60 * 1000;
// Short, so a crashed worker's batch is redelivered (and the ledger catches up) within seconds;
// a group commit takes milliseconds.
const DEFAULT_ACK_WAIT_MS = 5_000;

/**
 * The durable consumer as the worker binds it. Anything else binding it (`ledgerCaughtUp` from
 * another process) must pass the same settings, or it reconfigures the worker's consumer.
 */
export const creditsConsumerConfig = { durable: CREDITS_DURABLE, ackWaitMs: DEFAULT_ACK_WAIT_MS };

/** The CREDITS stream as every publisher and the worker declare it. */
export const creditsStreamConfig = {
  name: CREDITS_STREAM,
  subjects: [CREDITS_SUBJECTS],
  // Publishers set Nats-Msg-Id, so a publish retried within two minutes is stored once.
  duplicateWindowMs: 120_000,
  maxAgeMs: SEVEN_DAYS_MS,
};

/** pino's logger fits. */
export interface WorkerLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CreditsWorkerOptions {
  store: SqlStore;
  bus: Bus;
  log?: WorkerLog;
  /** Messages per fetch. Default 64. */
  fetchMax?: number;
  /**
   * Most events in one transaction: what a fetch brought is committed in groups of whole messages
   * up to this many events (a larger message alone), so big messages do not make huge
   * transactions. Default 4000.
   */
  maxEventsPerCommit?: number;
  /** How long a fetch waits for a first message; also how long `stop` may wait for one. Default 500 ms. */
  fetchExpiresMs?: number;
  /** Unacknowledged messages come back after this. Default 30 s. */
  ackWaitMs?: number;
  /**
   * Group commits in flight at once. Two keep PostgreSQL busy while the next batch is fetched
   * and the last one acknowledged. Default 2.
   */
  concurrency?: number;
  /** Redelivery delay after a failed commit: doubles per delivery from `retryInitialMs` up to `retryMaxMs`. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Where to register the worker's Prometheus metrics. */
  registry?: Registry;
  /** Work that goes with each group commit (the credit alerts' marks, `alerts.ts`). */
  hooks?: CommitHooks;
  /**
   * Applies the records other services put beside the credit events (`decisions`: the gate's
   * decision log and budget usage), in the same transaction as the events they came with.
   */
  records?: RecordApplier;
}

/** Another service's part of the hot-path stream, applied with the credit events. */
export interface RecordApplier {
  /** What of one message's `decisions` it can apply; what it cannot, it logs and leaves out. */
  parse(raw: unknown, message: { seq: number; subject: string }): unknown[];
  apply(tx: SqlExecutor, records: readonly unknown[]): Promise<void>;
  /** Runs once the commit is durable; must not throw. */
  afterCommit?(records: readonly unknown[]): void;
}

/** Work done with each group commit. */
export interface CommitHooks {
  /** Runs in the commit's transaction once the events are applied; throwing rolls the commit back. */
  inTransaction?(tx: SqlExecutor, events: readonly CreditEvent[]): Promise<void>;
  /** Runs once the commit is durable, before the acknowledgements; must not throw. */
  afterCommit?(events: readonly CreditEvent[]): void;
}

export interface WorkerStats {
  /** Events applied (counted per group commit, before deduplication against the ledger). */
  eventsApplied: number;
  ledgerEntries: number;
  /** Group commits that succeeded. */
  batches: number;
  messagesApplied: number;
  /** Messages terminated because they were not a batch of credit events. */
  malformed: number;
  /** Events dropped from a well-formed message because the ledger cannot take them. */
  rejectedEvents: number;
  /** Messages handed back for redelivery after a failed commit. */
  retried: number;
}

interface Decoded {
  events: CreditEvent[];
  records: unknown[];
}

export class CreditsWorker {
  readonly #bus: Bus;
  readonly #log: WorkerLog;
  readonly #metrics: WorkerMetrics | undefined;
  readonly #hooks: CommitHooks;
  readonly #records: RecordApplier | undefined;
  readonly #counts = { eventsApplied: 0, ledgerEntries: 0, rejectedEvents: 0 };
  readonly #worker: StreamWorker<Decoded, { events: number; ledgerEntries: number }>;

  constructor(options: CreditsWorkerOptions) {
    this.#bus = options.bus;
    this.#log = options.log ?? silentLog;
    this.#metrics = options.registry ? new WorkerMetrics(options.registry) : undefined;
    this.#hooks = options.hooks ?? {};
    this.#records = options.records;
    this.#worker = new StreamWorker({
      name: 'credits',
      store: options.store,
      bus: options.bus,
      stream: creditsStreamConfig,
      consumer: { ...creditsConsumerConfig, ackWaitMs: options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS },
      decode: (message) => this.#decode(message),
      weight: (d) => d.events.length + d.records.length,
      commit: (tx, batch) => this.#commit(tx, batch),
      afterCommit: (batch, applied) => {
        this.#counts.eventsApplied += applied.events;
        this.#counts.ledgerEntries += applied.ledgerEntries;
        this.#metrics?.events.inc(applied.events);
        this.#metrics?.ledgerEntries.inc(applied.ledgerEntries);
        const events = batch.flatMap((d) => d.events);
        const records = batch.flatMap((d) => d.records);
        this.#hooks.afterCommit?.(events);
        if (records.length > 0) this.#records?.afterCommit?.(records);
      },
      log: this.#log,
      ...(options.fetchMax !== undefined ? { fetchMax: options.fetchMax } : {}),
      ...(options.maxEventsPerCommit !== undefined ? { maxWeightPerCommit: options.maxEventsPerCommit } : {}),
      ...(options.fetchExpiresMs !== undefined ? { fetchExpiresMs: options.fetchExpiresMs } : {}),
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      ...(options.retryInitialMs !== undefined ? { retryInitialMs: options.retryInitialMs } : {}),
      ...(options.retryMaxMs !== undefined ? { retryMaxMs: options.retryMaxMs } : {}),
      ...(options.registry ? { registry: options.registry } : {}),
    });
  }

  get stats(): Readonly<WorkerStats> {
    return { ...this.#worker.stats, ...this.#counts };
  }

  get running(): boolean {
    return this.#worker.running;
  }

  /** Declares the stream and the durable consumer, then applies the stream until `stop`. */
  start(): Promise<void> {
    return this.#worker.start();
  }

  /** Stops fetching, finishes (commits and acknowledges) the batches in hand, and resolves. */
  stop(): Promise<void> {
    return this.#worker.stop();
  }

  /**
   * Resolves once every message stored in the stream before the call is applied and
   * acknowledged (by this worker or another on the same durable). Rejects if this worker stops
   * first or `timeoutMs` passes.
   */
  caughtUp(options: CaughtUpOptions = {}): Promise<void> {
    if (!this.#worker.running) return Promise.reject(new Error('credits worker is not running'));
    return this.#worker.caughtUp(options);
  }

  /** Same as `caughtUp`. */
  drain(options: CaughtUpOptions = {}): Promise<void> {
    return this.caughtUp(options);
  }

  async #commit(
    tx: SqlExecutor,
    batch: readonly Decoded[],
  ): Promise<{ events: number; ledgerEntries: number }> {
    const events = batch.flatMap((d) => d.events);
    const records = batch.flatMap((d) => d.records);
    const applied = await applyEvents(tx, events);
    await this.#hooks.inTransaction?.(tx, events);
    if (records.length > 0) await this.#records?.apply(tx, records);
    return applied;
  }

  #decode(message: BusMessage): Decoded | { malformed: string } {
    let parsed: ReturnType<typeof creditEventBatch.safeParse>;
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder().decode(message.data));
      parsed = creditEventBatch.safeParse(raw);
    } catch (error) {
      return { malformed: error instanceof Error ? error.message : String(error) };
    }
    if (!parsed.success) return { malformed: parsed.error.message };
    const events: CreditEvent[] = [];
    for (const event of parsed.data.events) {
      const problem = creditEventProblem(event);
      if (problem === null) {
        events.push(event);
        continue;
      }
      this.#counts.rejectedEvents++;
      this.#metrics?.rejectedEvents.inc();
      this.#log.error(
        { seq: message.seq, subject: message.subject, eventId: event.id, problem },
        'credits worker: event rejected',
      );
    }
    const decisions = (raw as { decisions?: unknown }).decisions;
    const records =
      decisions === undefined || !this.#records
        ? []
        : this.#records.parse(decisions, { seq: message.seq, subject: message.subject });
    return { events, records };
  }
}

/** Whole messages, in order, into groups of at most `maxEvents` events (a larger message alone). */
export function groupByEvents<M extends { events: readonly unknown[] }>(
  messages: readonly M[],
  maxEvents: number,
  weight: (message: M) => number = (message) => message.events.length,
): M[][] {
  return groupByWeight(messages, maxEvents, weight);
}

export interface CaughtUpOptions {
  timeoutMs?: number;
  /** Between two looks at the consumer. Default 20 ms. */
  pollMs?: number;
}

/**
 * Resolves once the ledger worker (in whichever process) has applied every message stored in
 * the CREDITS stream before the call: the consumer's ack floor has reached the stream's last
 * sequence as it was at the call. Messages published meanwhile are not waited for. Usable
 * where the worker runs elsewhere, e.g. before rebuilding a customer's hot state.
 */
export async function ledgerCaughtUp(
  bus: Bus,
  options: CaughtUpOptions & { consumer?: Consumer; until?: () => void } = {},
): Promise<void> {
  await streamCaughtUp(
    bus,
    CREDITS_STREAM,
    options.consumer ?? (() => bus.consumer(CREDITS_STREAM, creditsConsumerConfig)),
    options,
  );
}

/** The credits worker's own metrics; the kit's worker adds batches, messages, commit time and lag. */
class WorkerMetrics {
  readonly events: Counter;
  readonly ledgerEntries: Counter;
  readonly rejectedEvents: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.events = new Counter({
      name: 'allot_credits_worker_events_applied_total',
      help: 'Credit events applied to the ledger (a redelivered event counts again; the ledger applies it once)',
      registers,
    });
    this.ledgerEntries = new Counter({
      name: 'allot_credits_worker_ledger_entries_total',
      help: 'Ledger entries inserted',
      registers,
    });
    this.rejectedEvents = new Counter({
      name: 'allot_credits_worker_events_rejected_total',
      help: 'Events dropped because the ledger cannot take them (negative or oversized amounts)',
      registers,
    });
  }
}

const silentLog: WorkerLog = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
