/**
 * Ingest: validated events onto the METERING stream, acknowledged to the caller only once
 * JetStream stored them. Events of concurrent requests for the same partition that arrive
 * together share one message (group commit, up to `maxBatch` events a message), so a flood of
 * small requests costs few publishes; a large request is split into several messages.
 */
import { randomUUID } from 'node:crypto';
import { AppError, GroupCommit } from '@allot/kit';
import type { Bus } from '@allot/kit/bus';
import type { UsageEvent } from './domain/events.ts';
import type { IngestedBatch } from './store/writer.ts';
import { DEFAULT_PARTITIONS, meteringStreamConfig, meteringSubject, partitionOf } from './stream.ts';

export interface EventIngestOptions {
  partitions?: number;
  /** Most events in one stream message. Default 2000. */
  maxBatch?: number;
  /** How long a publish may wait for JetStream's acknowledgement. Default 5 s. */
  publishTimeoutMs?: number;
}

interface Part {
  tenant: string;
  events: UsageEvent[];
}

export class EventIngest {
  readonly #bus: Bus;
  readonly #partitions: number;
  readonly #timeoutMs: number;
  readonly #groups: GroupCommit<Part, undefined>;
  #ready: Promise<void> | undefined;

  constructor(bus: Bus, options: EventIngestOptions = {}) {
    this.#bus = bus;
    this.#partitions = options.partitions ?? DEFAULT_PARTITIONS;
    this.#timeoutMs = options.publishTimeoutMs ?? 5000;
    this.#groups = new GroupCommit((key, parts) => this.#send(key, parts), {
      maxGroup: options.maxBatch ?? 2000,
      weight: (part) => part.events.length,
      maxInFlight: 8,
    });
  }

  get partitions(): number {
    return this.#partitions;
  }

  /** Resolves once every event is stored in the stream; rejects 503 if it could not be. */
  async ingest(tenant: string, events: readonly UsageEvent[]): Promise<void> {
    this.#ready ??= this.#bus.ensureStream(meteringStreamConfig).catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    await this.#ready.catch((error: unknown) => {
      throw new AppError('unavailable', `the event stream is unreachable: ${String(error)}`);
    });
    const byPartition = new Map<number, UsageEvent[]>();
    for (const event of events) {
      const p = partitionOf(event.subject, this.#partitions);
      let list = byPartition.get(p);
      if (!list) {
        list = [];
        byPartition.set(p, list);
      }
      list.push(event);
    }
    const sends: Promise<undefined>[] = [];
    for (const [partition, list] of byPartition) {
      for (let i = 0; i < list.length; i += 2000) {
        sends.push(
          this.#groups.submit(`${tenant}\u0000${partition}`, { tenant, events: list.slice(i, i + 2000) }),
        );
      }
    }
    await Promise.all(sends);
  }

  async #send(key: string, parts: Part[]): Promise<undefined[]> {
    const [tenant, partition] = key.split('\u0000') as [string, string];
    const batch: IngestedBatch = {
      tenant,
      ingestedAt: Date.now(),
      events: parts.length === 1 ? parts[0]!.events : parts.flatMap((p) => p.events),
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#bus.publish(meteringSubject(Number(partition)), Buffer.from(JSON.stringify(batch)), {
          msgId: randomUUID(),
        }),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('not acknowledged in time')), this.#timeoutMs);
        }),
      ]);
    } catch (error) {
      throw new AppError(
        'unavailable',
        `the events could not be stored: ${(error as Error).message ?? error}`,
      );
    } finally {
      clearTimeout(timer);
    }
    return parts.map(() => undefined);
  }
}
