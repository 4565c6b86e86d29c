/**
 * The credits worker: applies the CREDITS stream to the PostgreSQL ledger.
 *
 * It pulls up to `fetchMax` messages (each a batch of events), applies them in one transaction
 * (group commit, up to `maxEventsPerCommit` events), and acknowledges them once committed. A
 * crash between commit and ack redelivers them, which changes nothing: `applyEvents` is
 * idempotent by event id. A malformed message is logged and terminated, so it never holds up
 * the stream; a commit that fails is retried message by message, so one message PostgreSQL
 * refuses holds up only itself, redelivered with a growing delay until it goes through.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bus, BusMessage, Consumer } from '@allot/kit/bus';
import type { SqlExecutor, SqlStore } from '@allot/kit/sql';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
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
  message: BusMessage;
  events: CreditEvent[];
  records: unknown[];
}

export class CreditsWorker {
  readonly #store: SqlStore;
  readonly #bus: Bus;
  readonly #log: WorkerLog;
  readonly #fetchMax: number;
  readonly #maxEventsPerCommit: number;
  readonly #fetchExpiresMs: number;
  readonly #ackWaitMs: number;
  readonly #concurrency: number;
  readonly #retryInitialMs: number;
  readonly #retryMaxMs: number;
  readonly #metrics: WorkerMetrics | undefined;
  readonly #hooks: CommitHooks;
  readonly #records: RecordApplier | undefined;
  readonly #stats: WorkerStats = {
    eventsApplied: 0,
    ledgerEntries: 0,
    batches: 0,
    messagesApplied: 0,
    malformed: 0,
    rejectedEvents: 0,
    retried: 0,
  };
  readonly #inFlight = new Set<Promise<void>>();
  #consumer: Consumer | undefined;
  #loop: Promise<void> | undefined;
  #stopping = false;
  /** Aborted by `stop`, so a pause between retries does not hold it up. */
  #stopSignal = new AbortController();
  #failures = 0;

  constructor(options: CreditsWorkerOptions) {
    this.#store = options.store;
    this.#bus = options.bus;
    this.#log = options.log ?? silentLog;
    this.#fetchMax = options.fetchMax ?? 64;
    this.#maxEventsPerCommit = options.maxEventsPerCommit ?? 4000;
    this.#fetchExpiresMs = options.fetchExpiresMs ?? 500;
    this.#ackWaitMs = options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
    this.#concurrency = Math.max(1, options.concurrency ?? 2);
    this.#retryInitialMs = options.retryInitialMs ?? 250;
    this.#retryMaxMs = options.retryMaxMs ?? 30_000;
    this.#metrics = options.registry ? new WorkerMetrics(options.registry, () => this.#lag()) : undefined;
    this.#hooks = options.hooks ?? {};
    this.#records = options.records;
  }

  get stats(): Readonly<WorkerStats> {
    return { ...this.#stats };
  }

  get running(): boolean {
    return this.#loop !== undefined && !this.#stopping;
  }

  /** Declares the stream and the durable consumer, then applies the stream until `stop`. */
  async start(): Promise<void> {
    if (this.#loop) throw new Error('credits worker already started');
    await this.#bus.ensureStream(creditsStreamConfig);
    this.#consumer = await this.#bus.consumer(CREDITS_STREAM, {
      ...creditsConsumerConfig,
      ackWaitMs: this.#ackWaitMs,
    });
    this.#stopping = false;
    this.#stopSignal = new AbortController();
    this.#loop = this.#run(this.#consumer);
  }

  /** Stops fetching, finishes (commits and acknowledges) the batches in hand, and resolves. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#stopSignal.abort();
    await this.#loop;
    this.#loop = undefined;
  }

  /**
   * Resolves once every message stored in the stream before the call is applied and
   * acknowledged (by this worker or another on the same durable). Rejects if this worker stops
   * first or `timeoutMs` passes.
   */
  async caughtUp(options: CaughtUpOptions = {}): Promise<void> {
    const consumer = this.#consumer;
    if (!consumer || !this.running) throw new Error('credits worker is not running');
    await ledgerCaughtUp(this.#bus, {
      ...options,
      consumer,
      until: () => {
        if (!this.running) throw new Error('credits worker stopped before catching up');
      },
    });
  }

  /** Same as `caughtUp`. */
  drain(options: CaughtUpOptions = {}): Promise<void> {
    return this.caughtUp(options);
  }

  async #run(consumer: Consumer): Promise<void> {
    while (!this.#stopping) {
      if (this.#inFlight.size >= this.#concurrency) {
        await Promise.race(this.#inFlight);
        continue;
      }
      let messages: BusMessage[];
      try {
        messages = await consumer.fetch({ max: this.#fetchMax, expiresMs: this.#fetchExpiresMs });
      } catch (error) {
        this.#log.warn({ err: error }, 'credits worker: fetch failed');
        await this.#pause(++this.#failures);
        continue;
      }
      // Fetched messages are applied even when stopping: they are delivered to this worker.
      if (messages.length === 0) continue;
      const commit = this.#apply(messages).then(
        () => undefined,
        (error: unknown) => this.#log.error({ err: error }, 'credits worker: unexpected failure'),
      );
      this.#inFlight.add(commit);
      void commit.finally(() => this.#inFlight.delete(commit));
      // After a failure, pause before the next fetch rather than spin through the backlog.
      if (this.#failures > 0) await this.#pause(this.#failures);
    }
    await Promise.all(this.#inFlight);
  }

  async #pause(failures: number): Promise<void> {
    await sleep(this.#backoff(failures), undefined, { signal: this.#stopSignal.signal }).catch(() => {});
  }

  async #apply(messages: BusMessage[]): Promise<void> {
    const decoded = messages.map((message) => this.#decode(message)).filter((d) => d !== null);
    for (const group of groupByEvents(
      decoded,
      this.#maxEventsPerCommit,
      (d) => d.events.length + d.records.length,
    ))
      await this.#applyGroup(group);
  }

  async #applyGroup(decoded: Decoded[]): Promise<void> {
    try {
      await this.#commit(decoded);
      this.#failures = 0;
    } catch (error) {
      this.#failures++;
      this.#metrics?.batches.inc({ outcome: 'failed' });
      if (decoded.length > 1 && isRefusedByData(error)) {
        this.#log.warn(
          { err: error, messages: decoded.length },
          'credits worker: batch refused, applying its messages one by one',
        );
        for (const one of decoded) {
          try {
            await this.#commit([one]);
            // PostgreSQL is fine; only some messages are not.
            this.#failures = 0;
          } catch (oneError) {
            this.#retry(one.message, oneError);
          }
        }
        return;
      }
      for (const one of decoded) this.#retry(one.message, error);
    }
  }

  async #commit(batch: Decoded[]): Promise<void> {
    const events = batch.flatMap((d) => d.events);
    const records = batch.flatMap((d) => d.records);
    const started = performance.now();
    const result = await this.#store.transaction(async (tx) => {
      const applied = await applyEvents(tx, events);
      await this.#hooks.inTransaction?.(tx, events);
      if (records.length > 0) await this.#records?.apply(tx, records);
      return applied;
    });
    this.#hooks.afterCommit?.(events);
    if (records.length > 0) this.#records?.afterCommit?.(records);
    this.#metrics?.commitSeconds.observe((performance.now() - started) / 1000);
    this.#stats.batches++;
    this.#stats.eventsApplied += result.events;
    this.#stats.ledgerEntries += result.ledgerEntries;
    this.#stats.messagesApplied += batch.length;
    this.#metrics?.batches.inc({ outcome: 'committed' });
    this.#metrics?.events.inc(result.events);
    this.#metrics?.ledgerEntries.inc(result.ledgerEntries);
    this.#metrics?.messages.inc({ outcome: 'applied' }, batch.length);
    // Committed: an ack lost here only means a harmless redelivery.
    const acks = await Promise.allSettled(batch.map((d) => d.message.ack()));
    const lost = acks.filter((ack) => ack.status === 'rejected').length;
    if (lost > 0)
      this.#log.warn({ lost }, 'credits worker: acknowledgements failed; those messages will be redelivered');
  }

  #decode(message: BusMessage): Decoded | null {
    let parsed: ReturnType<typeof creditEventBatch.safeParse>;
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder().decode(message.data));
      parsed = creditEventBatch.safeParse(raw);
    } catch (error) {
      return this.#malformed(message, error instanceof Error ? error.message : String(error));
    }
    if (!parsed.success) return this.#malformed(message, parsed.error.message);
    const events: CreditEvent[] = [];
    for (const event of parsed.data.events) {
      const problem = creditEventProblem(event);
      if (problem === null) {
        events.push(event);
        continue;
      }
      this.#stats.rejectedEvents++;
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
    return { message, events, records };
  }

  #malformed(message: BusMessage, problem: string): null {
    this.#stats.malformed++;
    this.#metrics?.messages.inc({ outcome: 'malformed' });
    this.#log.error(
      { seq: message.seq, subject: message.subject, problem },
      'credits worker: malformed message terminated',
    );
    message.term();
    return null;
  }

  #retry(message: BusMessage, error: unknown): void {
    const delayMs = this.#backoff(message.deliveryCount);
    this.#stats.retried++;
    this.#metrics?.messages.inc({ outcome: 'retried' });
    this.#log.error(
      { err: error, seq: message.seq, deliveryCount: message.deliveryCount, delayMs },
      'credits worker: commit failed, message will be redelivered',
    );
    message.nak(delayMs);
  }

  #backoff(attempt: number): number {
    return Math.min(this.#retryMaxMs, this.#retryInitialMs * 2 ** Math.max(0, Math.min(attempt - 1, 20)));
  }

  async #lag(): Promise<number> {
    return this.#consumer ? this.#consumer.pending() : 0;
  }
}

