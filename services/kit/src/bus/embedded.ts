/**
 * The in-process bus for `npm start` and unit tests. An `EmbeddedServer` plays the NATS
 * server (streams, consumers, KV buckets, core subscriptions) and each `EmbeddedBus` is a
 * connection to it, so that several services in one process talk through one server just as
 * they would through NATS. The observable semantics follow JetStream as the conformance and
 * equivalence suites pin them down: per-stream sequences from 1, dedupe within the duplicate
 * window answering the original sequence, ack-wait redelivery, nak with delay, term, working,
 * max deliver, and KV revisions that are the bucket's stream sequence.
 *
 * Nothing here is durable and every timer is unref'd, so an idle bus never keeps the process alive.
 */
import type {
  Bus,
  BusMessage,
  Consumer,
  ConsumerConfig,
  ConsumerPosition,
  KvBucket,
  KvEntry,
  PublishAck,
  PublishOptions,
  StreamConfig,
  StreamStatus,
} from './port.ts';
import { BusConflictError, BusNoStreamError, BusNotFoundError } from './port.ts';
import {
  assertKvKey,
  assertName,
  assertRevision,
  assertSubject,
  Namespace,
  reportHandlerError,
  subjectMatches,
  subjectsOverlap,
} from './rules.ts';

/** JetStream's default duplicate window. */
const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;

interface StoredMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  headers: Record<string, string>;
  storedAt: number;
}

interface Delivery {
  message: StoredMessage;
  deliveryCount: number;
  /** The consumer sequence of this delivery (every delivery, redeliveries included, takes the next one). */
  consumerSeq: number;
}

/** A delivered, unacknowledged message. `queued`: its ack wait ran out (or it was nak'd) and it waits for redelivery. */
interface PendingDelivery {
  deliveries: number;
  /** The consumer sequence of the first delivery; redeliveries keep it, as JetStream does. */
  consumerSeq: number;
  deadline: number;
  queued: boolean;
}

/** A fetch waiting for its first message. */
interface Waiter {
  max: number;
  settle(deliveries: Delivery[]): void;
}

/** Delivers items to one callback asynchronously and in order, like a subscription's inbound queue. */
class Mailbox<T> {
  #queue: T[] = [];
  #scheduled = false;
  #closed = false;
  #idle: Array<() => void> = [];
  readonly #deliver: (item: T) => void;

  constructor(deliver: (item: T) => void) {
    this.#deliver = deliver;
  }

  push(item: T): void {
    if (this.#closed) return;
    this.#queue.push(item);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#drain());
    }
  }

  /** Resolves once everything pushed so far was delivered. */
  idle(): Promise<void> {
    if (!this.#scheduled) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#releaseIdle();
  }

  #drain(): void {
    this.#scheduled = false;
    const items = this.#queue;
    this.#queue = [];
    for (const item of items) {
      if (this.#closed) break;
      try {
        this.#deliver(item);
      } catch (err) {
        reportHandlerError(err);
      }
    }
    if (!this.#scheduled) this.#releaseIdle();
  }

  #releaseIdle(): void {
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }
}

class StreamState {
  readonly name: string;
  subjects: string[] = [];
  maxAgeMs = 0;
  duplicateWindowMs = DEFAULT_DUPLICATE_WINDOW_MS;
  /** Ascending by `seq`. */
  messages: StoredMessage[] = [];
  lastSeq = 0;
  /** Insertion order is time order, so expired ids are always at the front. */
  readonly msgIds = new Map<string, { seq: number; at: number }>();
  readonly consumers = new Map<string, ConsumerState>();

  constructor(name: string) {
    this.name = name;
  }

  configure(config: StreamConfig): void {
    const maxAgeMs = config.maxAgeMs ?? 0;
    let duplicateWindowMs = config.duplicateWindowMs ?? 0;
    if (maxAgeMs > 0 && duplicateWindowMs > maxAgeMs) {
      throw new Error('duplicates window can not be larger then max age');
    }
    if (duplicateWindowMs === 0) {
      duplicateWindowMs =
        maxAgeMs > 0 && maxAgeMs < DEFAULT_DUPLICATE_WINDOW_MS ? maxAgeMs : DEFAULT_DUPLICATE_WINDOW_MS;
    }
    this.subjects = [...config.subjects];
    this.maxAgeMs = maxAgeMs;
    this.duplicateWindowMs = duplicateWindowMs;
  }

