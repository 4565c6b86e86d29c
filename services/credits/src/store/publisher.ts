import { randomUUID } from 'node:crypto';
import type { Bus } from '@allot/kit/bus';
import { CREDITS_STREAM, type CreditEvent, creditsSubject } from '../domain/events.ts';

export interface PublisherOptions {
  /** Subjects `credits.ev.0` .. `credits.ev.<partitions - 1>`; a customer always maps to one. */
  partitions?: number;
  /** Most events in one JetStream message. */
  maxBatch?: number;
  /** A publish not acknowledged by then fails (and the caller answers 503). */
  publishTimeoutMs?: number;
}

interface Waiting {
  events: CreditEvent[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class PublishError extends Error {
  override readonly name = 'PublishError';
}

/**
 * Group commit on the way in: the events of every operation that finishes in one tick of the
 * event loop go out as one JetStream message, and each operation resolves once that message
 * is stored. Nothing is answered before its events are durable.
 */
export class CreditEventPublisher {
  readonly #bus: Bus;
  readonly #partitions: number;
  readonly #maxBatch: number;
  readonly #timeoutMs: number;
  readonly #queues = new Map<number, Waiting[]>();
  #scheduled = false;

  constructor(bus: Bus, options: PublisherOptions = {}) {
    this.#bus = bus;
    this.#partitions = options.partitions ?? 1;
    this.#maxBatch = options.maxBatch ?? 1000;
    this.#timeoutMs = options.publishTimeoutMs ?? 2000;
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

  partitionOf(customerId: string): number {
    // FNV-1a: stable across processes and versions.
    let hash = 0x811c9dc5;
    for (let i = 0; i < customerId.length; i++) {
      hash ^= customerId.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return hash % this.#partitions;
  }

  /** Resolves once every event is stored in the stream; rejects (PublishError) otherwise. */
  publish(customerId: string, events: CreditEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    const partition = this.partitionOf(customerId);
    return new Promise((resolve, reject) => {
      const queue = this.#queues.get(partition) ?? [];
      queue.push({ events, resolve, reject });
      this.#queues.set(partition, queue);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    for (const [partition, queue] of this.#queues) {
      this.#queues.delete(partition);
      let batch: Waiting[] = [];
      let count = 0;
      for (const waiting of queue) {
        if (count > 0 && count + waiting.events.length > this.#maxBatch) {
          void this.#send(partition, batch);
          batch = [];
          count = 0;
        }
        batch.push(waiting);
        count += waiting.events.length;
      }
      if (batch.length > 0) void this.#send(partition, batch);
    }
  }

  async #send(partition: number, batch: Waiting[]): Promise<void> {
    const events = batch.flatMap((waiting) => waiting.events);
    const data = Buffer.from(JSON.stringify({ events }));
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
      for (const waiting of batch) waiting.resolve();
    } catch (error) {
      const failure =
        error instanceof PublishError
          ? error
          : new PublishError(`credit events not stored: ${String(error)}`);
      for (const waiting of batch) waiting.reject(failure);
    } finally {
      clearTimeout(timer);
    }
  }
}
