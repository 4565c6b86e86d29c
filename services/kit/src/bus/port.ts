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
  /** Waits up to `expiresMs` for up to `max` messages; returns what arrived (possibly none). */
  fetch(opts: { max: number; expiresMs: number }): Promise<BusMessage[]>;
  /** Messages not yet delivered plus delivered-but-unacked. */
  pending(): Promise<number>;
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
  /** Calls `onEntry` for the current value of every key, then for every later change. */
  watch(onEntry: (entry: KvEntry) => void): Promise<{ stop(): Promise<void> }>;
}

export interface Bus {
  readonly kind: 'nats' | 'embedded';
  /** Creates the stream or updates its subjects and limits. Idempotent. */
  ensureStream(config: StreamConfig): Promise<void>;
  deleteStream(name: string): Promise<void>;
  /** Durable publish: resolves once the stream has stored the message. */
  publish(subject: string, data: Uint8Array, opts?: PublishOptions): Promise<PublishAck>;
  /** Creates the durable consumer if missing and binds to it. */
  consumer(stream: string, config: ConsumerConfig): Promise<Consumer>;
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