  captures(subject: string): boolean {
    return this.subjects.some((pattern) => subjectMatches(pattern, subject));
  }

  store(subject: string, data: Uint8Array, headers: Record<string, string>, msgId: string | undefined) {
    const now = Date.now();
    this.expire(now);
    if (msgId !== undefined) {
      const seen = this.msgIds.get(msgId);
      if (seen) return { seq: seen.seq, duplicate: true };
    }
    const seq = ++this.lastSeq;
    const stored = msgId === undefined ? { ...headers } : { ...headers, 'Nats-Msg-Id': msgId };
    this.messages.push({ seq, subject, data: data.slice(), headers: stored, storedAt: now });
    if (msgId !== undefined) this.msgIds.set(msgId, { seq, at: now });
    // Like JetStream, only consumers whose filter matches hear of it: a waiting fetch elsewhere
    // does not read (and so skip) the new message until something it wants arrives.
    for (const consumer of this.consumers.values()) if (consumer.wants(subject)) consumer.wake();
    return { seq, duplicate: false };
  }

  expire(now: number): void {
    if (this.maxAgeMs > 0) {
      let drop = 0;
      while (drop < this.messages.length && this.messages[drop]!.storedAt <= now - this.maxAgeMs) drop++;
      if (drop > 0) this.messages.splice(0, drop);
    }
    for (const [id, seen] of this.msgIds) {
      if (seen.at > now - this.duplicateWindowMs) break;
      this.msgIds.delete(id);
    }
  }

  /** Index of the first message with a sequence above `seq`. */
  indexAfter(seq: number): number {
    let lo = 0;
    let hi = this.messages.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.messages[mid]!.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  find(seq: number): StoredMessage | undefined {
    const message = this.messages[this.indexAfter(seq - 1)];
    return message?.seq === seq ? message : undefined;
  }

  firstSeq(): number {
    return this.messages[0]?.seq ?? this.lastSeq + 1;
  }
}

/**
 * One durable consumer: a cursor over the stream plus the delivered-but-unacked set. Every
 * binding of the durable shares this state, so competing fetchers split the messages.
 */
class ConsumerState {
  readonly stream: StreamState;
  readonly durable: string;
  filterSubject: string | undefined;
  ackWaitMs: number;
  /** 0: unlimited. */
  maxDeliver: number;
  /**
   * Highest stream sequence handed out or skipped by the filter: JetStream's `delivered.stream_seq`
   * (its `sseq - 1`). A fetch that runs out of messages moves it to the stream's last sequence.
   */
  cursor: number;
  /** Deliveries so far, redeliveries included: the last consumer sequence (JetStream's `dseq - 1`). */
  consumerSeq = 0;
  /** JetStream's ack floor, stream and consumer sequence (`asflr`, `adflr`), kept by `#settled`. */
  ackFloor = 0;
  ackFloorConsumerSeq = 0;
  readonly pending = new Map<number, PendingDelivery>();
  /** Sequences due for redelivery, served before new messages. */
  redeliveries: number[] = [];
  readonly waiters: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;
  #wakeScheduled = false;

  constructor(stream: StreamState, config: ConsumerConfig) {
    this.stream = stream;
    this.durable = config.durable;
    this.filterSubject = config.filterSubject;
    this.ackWaitMs = config.ackWaitMs;
    this.maxDeliver = config.maxDeliver ?? 0;
    stream.expire(Date.now());
    this.cursor = config.deliverPolicy === 'new' ? stream.lastSeq : stream.firstSeq() - 1;
  }

  reconfigure(config: ConsumerConfig): void {
    this.filterSubject = config.filterSubject;
    this.ackWaitMs = config.ackWaitMs;
    this.maxDeliver = config.maxDeliver ?? 0;
    this.wake();
  }

  wants(subject: string): boolean {
    return this.filterSubject === undefined || subjectMatches(this.filterSubject, subject);
  }

  #matches(message: StoredMessage): boolean {
    return this.wants(message.subject);
  }

