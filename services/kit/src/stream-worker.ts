/**
 * A stream worker: applies a JetStream stream to PostgreSQL, exactly once in effect.
 *
 * It pulls up to `fetchMax` messages, decodes each, applies them in one transaction (group
 * commit, whole messages up to `maxWeightPerCommit` units of work), and acknowledges them once
 * committed. A crash between commit and ack redelivers them, so `commit` must be idempotent
 * (by event id). A malformed message is logged and terminated, so it never holds up the
 * stream; a commit that fails is retried message by message when PostgreSQL refused the data,
 * so one bad message holds up only itself, redelivered with a growing delay until it goes
 * through. Services give it their stream, consumer, decoder and commit (the credits ledger,
 * metering's aggregates).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Bus, BusMessage, Consumer, ConsumerConfig, StreamConfig } from './bus/port.ts';
import type { SqlExecutor, SqlStore } from './sql/port.ts';

/** pino's logger fits. */
export interface StreamWorkerLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface StreamWorkerOptions<D, R = void> {
  /** In logs (`<name> worker: ...`) and metric names (`allot_<name>_worker_...`). */
  name: string;
  store: SqlStore;
  bus: Bus;
  stream: StreamConfig;
  consumer: ConsumerConfig;
  /** A message's content, or `{ malformed }` to terminate it (it will never apply). */
  decode(message: BusMessage): D | { malformed: string };
  /** Units of work a decoded message carries (events in it). Default 1. */
  weight?(decoded: D): number;
  /** Runs before each commit's transaction (DDL a commit needs, like a partition); throwing retries the batch. */
  prepare?(batch: readonly D[]): Promise<void>;
  /** Applies decoded messages in the worker's transaction; must be idempotent. */
  commit(tx: SqlExecutor, batch: readonly D[]): Promise<R>;
  /** Runs once a commit is durable, before the acknowledgements, with what `commit` returned; must not throw. */
  afterCommit?(batch: readonly D[], result: R): void;
  log?: StreamWorkerLog;
  /** Messages per fetch. Default 64. */
  fetchMax?: number;
  /** Most units of work in one transaction (a heavier message goes alone). Default 4000. */
  maxWeightPerCommit?: number;
  /** How long a fetch waits for a first message; also how long `stop` may wait for one. Default 500 ms. */
  fetchExpiresMs?: number;
  /** Group commits in flight at once. Default 2. */
  concurrency?: number;
  /** Redelivery delay after a failed commit: doubles per delivery from `retryInitialMs` up to `retryMaxMs`. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Where to register the worker's Prometheus metrics. */
  registry?: Registry;
}

export interface StreamWorkerStats {
  /** Group commits that succeeded. */
  batches: number;
  messagesApplied: number;
  /** Messages terminated because they could not be decoded. */
  malformed: number;
  /** Messages handed back for redelivery after a failed commit. */
  retried: number;
}

interface Decoded<D> {
  message: BusMessage;
  content: D;
}

export class StreamWorker<D, R = void> {
  readonly #o: StreamWorkerOptions<D, R>;
  readonly #log: StreamWorkerLog;
  readonly #label: string;
  readonly #fetchMax: number;
  readonly #maxWeight: number;
  readonly #fetchExpiresMs: number;
  readonly #concurrency: number;
  readonly #retryInitialMs: number;
  readonly #retryMaxMs: number;
  readonly #metrics: StreamWorkerMetrics | undefined;
  readonly #stats: StreamWorkerStats = { batches: 0, messagesApplied: 0, malformed: 0, retried: 0 };
  readonly #inFlight = new Set<Promise<void>>();
  #consumer: Consumer | undefined;
  #loop: Promise<void> | undefined;
  #stopping = false;
  /** Aborted by `stop`, so a pause between retries does not hold it up. */
  #stopSignal = new AbortController();
  #failures = 0;

