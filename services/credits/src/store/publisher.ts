import { randomUUID } from 'node:crypto';
import { GroupCommit } from '@allot/kit';
import type { Bus } from '@allot/kit/bus';
import { Counter, Gauge, type Registry } from 'prom-client';
import { CREDITS_STREAM, type CreditEvent, creditsSubject } from '../domain/events.ts';

export interface PublisherOptions {
  /** Subjects `credits.ev.0` .. `credits.ev.<partitions - 1>`; a customer always maps to one. */
  partitions?: number;
  /** Most events in one JetStream message. */
  maxBatch?: number;
  /**
   * Most appends awaiting their acknowledgement per partition. What is published meanwhile
   * waits and goes out in one message when one returns, so a slow stream sees larger messages
   * rather than an unbounded number of them; when one fails, what waits fails with it. Default 16.
   */
  maxInFlight?: number;
  /** A publish not acknowledged by then fails (and the caller answers 503). */
  publishTimeoutMs?: number;
  /** Background republish of events whose append failed (see `retryLater`). */
  retry?: RetryOptions;
  log?: PublisherLog;
  /** Gauges and counters of the background republish go here. */
  registry?: Registry;
}

export interface RetryOptions {
  /** Most events waiting for a republish; beyond that the oldest are dropped (logged, counted). Default 100,000. */
  maxPending?: number;
  /** First delay after a failed republish; it doubles per failure, with jitter. Default 100 ms. */
  minDelayMs?: number;
  /** Longest delay between republish attempts. Default 5 s. */
  maxDelayMs?: number;
  /** How long `close()` keeps trying to store what is waiting. Default 5 s. */
  closeTimeoutMs?: number;
  /**
   * Default true. False: nothing is republished on a timer, only by `retryPending()` and
   * `close()` (for deterministic tests).
   */
  background?: boolean;
}

/** pino's logger fits. */
export interface PublisherLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const silentLog: PublisherLog = { warn() {}, error() {} };

/**
 * A record of another service that must be as durable as the credit events it goes with (the
 * gate's decisions): it travels in the same message, in `decisions` beside `events`.
 */
export interface HotPathRecord {
  id: string;
  [field: string]: unknown;
}

interface Entries {
  events: CreditEvent[];
  records: HotPathRecord[];
}

/** One event or one record waiting for a republish. */
interface Pending {
  partition: number;
  event?: CreditEvent;
  record?: HotPathRecord;
}

export class PublishError extends Error {
  override readonly name = 'PublishError';
}

/**
 * Group commit on the way in: the events of every operation that finishes in one tick of the
 * event loop, or while earlier appends of its partition await their acknowledgement, go out
 * as one JetStream message, and each operation resolves once that message is stored. Nothing
 * is answered before its events are durable.
 *
 * Events whose append failed but whose effect stays applied in Redis (a settle, a release, a
 * retired grant...) are handed back with `retryLater`: they wait in memory (bounded) and are
 * republished in the background, under the same event ids, until the stream stores them. The
 * worker applies an event id once, so a copy that did land despite the failure, or the
 * caller's own retry, changes nothing. What is waiting is lost if the process dies first.
 */
export class CreditEventPublisher {
  readonly #bus: Bus;
  readonly #partitions: number;
  readonly #maxBatch: number;
  readonly #timeoutMs: number;
  readonly #appends: GroupCommit<Entries, undefined>;

  readonly #log: PublisherLog;
  readonly #maxPending: number;
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #closeTimeoutMs: number;
  readonly #background: boolean;
  readonly #metrics: RetryMetrics | undefined;
  /** Events waiting for a republish, oldest first, from `#head` on. */
  #pending: Pending[] = [];
  #head = 0;
  /** Taken from `#pending` by the attempt in flight. */
  #inFlight = 0;
  #attempt: Promise<void> | undefined;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #closing = false;