  /**
   * Applies the stream's max age: a pending message that expired counts as settled (JetStream
   * processes it like an ack), lowest sequence first.
   */
  #sync(now: number): void {
    this.stream.expire(now);
    const first = this.stream.firstSeq();
    const gone = [...this.pending.keys()].filter((seq) => seq < first).sort((a, b) => a - b);
    for (const seq of gone) this.#settled(seq, this.pending.get(seq)!.consumerSeq);
  }

  /**
   * An ack or term: JetStream 2.9's `processAckMsg` for explicit acks. `consumerSeq` is that of
   * the delivery being settled; a message still pending uses its first delivery's instead.
   */
  #settled(seq: number, consumerSeq: number): void {
    let dseq = consumerSeq;
    const delivery = this.pending.get(seq);
    if (delivery) {
      this.pending.delete(seq);
      dseq = delivery.consumerSeq;
    }
    if (this.pending.size === 0) {
      this.ackFloorConsumerSeq = this.consumerSeq;
      this.ackFloor = this.cursor;
    } else if (dseq === this.ackFloorConsumerSeq + 1) {
      this.ackFloorConsumerSeq = dseq;
      this.ackFloor = seq;
      // Up to just below the next message still pending above it.
      let next: number | undefined;
      for (const pendingSeq of this.pending.keys()) {
        if (pendingSeq > seq && pendingSeq <= this.cursor && (next === undefined || pendingSeq < next)) {
          next = pendingSeq;
        }
      }
      if (next !== undefined) {
        this.ackFloorConsumerSeq = this.pending.get(next)!.consumerSeq - 1;
        this.ackFloor = next - 1;
      }
    }
    const queued = this.redeliveries.indexOf(seq);
    if (queued >= 0) this.redeliveries.splice(queued, 1);
  }

  /** Moves deliveries whose ack wait ran out to the redelivery queue, lowest sequence first. */
  #collectExpired(now: number): void {
    const expired: number[] = [];
    for (const [seq, delivery] of this.pending) {
      if (!delivery.queued && delivery.deadline <= now) expired.push(seq);
    }
    expired.sort((a, b) => a - b);
    for (const seq of expired) {
      this.pending.get(seq)!.queued = true;
      this.redeliveries.push(seq);
    }
  }

  /**
   * Whether a fetch that does not wait has anything to do: JetStream answers such a pull at once
   * with "no messages", without reading (or skipping) anything, unless matching messages are
   * left or redeliveries are due.
   */
  hasWork(now: number): boolean {
    this.#sync(now);
    this.#collectExpired(now);
    if (this.redeliveries.length > 0) return true;
    const messages = this.stream.messages;
    for (let i = this.stream.indexAfter(this.cursor); i < messages.length; i++) {
      if (this.#matches(messages[i]!)) return true;
    }
    return false;
  }

  take(max: number, now: number): Delivery[] {
    this.#sync(now);
    this.#collectExpired(now);
    const out: Delivery[] = [];
    while (out.length < max && this.redeliveries.length > 0) {
      const seq = this.redeliveries.shift()!;
      const delivery = this.pending.get(seq);
      if (!delivery?.queued) continue;
      const message = this.stream.find(seq);
      if (!message || (this.maxDeliver > 0 && delivery.deliveries >= this.maxDeliver)) {
        this.pending.delete(seq);
        continue;
      }
      delivery.deliveries++;
      delivery.deadline = now + this.ackWaitMs;
      delivery.queued = false;
      out.push({ message, deliveryCount: delivery.deliveries, consumerSeq: ++this.consumerSeq });
    }
    const messages = this.stream.messages;
    for (let i = this.stream.indexAfter(this.cursor); i < messages.length && out.length < max; i++) {
      const message = messages[i]!;
      this.cursor = message.seq;
      if (!this.#matches(message)) continue;
      const consumerSeq = ++this.consumerSeq;
      this.pending.set(message.seq, {
        deliveries: 1,
        consumerSeq,
        deadline: now + this.ackWaitMs,
        queued: false,
      });
      out.push({ message, deliveryCount: 1, consumerSeq });
    }
    // Short of `max`: JetStream looked further, found the end of the stream, and moved past it.
    if (out.length < max) this.cursor = Math.max(this.cursor, this.stream.lastSeq);
    return out;
  }

  pendingCount(now: number): number {
    this.#sync(now);
    let undelivered = 0;
    const messages = this.stream.messages;
    for (let i = this.stream.indexAfter(this.cursor); i < messages.length; i++) {
      if (this.#matches(messages[i]!)) undelivered++;
    }
    return undelivered + this.pending.size;
  }

  position(now: number): ConsumerPosition {
    const pending = this.pendingCount(now);
    return { ackFloor: this.ackFloor, pending, delivered: this.cursor };
  }

  ack(seq: number, consumerSeq: number): void {
    this.#sync(Date.now());
    this.#settled(seq, consumerSeq);
  }

  /** JetStream treats a term as an ack that also sends an advisory. */
  term(seq: number, consumerSeq: number): void {
    this.ack(seq, consumerSeq);
  }

  nak(seq: number, delayMs: number): void {
    const delivery = this.pending.get(seq);
    if (!delivery || delivery.queued) return;
    if (delayMs > 0) {
      delivery.deadline = Date.now() + delayMs;
      this.#scheduleTimer(Date.now());
      return;
    }
    delivery.queued = true;
    this.redeliveries.push(seq);
    this.wake();
  }

  working(seq: number): void {
    const delivery = this.pending.get(seq);
    if (delivery && !delivery.queued) delivery.deadline = Date.now() + this.ackWaitMs;
  }

  /** Serves waiting fetches once the current synchronous work (e.g. a burst of publishes) is done. */
  wake(): void {
    if (this.#wakeScheduled || this.waiters.length === 0) return;
    this.#wakeScheduled = true;
    queueMicrotask(() => {
      this.#wakeScheduled = false;
      this.dispatch();
    });
  }

  /** Serves waiting fetches in arrival order, each with what is available now. */
  dispatch(): void {
    const now = Date.now();
    while (this.waiters.length > 0) {
      const waiter = this.waiters[0]!;
      const deliveries = this.take(waiter.max, now);
      if (deliveries.length === 0) break;
      this.waiters.shift();
      waiter.settle(deliveries);
    }
    this.#scheduleTimer(now);
  }

  removeWaiter(waiter: Waiter): void {
    const i = this.waiters.indexOf(waiter);
    if (i >= 0) this.waiters.splice(i, 1);
    if (this.waiters.length === 0) this.#scheduleTimer(Date.now());
  }

  /** While someone waits, wake up when the next ack wait (or nak delay) runs out. */
  #scheduleTimer(now: number): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.waiters.length === 0) return;
    let next = Number.POSITIVE_INFINITY;
    for (const delivery of this.pending.values()) {
      if (!delivery.queued && delivery.deadline < next) next = delivery.deadline;
    }
    if (next === Number.POSITIVE_INFINITY) return;
    this.#timer = setTimeout(() => this.dispatch(), Math.max(0, next - now));
    this.#timer.unref();
  }

  /** The consumer is gone (its stream was deleted): waiting fetches return empty. */
  close(): void {
    clearTimeout(this.#timer);
    for (const waiter of this.waiters.splice(0)) waiter.settle([]);
  }
}

interface KvRecord {
  key: string;
  value: Uint8Array;
  revision: number;
  operation: 'PUT' | 'DEL';
  storedAt: number;
}

class BucketState {
  readonly ttlMs: number;
  lastRevision = 0;
  /** The last operation per key (a delete leaves a tombstone, as in NATS). */
  readonly records = new Map<string, KvRecord>();
  readonly watchers = new Set<Mailbox<KvRecord>>();

  constructor(ttlMs: number) {
    this.ttlMs = ttlMs;
  }

  live(key: string, now: number): KvRecord | undefined {
    const record = this.records.get(key);
    if (record && this.ttlMs > 0 && record.storedAt <= now - this.ttlMs) {
      this.records.delete(key);
      return undefined;
    }
    return record;
  }

  liveRecords(now: number): KvRecord[] {
    const out: KvRecord[] = [];
    for (const key of [...this.records.keys()]) {
      const record = this.live(key, now);
      if (record) out.push(record);
    }
    return out.sort((a, b) => a.revision - b.revision);
  }

  /** `expected`: the revision the key's last operation must have (0: none), like `Nats-Expected-Last-Subject-Sequence`. */
  write(key: string, value: Uint8Array, operation: 'PUT' | 'DEL', expected?: number): number {
    const now = Date.now();
    const current = this.live(key, now);
    if (expected !== undefined && (current?.revision ?? 0) !== expected) {
      throw conflict(key, current?.revision ?? 0);
    }
    const record: KvRecord = {
      key,
      value: value.slice(),
      revision: ++this.lastRevision,
      operation,
      storedAt: now,
    };
    this.records.set(key, record);
    for (const watcher of this.watchers) watcher.push(record);
    return record.revision;
  }
}

function conflict(key: string, lastRevision: number): BusConflictError {
  return new BusConflictError(`key '${key}': wrong last sequence: ${lastRevision}`);
}

function toKvEntry(record: KvRecord): KvEntry {
  return {
    key: record.key,
    value: record.value.slice(),
    revision: record.revision,
    operation: record.operation,
  };
}

interface CoreSubscription {
  pattern: string;
  mailbox: Mailbox<{ subject: string; data: Uint8Array }>;
}

/** The in-process stand-in for a NATS server. All names here are server names (already prefixed). */
export class EmbeddedServer {
  readonly streams = new Map<string, StreamState>();
  readonly buckets = new Map<string, BucketState>();
  readonly subscriptions = new Set<CoreSubscription>();

  ensureStream(config: StreamConfig): void {
    assertName('stream', config.name);
    if (config.subjects.length === 0) throw new Error(`stream ${config.name} needs at least one subject`);
    for (const subject of config.subjects) assertSubject(subject, 'allowed');
    for (const other of this.streams.values()) {
      if (other.name === config.name) continue;
      if (other.subjects.some((a) => config.subjects.some((b) => subjectsOverlap(a, b)))) {
        throw new Error('subjects overlap with an existing stream');
      }
    }
    const stream = this.streams.get(config.name) ?? new StreamState(config.name);
    stream.configure(config);
    this.streams.set(config.name, stream);
  }

  deleteStream(name: string): void {
    const stream = this.streams.get(name);
    if (!stream) return;
    this.streams.delete(name);
    for (const consumer of stream.consumers.values()) consumer.close();
  }

  /** `undefined` when no stream captures the subject. */
  publish(
    subject: string,
    data: Uint8Array,
    opts: PublishOptions,
  ): { stream: string; seq: number; duplicate: boolean } | undefined {
    for (const stream of this.streams.values()) {
      if (stream.captures(subject)) {
        return { stream: stream.name, ...stream.store(subject, data, opts.headers ?? {}, opts.msgId) };
      }
    }
    return undefined;
  }

  consumer(streamName: string, config: ConsumerConfig): ConsumerState {
    assertName('durable', config.durable);
    const stream = this.streams.get(streamName);
    if (!stream) throw new Error(`stream not found: ${streamName}`);
    if (config.filterSubject !== undefined) {
      const filter = config.filterSubject;
      assertSubject(filter, 'allowed');
      if (!stream.subjects.some((subject) => subjectsOverlap(subject, filter))) {
        throw new Error('consumer filter subject is not a valid subset of the interest subjects');
      }
    }
    const existing = stream.consumers.get(config.durable);
    if (existing) {
      existing.reconfigure(config);
      return existing;
    }
    const created = new ConsumerState(stream, config);
    stream.consumers.set(config.durable, created);
    return created;
  }

  bucket(name: string, opts: { history?: number; ttlMs?: number }): BucketState {
    assertName('bucket', name);
    const existing = this.buckets.get(name);
    if (existing) return existing;
    const created = new BucketState(opts.ttlMs ?? 0);
    this.buckets.set(name, created);
    return created;
  }

  notify(subject: string, data: Uint8Array): void {
    for (const subscription of this.subscriptions) {
      if (subjectMatches(subscription.pattern, subject))
        subscription.mailbox.push({ subject, data: data.slice() });
    }
  }
}

let sharedServer: EmbeddedServer | undefined;

/** The process-wide server that `EmbeddedBus` connects to by default, so the services of `npm start` share one bus. */
export function sharedEmbeddedServer(): EmbeddedServer {
  sharedServer ??= new EmbeddedServer();
  return sharedServer;
}

class EmbeddedMessage implements BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Record<string, string>;
  readonly seq: number;
  readonly deliveryCount: number;
  readonly #consumerSeq: number;
  readonly #consumer: ConsumerState;
  #settled = false;

  constructor(delivery: Delivery, subject: string, consumer: ConsumerState) {
    this.subject = subject;
    this.data = delivery.message.data.slice();
    this.headers = { ...delivery.message.headers };
    this.seq = delivery.message.seq;
    this.deliveryCount = delivery.deliveryCount;
    this.#consumerSeq = delivery.consumerSeq;
    this.#consumer = consumer;
  }

  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    return true;
  }

  ack(): Promise<void> {
    if (this.#settle()) this.#consumer.ack(this.seq, this.#consumerSeq);
    return Promise.resolve();
  }

  nak(delayMs?: number): void {
    if (this.#settle()) this.#consumer.nak(this.seq, delayMs ?? 0);
  }

  term(): void {
    if (this.#settle()) this.#consumer.term(this.seq, this.#consumerSeq);
  }

  working(): void {
    if (!this.#settled) this.#consumer.working(this.seq);
  }
}

export interface EmbeddedBusOptions {
  /** Namespace for streams, buckets and subjects (see `Namespace`). */
  prefix?: string;
  /** Defaults to the process-wide `sharedEmbeddedServer()`. */
  server?: EmbeddedServer;
}

/** A connection to an `EmbeddedServer`. */
export class EmbeddedBus implements Bus {
  readonly kind = 'embedded';
  readonly server: EmbeddedServer;
  readonly #ns: Namespace;
  #closed = false;
  /** What this connection holds open, released on close. */
  readonly #subscriptions = new Set<CoreSubscription>();
  readonly #waiters = new Map<Waiter, () => void>();
  readonly #watchers = new Set<() => void>();

  constructor(opts: EmbeddedBusOptions = {}) {
    this.server = opts.server ?? sharedEmbeddedServer();
    this.#ns = new Namespace(opts.prefix);
  }

  get prefix(): string | undefined {
    return this.#ns.prefix;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('bus closed');
  }

  async ensureStream(config: StreamConfig): Promise<void> {
    this.#assertOpen();
    assertName('stream', config.name);
    this.server.ensureStream({
      ...config,
      name: this.#ns.name(config.name),
      subjects: config.subjects.map((subject) => this.#ns.subject(subject)),
    });
  }

  async deleteStream(name: string): Promise<void> {
    this.#assertOpen();
    this.server.deleteStream(this.#ns.name(name));
  }

  async publish(subject: string, data: Uint8Array, opts: PublishOptions = {}): Promise<PublishAck> {
    this.#assertOpen();
    assertSubject(subject, 'forbidden');
    const ack = this.server.publish(this.#ns.subject(subject), data, opts);
    if (!ack) throw new BusNoStreamError(subject);
    return { stream: this.#ns.portName(ack.stream), seq: ack.seq, duplicate: ack.duplicate };
  }

  async streamInfo(name: string): Promise<StreamStatus> {
    this.#assertOpen();
    assertName('stream', name);
    const stream = this.server.streams.get(this.#ns.name(name));
    if (!stream) throw BusNotFoundError.stream(name);
    stream.expire(Date.now());
    return { lastSeq: stream.lastSeq, messages: stream.messages.length };
  }

  async consumer(stream: string, config: ConsumerConfig): Promise<Consumer> {
    this.#assertOpen();
    assertName('stream', stream);
    const serverConfig: ConsumerConfig = { ...config };
    if (config.filterSubject !== undefined) {
      assertSubject(config.filterSubject, 'allowed');
      serverConfig.filterSubject = this.#ns.subject(config.filterSubject);
    }
    this.server.consumer(this.#ns.name(stream), serverConfig);
    const serverStream = this.#ns.name(stream);
    const bound = (): ConsumerState => {
      this.#assertOpen();
      const state = this.server.streams.get(serverStream)?.consumers.get(config.durable);
      if (!state) throw BusNotFoundError.consumer(stream, config.durable);
      return state;
    };
    return {
      fetch: async (opts) => this.#fetch(bound(), opts),
      pending: async () => bound().pendingCount(Date.now()),
      info: async () => bound().position(Date.now()),
    };
  }

  #fetch(state: ConsumerState, opts: { max: number; expiresMs: number }): Promise<BusMessage[]> {
    const wrap = (deliveries: Delivery[]): BusMessage[] =>
      deliveries.map((d) => new EmbeddedMessage(d, this.#ns.portSubject(d.message.subject), state));
    const max = Math.max(1, Math.floor(opts.max));
    if (opts.expiresMs <= 0 && !state.hasWork(Date.now())) return Promise.resolve([]);
    const available = state.take(max, Date.now());
    if (available.length > 0 || opts.expiresMs <= 0) return Promise.resolve(wrap(available));
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (deliveries: Delivery[]): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        resolve(wrap(deliveries));
      };
      const waiter: Waiter = { max, settle: finish };
      const abandon = (): void => {
        state.removeWaiter(waiter);
        finish([]);
      };
      timer = setTimeout(abandon, opts.expiresMs);
      timer.unref();
      this.#waiters.set(waiter, abandon);
      state.waiters.push(waiter);
      state.dispatch();
    });
  }

  async kv(bucket: string, opts: { history?: number; ttlMs?: number } = {}): Promise<KvBucket> {
    this.#assertOpen();
    assertName('bucket', bucket);
    const state = this.server.bucket(this.#ns.name(bucket), opts);
    const open = (key: string): number => {
      this.#assertOpen();
      assertKvKey(key);
      return Date.now();
    };
    return {
      get: async (key) => {
        const record = state.live(key, open(key));
        return record?.operation === 'PUT' ? toKvEntry(record) : null;
      },
      put: async (key, value) => {
        open(key);
        return state.write(key, value, 'PUT');
      },
      create: async (key, value) => {
        const current = state.live(key, open(key));
        if (current?.operation === 'PUT') throw conflict(key, current.revision);
        return state.write(key, value, 'PUT', current?.revision ?? 0);
      },
      update: async (key, value, revision) => {
        open(key);
        assertRevision(revision);
        return state.write(key, value, 'PUT', revision);
      },
      delete: async (key) => {
        open(key);
        state.write(key, new Uint8Array(0), 'DEL');
      },
      keys: async () => {
        this.#assertOpen();
        return state
          .liveRecords(Date.now())
          .filter((record) => record.operation === 'PUT')
          .map((record) => record.key);
      },
      watch: async (onEntry) => {
        this.#assertOpen();
        const mailbox = new Mailbox<KvRecord>((record) => onEntry(toKvEntry(record)));
        for (const record of state.liveRecords(Date.now())) {
          if (record.operation === 'PUT') mailbox.push(record);
        }
        state.watchers.add(mailbox);
        const stop = (): void => {
          state.watchers.delete(mailbox);
          mailbox.close();
          this.#watchers.delete(stop);
        };
        this.#watchers.add(stop);
        await mailbox.idle();
        return { stop: async () => stop() };
      },
    };
  }

  notify(subject: string, data: Uint8Array): void {
    this.#assertOpen();
    assertSubject(subject, 'forbidden');
    this.server.notify(this.#ns.subject(subject), data);
  }

  subscribe(
    subject: string,
    onMessage: (subject: string, data: Uint8Array) => void,
  ): { unsubscribe(): void } {
    this.#assertOpen();
    assertSubject(subject, 'allowed');
    const subscription: CoreSubscription = {
      pattern: this.#ns.subject(subject),
      mailbox: new Mailbox(({ subject: serverSubject, data }) =>
        onMessage(this.#ns.portSubject(serverSubject), data),
      ),
    };
    this.server.subscriptions.add(subscription);
    this.#subscriptions.add(subscription);
    return {
      unsubscribe: () => {
        this.server.subscriptions.delete(subscription);
        this.#subscriptions.delete(subscription);
        subscription.mailbox.close();
      },
    };
  }

  /** Nothing to send to a server; resolves once every notification so far has reached its subscribers. */
  async flush(): Promise<void> {
    this.#assertOpen();
    await Promise.all([...this.server.subscriptions].map((subscription) => subscription.mailbox.idle()));
  }

  async ping(): Promise<void> {
    this.#assertOpen();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.all([...this.#subscriptions].map((subscription) => subscription.mailbox.idle()));
    this.#closed = true;
    for (const subscription of this.#subscriptions) {
      this.server.subscriptions.delete(subscription);
      subscription.mailbox.close();
    }
    this.#subscriptions.clear();
    for (const abandon of [...this.#waiters.values()]) abandon();
    for (const stop of [...this.#watchers]) stop();
  }
}