/** Whole messages, in order, into groups of at most `maxEvents` events (a larger message alone). */
export function groupByEvents<M extends { events: readonly unknown[] }>(
  messages: readonly M[],
  maxEvents: number,
  weight: (message: M) => number = (message) => message.events.length,
): M[][] {
  const groups: M[][] = [];
  let group: M[] = [];
  let count = 0;
  for (const message of messages) {
    const size = weight(message);
    if (group.length > 0 && count + size > maxEvents) {
      groups.push(group);
      group = [];
      count = 0;
    }
    group.push(message);
    count += size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
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
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  let target: number;
  try {
    target = (await bus.streamInfo(CREDITS_STREAM)).lastSeq;
  } catch (error) {
    // No stream: nothing was ever published, so nothing is waiting. (By name: the kit's bus
    // index does not export BusNotFoundError yet.)
    if (error instanceof Error && error.name === 'BusNotFoundError') return;
    throw error;
  }
  if (target === 0) return;
  const consumer = options.consumer ?? (await bus.consumer(CREDITS_STREAM, creditsConsumerConfig));
  for (;;) {
    if ((await consumer.info()).ackFloor >= target) return;
    options.until?.();
    if (Date.now() > deadline) {
      throw new Error(
        `credits ledger not caught up with stream sequence ${target} within ${options.timeoutMs} ms`,
      );
    }
    await sleep(options.pollMs ?? 20);
  }
}

/**
 * A statement PostgreSQL refused for what a batch holds (class 22 data exception, class 23
 * integrity violation), as opposed to a lost connection or a shutdown, where retrying the
 * messages one by one would only fail as many times.
 */
function isRefusedByData(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

class WorkerMetrics {
  readonly events: Counter;
  readonly ledgerEntries: Counter;
  readonly rejectedEvents: Counter;
  readonly batches: Counter<'outcome'>;
  readonly messages: Counter<'outcome'>;
  readonly commitSeconds: Histogram;

  constructor(registry: Registry, lag: () => Promise<number>) {
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
    this.batches = new Counter({
      name: 'allot_credits_worker_batches_total',
      help: 'Group commits by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.messages = new Counter({
      name: 'allot_credits_worker_messages_total',
      help: 'Stream messages by outcome: applied, malformed (terminated), retried (redelivered later)',
      labelNames: ['outcome'],
      registers,
    });
    this.commitSeconds = new Histogram({
      name: 'allot_credits_worker_commit_seconds',
      help: 'Time to apply and commit one group of messages',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    new Gauge({
      name: 'allot_credits_worker_lag_messages',
      help: 'Messages on the stream not yet applied and acknowledged',
      registers,
      async collect() {
        this.set(await lag());
      },
    });
  }
}

const silentLog: WorkerLog = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
