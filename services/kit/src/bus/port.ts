/**
 * The bus port: durable streams (JetStream), durable pull consumers with explicit ack,
 * key-value buckets, and plain at-most-once notifications. NATS JetStream in production,
 * an in-process implementation in `npm start`. One conformance suite runs against both.
 */
export interface StreamConfig {
  name: string;
  subjects: string[];
  /** Messages older than this are dropped. 0 or unset: kept forever. */
  maxAgeMs?: number;
  /** Window in which a repeated `msgId` is acknowledged as a duplicate and not stored again. */
  duplicateWindowMs?: number;
  /** Replicas in a clustered JetStream (ignored by the embedded bus). */
  replicas?: number;
}

export interface PublishAck {
  stream: string;
  seq: number;
  /** True when `msgId` was seen within the duplicate window: nothing new was stored. */
  duplicate: boolean;
}

export interface PublishOptions {
  /** Deduplication id (`Nats-Msg-Id`). */
  msgId?: string;
  headers?: Record<string, string>;
}

export interface ConsumerConfig {
  /** Durable name: consumers with the same name share one cursor and one ack state. */
  durable: string;
  filterSubject?: string;
  /** Unacknowledged messages are redelivered after this. */
  ackWaitMs: number;
  /** After this many deliveries a message is no longer redelivered. Unset: unlimited. */
  maxDeliver?: number;
  /** Where a new consumer starts. Default `all`. */
  deliverPolicy?: 'all' | 'new';
}

/**
 * A fetched message. `ack`, `nak` and `term` settle it: once one of them was called, later
 * calls on the same message are ignored (`working` only resets the ack timer).
 */
export interface BusMessage {
  subject: string;
  data: Uint8Array;
  headers: Record<string, string>;
  /** Stream sequence. */
  seq: number;
  /** 1 on first delivery, then 2, 3, ... on redelivery. */
  deliveryCount: number;
  ack(): Promise<void>;
  /** Redeliver, after `delayMs` if given. */
  nak(delayMs?: number): void;
  /** Never redeliver. */
  term(): void;
  /** Reset the ack timer while a long batch is being processed. */
  working(): void;
}

export interface Consumer {
  /**
   * Returns up to `max` messages as soon as at least one is available (redeliveries first, then
   * new ones in stream order); waits up to `expiresMs` for the first one, and returns none if
   * nothing arrived by then. `expiresMs: 0` never waits, and on NATS can miss a message whose
   * publish was acknowledged a moment ago (consumers learn of new messages asynchronously); a
   * missed message stays undelivered, so the next fetch returns it.
   */
  fetch(opts: { max: number; expiresMs: number }): Promise<BusMessage[]>;
  /** Messages not yet delivered plus delivered-but-unacked. */
  pending(): Promise<number>;
  /**
   * The consumer's position, as JetStream's consumer info reports it (NATS 2.9). Rejects with
   * `BusNotFoundError` once the consumer is gone.
   */
  info(): Promise<ConsumerPosition>;
}

export interface ConsumerPosition {
  /**
   * JetStream's ack floor (`ack_floor.stream_seq`) with NATS 2.9's bookkeeping, which the
   * embedded bus reproduces. No message of the consumer at or below it is still unacked, but it
   * is not simply the highest contiguously acked sequence:
   * - 0 until a settle moves it (also for a consumer created with `deliverPolicy: 'new'`);
   * - a settle (ack, term, or a pending message dropped by max age) that leaves nothing unacked
   *   sets it to `delivered`, which may be a message the filter skipped;
   * - settling the earliest outstanding delivery moves it to just below the next unacked message
   *   (again possibly a skipped one); any other settle leaves it alone: after ack 2 it stays 0,
   *   and acking 1 then moves it past both;
   * - giving up on a message after `maxDeliver` deliveries does not move it; the next settle does.
   */
  ackFloor: number;
  /** Same as `pending()`. */
  pending: number;
  /**
   * The stream sequence the consumer has read up to (JetStream's `delivered.stream_seq`): the
   * last message delivered, or the stream's last sequence once a fetch found nothing more (a
   * fetch with `expiresMs: 0` that finds nothing at all leaves it where it is).
   */
  delivered: number;
}

export interface StreamStatus {
  /** Sequence of the last message ever stored (0 when none was); kept when messages expire. */
  lastSeq: number;
  /** Messages currently stored. */
  messages: number;
}

export interface KvEntry {
  key: string;
  value: Uint8Array;
  revision: number;
  operation: 'PUT' | 'DEL';
}

export interface KvBucket {
  get(key: string): Promise<KvEntry | null>;
  /** Returns the new revision. */
  put(key: string, value: Uint8Array): Promise<number>;
  /** Fails with `BusConflictError` if the key exists. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Compare-and-set: fails with `BusConflictError` unless the key's revision is `revision`. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  delete(key: string): Promise<void>;
  keys(): Promise<string[]>;
  /**
   * Calls `onEntry` for the current value of every key (deleted keys are skipped), in revision
   * order, then for every later change including deletes. Resolves once the current values
   * have been delivered.
   */
  watch(onEntry: (entry: KvEntry) => void): Promise<{ stop(): Promise<void> }>;
}

export interface Bus {
  readonly kind: 'nats' | 'embedded';
  /** Creates the stream or updates its subjects and limits. Idempotent. */
  ensureStream(config: StreamConfig): Promise<void>;
  /** Deletes the stream and its consumers; a missing stream is not an error. */
  deleteStream(name: string): Promise<void>;
  /**
   * Durable publish: resolves once the stream has stored the message. Rejects with
   * `BusNoStreamError` when no stream captures `subject`.
   */
  publish(subject: string, data: Uint8Array, opts?: PublishOptions): Promise<PublishAck>;
  /** Rejects with `BusNotFoundError` when the stream does not exist. */
  streamInfo(name: string): Promise<StreamStatus>;
  /**
   * Creates the durable consumer if missing and binds to it; an existing one takes the new
   * `filterSubject`, `ackWaitMs` and `maxDeliver` and keeps its position (`deliverPolicy` only
   * applies on creation).
   */
  consumer(stream: string, config: ConsumerConfig): Promise<Consumer>;
  /** Creates the bucket if missing and binds to it; an existing bucket keeps its options. */
  kv(bucket: string, opts?: { history?: number; ttlMs?: number }): Promise<KvBucket>;
  /** At-most-once notification (core NATS publish): alerts, config pushes, kill switch. */
  notify(subject: string, data: Uint8Array): void;
  /** Subscribes to notifications; `subject` may use `*` and `>` wildcards. */
  subscribe(subject: string, onMessage: (subject: string, data: Uint8Array) => void): { unsubscribe(): void };
  /** Resolves once everything notified so far has been flushed to the server. */
  flush(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class BusConflictError extends Error {
  override readonly name = 'BusConflictError';
}

/** Publish to a subject that no stream captures (NATS answers "no responders"). */
export class BusNoStreamError extends Error {
  override readonly name = 'BusNoStreamError';

  constructor(subject: string) {
    super(`no stream captures subject '${subject}'`);
  }
}

/** A stream or consumer that does not exist (any more). */
export class BusNotFoundError extends Error {
  override readonly name = 'BusNotFoundError';

  static stream(name: string, options?: ErrorOptions): BusNotFoundError {
    return new BusNotFoundError(`stream not found: ${name}`, options);
  }

  static consumer(stream: string, durable: string, options?: ErrorOptions): BusNotFoundError {
    return new BusNotFoundError(`consumer not found: ${stream}/${durable}`, options);
  }
}