  constructor(options: StreamWorkerOptions<D, R>) {
    this.#o = options;
    this.#log = options.log ?? silentLog;
    this.#label = `${options.name} worker`;
    this.#fetchMax = options.fetchMax ?? 64;
    this.#maxWeight = options.maxWeightPerCommit ?? 4000;
    this.#fetchExpiresMs = options.fetchExpiresMs ?? 500;
    this.#concurrency = Math.max(1, options.concurrency ?? 2);
    this.#retryInitialMs = options.retryInitialMs ?? 250;
    this.#retryMaxMs = options.retryMaxMs ?? 30_000;
    this.#metrics = options.registry
      ? new StreamWorkerMetrics(options.registry, options.name, () => this.#lag())
      : undefined;
  }

  get stats(): Readonly<StreamWorkerStats> {
    return { ...this.#stats };
  }

  get running(): boolean {
    return this.#loop !== undefined && !this.#stopping;
  }

  /** The bound consumer, once started. */
  get consumer(): Consumer | undefined {
    return this.#consumer;
  }

  /** Declares the stream and the durable consumer, then applies the stream until `stop`. */
  async start(): Promise<void> {
    if (this.#loop) throw new Error(`${this.#label} already started`);
    await this.#o.bus.ensureStream(this.#o.stream);
    this.#consumer = await this.#o.bus.consumer(this.#o.stream.name, this.#o.consumer);
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
  async caughtUp(options: { timeoutMs?: number; pollMs?: number } = {}): Promise<void> {
    const consumer = this.#consumer;
    if (!consumer || !this.running) throw new Error(`${this.#label} is not running`);
    await streamCaughtUp(this.#o.bus, this.#o.stream.name, consumer, {
      ...options,
      until: () => {
        if (!this.running) throw new Error(`${this.#label} stopped before catching up`);
      },
    });
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
        this.#log.warn({ err: error }, `${this.#label}: fetch failed`);
        await this.#pause(++this.#failures);
        continue;
      }
      // Fetched messages are applied even when stopping: they are delivered to this worker.
      if (messages.length === 0) continue;
      const commit = this.#apply(messages).then(
        () => undefined,
        (error: unknown) => this.#log.error({ err: error }, `${this.#label}: unexpected failure`),
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
    const decoded: Decoded<D>[] = [];
    for (const message of messages) {
      const content = this.#o.decode(message);
      if (isMalformed(content)) this.#malformed(message, content.malformed);
      else decoded.push({ message, content });
    }
    const weight = this.#o.weight;
    for (const group of groupByWeight(decoded, this.#maxWeight, weight ? (d) => weight(d.content) : () => 1))
      await this.#applyGroup(group);
  }

  async #applyGroup(decoded: Decoded<D>[]): Promise<void> {
    try {
      await this.#commit(decoded);
      this.#failures = 0;
    } catch (error) {
      this.#failures++;
      this.#metrics?.batches.inc({ outcome: 'failed' });
      if (decoded.length > 1 && isRefusedByData(error)) {
        this.#log.warn(
          { err: error, messages: decoded.length },
          `${this.#label}: batch refused, applying its messages one by one`,
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

  async #commit(batch: Decoded<D>[]): Promise<void> {
    const contents = batch.map((d) => d.content);
    const started = performance.now();
    await this.#o.prepare?.(contents);
    const result = await this.#o.store.transaction((tx) => this.#o.commit(tx, contents));
    this.#o.afterCommit?.(contents, result);
    this.#metrics?.commitSeconds.observe((performance.now() - started) / 1000);
    this.#stats.batches++;
    this.#stats.messagesApplied += batch.length;
    this.#metrics?.batches.inc({ outcome: 'committed' });
    this.#metrics?.messages.inc({ outcome: 'applied' }, batch.length);
    // Committed: an ack lost here only means a harmless redelivery.
    const acks = await Promise.allSettled(batch.map((d) => d.message.ack()));
    const lost = acks.filter((ack) => ack.status === 'rejected').length;
    if (lost > 0)
      this.#log.warn({ lost }, `${this.#label}: acknowledgements failed; those messages will be redelivered`);
  }

  #malformed(message: BusMessage, problem: string): void {
    this.#stats.malformed++;
    this.#metrics?.messages.inc({ outcome: 'malformed' });
    this.#log.error(
      { seq: message.seq, subject: message.subject, problem },
      `${this.#label}: malformed message terminated`,
    );
    message.term();
  }

  #retry(message: BusMessage, error: unknown): void {
    const delayMs = this.#backoff(message.deliveryCount);
    this.#stats.retried++;
    this.#metrics?.messages.inc({ outcome: 'retried' });
    this.#log.error(
      { err: error, seq: message.seq, deliveryCount: message.deliveryCount, delayMs },
      `${this.#label}: commit failed, message will be redelivered`,
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

function isMalformed(value: unknown): value is { malformed: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    'malformed' in value &&
    typeof (value as { malformed: unknown }).malformed === 'string'
  );
}

/** Whole items, in order, into groups of at most `max` weight (a heavier item alone). */
export function groupByWeight<M>(items: readonly M[], max: number, weight: (item: M) => number): M[][] {
  const groups: M[][] = [];
  let group: M[] = [];
  let count = 0;
  for (const item of items) {
    const size = weight(item);
    if (group.length > 0 && count + size > max) {
      groups.push(group);
      group = [];
      count = 0;
    }
    group.push(item);
    count += size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/**
 * Resolves once the consumer has applied everything up to the stream's last sequence as it was
 * at the call (its ack floor reached it, or it read past it with nothing left unacknowledged):
 * every message stored before it is applied (by whichever process). Messages
 * published meanwhile are not waited for. A missing stream means nothing was ever published.
 */
export async function streamCaughtUp(
  bus: Bus,
  stream: string,
  consumer: Consumer | (() => Promise<Consumer>),
  options: { timeoutMs?: number; pollMs?: number; until?: () => void } = {},
): Promise<void> {
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  let target: number;
  try {
    target = (await bus.streamInfo(stream)).lastSeq;
  } catch (error) {
    if (error instanceof Error && error.name === 'BusNotFoundError') return;
    throw error;
  }
  if (target === 0) return;
  const bound = typeof consumer === 'function' ? await consumer() : consumer;
  for (;;) {
    const position = await bound.info();
    // Past the target with nothing outstanding also counts: a filtered consumer whose subject
    // had no message since never moves its ack floor.
    if (position.ackFloor >= target || (position.pending === 0 && position.delivered >= target)) return;
    options.until?.();
    if (Date.now() > deadline) {
      throw new Error(
        `${stream} not caught up with stream sequence ${target} within ${options.timeoutMs} ms`,
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

class StreamWorkerMetrics {
  readonly batches: Counter<'outcome'>;
  readonly messages: Counter<'outcome'>;
  readonly commitSeconds: Histogram;

  constructor(registry: Registry, name: string, lag: () => Promise<number>) {
    const registers = [registry];
    this.batches = new Counter({
      name: `allot_${name}_worker_batches_total`,
      help: 'Group commits by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.messages = new Counter({
      name: `allot_${name}_worker_messages_total`,
      help: 'Stream messages by outcome: applied, malformed (terminated), retried (redelivered later)',
      labelNames: ['outcome'],
      registers,
    });
    this.commitSeconds = new Histogram({
      name: `allot_${name}_worker_commit_seconds`,
      help: 'Time to apply and commit one group of messages',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    new Gauge({
      name: `allot_${name}_worker_lag_messages`,
      help: 'Messages on the stream not yet applied and acknowledged',
      registers,
      async collect() {
        this.set(await lag());
      },
    });
  }
}

const silentLog: StreamWorkerLog = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