  constructor(bus: Bus, options: PublisherOptions = {}) {
    this.#bus = bus;
    this.#partitions = options.partitions ?? 1;
    this.#maxBatch = options.maxBatch ?? 1000;
    this.#timeoutMs = options.publishTimeoutMs ?? 2000;
    this.#appends = new GroupCommit((partition, batch) => this.#send(Number(partition), batch), {
      maxGroup: this.#maxBatch,
      weight: (entries) => entries.events.length + entries.records.length,
      maxInFlight: options.maxInFlight ?? 16,
      failWaitingOnError: true,
    });
    this.#log = options.log ?? silentLog;
    this.#maxPending = Math.max(1, options.retry?.maxPending ?? 100_000);
    this.#minDelayMs = options.retry?.minDelayMs ?? 100;
    this.#maxDelayMs = Math.max(this.#minDelayMs, options.retry?.maxDelayMs ?? 5000);
    this.#closeTimeoutMs = options.retry?.closeTimeoutMs ?? 5000;
    this.#background = options.retry?.background ?? true;
    this.#metrics = options.registry
      ? new RetryMetrics(options.registry, () => this.pendingRetries)
      : undefined;
  }

  /** Events waiting for a background republish (including those being republished now). */
  get pendingRetries(): number {
    return this.#pending.length - this.#head + this.#inFlight;
  }

  async ensureStream(): Promise<void> {
    await this.#bus.ensureStream({
      name: CREDITS_STREAM,
      subjects: ['credits.ev.>'],
      duplicateWindowMs: 120_000,
      maxAgeMs: 7 * 24 * 3600_000,
    });
  }

  get publishTimeoutMs(): number {
    return this.#timeoutMs;
  }

  /**
   * Every publish resolves or fails within this long of its call (a turn of a busy event loop
   * aside): at most one timeout waiting behind the appends in flight before it (when one of
   * them fails, it fails too), then one for its own append.
   */
  get publishBoundMs(): number {
    return 2 * this.#timeoutMs;
  }

  partitionOf(customerId: string): number {
    // FNV-1a: stable across processes and versions.
    let hash = 0x811c9dc5;
    for (let i = 0; i < customerId.length; i++) {
      hash ^= customerId.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return hash % this.#partitions;
  }

  /**
   * Resolves once every event is stored in the stream; rejects (PublishError) otherwise, within
   * `publishBoundMs` of the call.
   */
  publish(customerId: string, events: CreditEvent[], records: HotPathRecord[] = []): Promise<void> {
    if (events.length === 0 && records.length === 0) return Promise.resolve();
    return this.#appends.submit(String(this.partitionOf(customerId)), { events, records }).then(() => {});
  }

  async #send(partition: number, batch: Entries[]): Promise<undefined[]> {
    await this.#append(
      partition,
      batch.flatMap((entries) => entries.events),
      batch.flatMap((entries) => entries.records),
    );
    return batch.map(() => undefined);
  }

  /** One JetStream message; rejects (PublishError) unless it is acknowledged in time. */
  async #append(partition: number, events: CreditEvent[], records: HotPathRecord[]): Promise<void> {
    const data = Buffer.from(
      JSON.stringify(records.length > 0 ? { events, decisions: records } : { events }),
    );
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#bus.publish(creditsSubject(partition), data, { msgId: randomUUID() }),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new PublishError('credit events not acknowledged in time')),
            this.#timeoutMs,
          );
        }),
      ]);
    } catch (error) {
      throw error instanceof PublishError
        ? error
        : new PublishError(`credit events not stored: ${String(error)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Events of a failed `publish` whose effect stays applied in Redis: republished in the
   * background, same ids, until stored. Not for a reserve the caller undid.
   */
  retryLater(customerId: string, events: CreditEvent[], records: HotPathRecord[] = []): void {
    if (events.length === 0 && records.length === 0) return;
    const partition = this.partitionOf(customerId);
    for (const event of events) this.#pending.push({ partition, event });
    for (const record of records) this.#pending.push({ partition, record });
    this.#metrics?.queued.inc(events.length + records.length);
    this.#bound();
    this.#schedule(this.#delay());
  }

  /**
   * One republish attempt of everything waiting, now (batches of at most `maxBatch` events per
   * partition). Resolves true when nothing is left waiting. Mostly for tests; the background
   * does the same on its own.
   */
  async retryPending(): Promise<boolean> {
    while (this.#attempt) await this.#attempt;
    if (this.pendingRetries === 0) return true;
    const attempt = this.#republish();
    this.#attempt = attempt;
    try {
      await attempt;
    } finally {
      this.#attempt = undefined;
    }
    if (this.pendingRetries > 0) this.#schedule(this.#delay());
    return this.pendingRetries === 0;
  }

  /**
   * Stops the background republish, then keeps trying to store what is waiting for up to
   * `closeTimeoutMs`. Resolves with what is still waiting (lost with the process), logged.
   */
  async close(): Promise<number> {
    this.#closing = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const deadline = Date.now() + this.#closeTimeoutMs;
    let failures = 0;
    while (!(await this.retryPending())) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      failures++;
      const wait = Math.min(left, this.#backoff(failures));
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const lost = this.pendingRetries;
    if (lost > 0) {
      this.#log.error(
        { lost },
        'credit events not stored by close: the ledger lacks them until a caller retries',
      );
    }
    return lost;
  }

  async #republish(): Promise<void> {
    // Take everything waiting now; what fails goes back in front (it is the oldest).
    const taken = this.#pending.slice(this.#head);
    this.#pending = [];
    this.#head = 0;
    this.#inFlight = taken.length;
    const byPartition = new Map<number, Pending[]>();
    for (const pending of taken) {
      const list = byPartition.get(pending.partition) ?? [];
      list.push(pending);
      byPartition.set(pending.partition, list);
    }
    const failed: Pending[] = [];
    let stored = 0;
    await Promise.all(
      [...byPartition].map(async ([partition, entries]) => {
        for (let i = 0; i < entries.length; i += this.#maxBatch) {
          const chunk = entries.slice(i, i + this.#maxBatch);
          try {
            await this.#append(
              partition,
              chunk.flatMap((p) => (p.event ? [p.event] : [])),
              chunk.flatMap((p) => (p.record ? [p.record] : [])),
            );
            stored += chunk.length;
          } catch {
            failed.push(...chunk);
          }
        }
      }),
    );
    this.#inFlight = 0;
    this.#metrics?.stored.inc(stored);
    if (failed.length > 0) {
      this.#pending = [...failed, ...this.#pending.slice(this.#head)];
      this.#head = 0;
      this.#bound();
      this.#failures++;
      this.#log.warn(
        { waiting: this.pendingRetries, stored },
        'credit events still not stored; retrying in the background',
      );
    } else {
      this.#failures = 0;
    }
  }

  /** Drops the oldest waiting events beyond `maxPending`. */
  #bound(): void {
    const over = this.pendingRetries - this.#maxPending;
    if (over <= 0) return;
    const droppable = Math.min(over, this.#pending.length - this.#head);
    if (droppable <= 0) return;
    const dropped = this.#pending
      .slice(this.#head, this.#head + droppable)
      .map((p) => (p.event ?? p.record)!.id);
    this.#head += droppable;
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
    this.#metrics?.dropped.inc(droppable);
    this.#log.error(
      { dropped: droppable, first: dropped[0], last: dropped[dropped.length - 1] },
      'credit events dropped from the republish queue (full): the ledger lacks them until a caller retries or a rebuild',
    );
  }

  #delay(): number {
    return this.#failures === 0 ? this.#jitter(this.#minDelayMs) : this.#backoff(this.#failures);
  }

  #backoff(failures: number): number {
    return this.#jitter(Math.min(this.#maxDelayMs, this.#minDelayMs * 2 ** Math.min(failures, 30)));
  }

  /** Between half and all of `ms`. */
  #jitter(ms: number): number {
    return ms / 2 + Math.random() * (ms / 2);
  }

  #schedule(delayMs: number): void {
    if (!this.#background || this.#closing || this.#timer || this.#attempt) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.retryPending().catch((error: unknown) =>
        this.#log.error({ err: error }, 'credit events republish: unexpected failure'),
      );
    }, delayMs);
    this.#timer.unref();
  }
}

class RetryMetrics {
  readonly queued: Counter;
  readonly stored: Counter;
  readonly dropped: Counter;

  constructor(registry: Registry, pending: () => number) {
    const registers = [registry];
    this.queued = new Counter({
      name: 'allot_credits_publish_retry_queued_total',
      help: 'Credit events whose append failed, queued for a background republish',
      registers,
    });
    this.stored = new Counter({
      name: 'allot_credits_publish_retry_stored_total',
      help: 'Credit events stored by the background republish',
      registers,
    });
    this.dropped = new Counter({
      name: 'allot_credits_publish_retry_dropped_total',
      help: 'Credit events dropped from a full republish queue (the ledger lacks them until retried)',
      registers,
    });
    new Gauge({
      name: 'allot_credits_publish_retry_pending',
      help: 'Credit events waiting for a background republish',
      registers,
      collect() {
        this.set(pending());
      },
    });
  }
}
