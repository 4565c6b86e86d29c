/**
 * The bus on NATS JetStream (server 2.9+), over the v3 JavaScript clients.
 *
 * `fetch` is a single pull request with `no_wait` and `expires` rather than the client's
 * `consumer.fetch`: the client's fetch holds the request open until the whole batch arrived
 * (and refuses `expires` under 1 s because it asks for idle heartbeats), which would make a
 * worker wait a full second for every batch under light load. With `no_wait` plus `expires`
 * the server answers as soon as anything is available and closes the request with a status,
 * so no message is ever in flight to an abandoned inbox, and any `expiresMs` works.
 */
import type { ConsumerInfo, ConsumerUpdateConfig, StreamInfo } from '@nats-io/jetstream';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JetStreamPublishOptions,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { type KV, Kvm, type KvEntry as NatsKvEntry } from '@nats-io/kv';
import {
  connect,
  createInbox,
  type Msg,
  type NatsConnection,
  nanos,
  headers as natsHeaders,
} from '@nats-io/transport-node';
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
} from './rules.ts';

/** Between reconnect attempts (plus jitter); attempts never stop. */
const RECONNECT_WAIT_MS = 1000;
const RECONNECT_JITTER_MS = 500;
/** How long an ack waits for the server to confirm it recorded the ack. */
const ACK_TIMEOUT_MS = 5000;
/** A pull request the server never answers (consumer gone, connection lost) is given up this long after its expiry. */
const PULL_SILENCE_MARGIN_MS = 2000;

export interface NatsBusOptions {
  /** One or more comma-separated `nats://` or `tls://` URLs. */
  url: string;
  /** Namespace for streams, buckets and subjects (see `Namespace`). */
  prefix?: string;
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /** Credentials of a NATS user (a tenant's uplink user). */
  user?: string;
  pass?: string;
  /**
   * false: do not check the JetStream API on connect (a user only allowed core subjects, like a
   * tenant on the control plane's hub); streams and consumers then fail when used. Default true.
   */
  jetstream?: boolean;
  /**
   * Replicas of every stream and KV bucket whose configuration does not say: 3 on a JetStream
   * cluster, so an acknowledged message is on a quorum of servers and survives losing one.
   * Default 1 (a single server).
   */
  replicas?: number;
}

/** Validates a NATS URL list before any connection attempt; the message never shows a password. */
export function parseNatsUrl(url: string): string[] {
  const servers = url.split(',').map((server) => server.trim());
  for (const server of servers) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(server);
    } catch {
      parsed = undefined;
    }
    const valid =
      parsed !== undefined &&
      (parsed.protocol === 'nats:' || parsed.protocol === 'tls:') &&
      parsed.hostname !== '' &&
      (parsed.pathname === '' || parsed.pathname === '/');
    if (!valid) {
      const shown = url.replace(/\/\/[^/@]*@/g, '//***@');
      throw new Error(
        `invalid NATS URL: '${shown}' (expected nats://host:port, comma-separated for a cluster)`,
      );
    }
  }
  return servers;
}

function isApiError(err: unknown, ...codes: number[]): boolean {
  return err instanceof JetStreamApiError && codes.includes(err.code);
}

/** Code 10058: the stream exists with another configuration. */
const STREAM_NAME_IN_USE = 10058;

export class NatsBus implements Bus {
  readonly kind = 'nats';
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #js: JetStreamClient;
  readonly #kvm: Kvm;
  readonly #ns: Namespace;
  readonly #replicas: number;

  private constructor(nc: NatsConnection, jsm: JetStreamManager, ns: Namespace, replicas: number) {
    this.#nc = nc;
    this.#replicas = replicas;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#kvm = new Kvm(this.#js);
    this.#ns = ns;
  }

  /** Connects (failing fast if the server is unreachable), then reconnects forever after any later loss. */
  static async connect(opts: NatsBusOptions): Promise<NatsBus> {
    const servers = parseNatsUrl(opts.url);
    const ns = new Namespace(opts.prefix);
    const nc = await connect({
      servers,
      ...(opts.name === undefined ? {} : { name: opts.name }),
      ...(opts.user === undefined ? {} : { user: opts.user }),
      ...(opts.pass === undefined ? {} : { pass: opts.pass }),
      maxReconnectAttempts: -1,
      reconnectTimeWait: RECONNECT_WAIT_MS,
      reconnectJitter: RECONNECT_JITTER_MS,
    });
    try {
      const jsm = await jetstreamManager(nc, { checkAPI: opts.jetstream ?? true });
      return new NatsBus(nc, jsm, ns, opts.replicas ?? 1);
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  get prefix(): string | undefined {
    return this.#ns.prefix;
  }

  async ensureStream(config: StreamConfig): Promise<void> {
    assertName('stream', config.name);
    for (const subject of config.subjects) assertSubject(subject, 'allowed');
    const name = this.#ns.name(config.name);
    const wanted = {
      subjects: config.subjects.map((subject) => this.#ns.subject(subject)),
      max_age: nanos(config.maxAgeMs ?? 0),
      // 0 lets the server pick its default (2 min, or max age if shorter), as the embedded bus does.
      duplicate_window: nanos(config.duplicateWindowMs ?? 0),
      num_replicas: config.replicas ?? this.#replicas,
    };
    let info: StreamInfo | undefined;
    try {
      info = await this.#jsm.streams.info(name);
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
    }
    if (!info) {
      try {
        await this.#jsm.streams.add({
          name,
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
          ...wanted,
        });
        return;
      } catch (err) {
        // Lost a creation race to another process: update below like any existing stream.
        if (!isApiError(err, STREAM_NAME_IN_USE)) throw err;
      }
    }
    const current = info?.config;
    const unchanged =
      current !== undefined &&
      [...(current.subjects ?? [])].sort().join() === [...wanted.subjects].sort().join() &&
      current.max_age === wanted.max_age &&
      (config.duplicateWindowMs === undefined || current.duplicate_window === wanted.duplicate_window) &&
      current.num_replicas === wanted.num_replicas;
    if (!unchanged) await this.#jsm.streams.update(name, wanted);
  }

  async deleteStream(name: string): Promise<void> {
    assertName('stream', name);
    try {
      await this.#jsm.streams.delete(this.#ns.name(name));
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
    }
  }

  async publish(subject: string, data: Uint8Array, opts: PublishOptions = {}): Promise<PublishAck> {
    assertSubject(subject, 'forbidden');
    const options: Partial<JetStreamPublishOptions> = {};
    if (opts.msgId !== undefined) options.msgID = opts.msgId;
    if (opts.headers !== undefined) {
      const headers = natsHeaders();
      for (const [key, value] of Object.entries(opts.headers)) headers.set(key, value);
      options.headers = headers;
    }
    try {
      const ack = await this.#js.publish(this.#ns.subject(subject), data, options);
      return { stream: this.#ns.portName(ack.stream), seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      // The client reports "no responders" on a JetStream publish as JetStream not being enabled;
      // `connect` already proved it is, so no stream captures the subject.
      if (err instanceof Error && err.name === 'JetStreamNotEnabled') throw new BusNoStreamError(subject);
      throw err;
    }
  }

  async streamInfo(name: string): Promise<StreamStatus> {
    assertName('stream', name);
    try {
      const info = await this.#jsm.streams.info(this.#ns.name(name));
      return { lastSeq: info.state.last_seq, messages: info.state.messages };
    } catch (err) {
      if (isApiError(err, JetStreamApiCodes.StreamNotFound))
        throw BusNotFoundError.stream(name, { cause: err });
      throw err;
    }
  }

  async consumer(stream: string, config: ConsumerConfig): Promise<Consumer> {
    assertName('stream', stream);
    assertName('durable', config.durable);
    if (config.filterSubject !== undefined) assertSubject(config.filterSubject, 'allowed');
    const streamName = this.#ns.name(stream);
    const filter = config.filterSubject === undefined ? '' : this.#ns.subject(config.filterSubject);
    const wanted = { ack_wait: nanos(config.ackWaitMs), max_deliver: config.maxDeliver ?? -1 };
    let info: ConsumerInfo | undefined;
    try {
      info = await this.#jsm.consumers.info(streamName, config.durable);
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    }
    if (!info) {
      await this.#jsm.consumers.add(streamName, {
        durable_name: config.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: config.deliverPolicy === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
        ack_wait: wanted.ack_wait,
        max_deliver: wanted.max_deliver,
        ...(filter === '' ? {} : { filter_subject: filter }),
      });
    } else if (
      info.config.ack_wait !== wanted.ack_wait ||
      (info.config.max_deliver ?? -1) !== wanted.max_deliver ||
      (info.config.filter_subject ?? '') !== filter
    ) {
      // The client merges the update into the current config, so removing a filter takes an
      // explicit undefined (an empty string would end up in the API subject).
      const change = {
        ...wanted,
        filter_subject: filter === '' ? undefined : filter,
      } as Partial<ConsumerUpdateConfig>;
      await this.#jsm.consumers.update(streamName, config.durable, change);
    }
    return new NatsConsumer(this.#nc, this.#jsm, this.#ns, stream, config.durable);
  }

  async kv(bucket: string, opts: { history?: number; ttlMs?: number } = {}): Promise<KvBucket> {
    assertName('bucket', bucket);
    const kv = await this.#kvm.create(this.#ns.name(bucket), {
      history: opts.history ?? 1,
      ttl: opts.ttlMs ?? 0,
      replicas: this.#replicas,
    });
    return new NatsKvBucket(kv);
  }

  notify(subject: string, data: Uint8Array): void {
    assertSubject(subject, 'forbidden');
    this.#nc.publish(this.#ns.subject(subject), data);
  }

  subscribe(
    subject: string,
    onMessage: (subject: string, data: Uint8Array) => void,
  ): { unsubscribe(): void } {
    assertSubject(subject, 'allowed');
    const subscription = this.#nc.subscribe(this.#ns.subject(subject), {
      callback: (err, msg) => {
        if (err) return;
        try {
          onMessage(this.#ns.portSubject(msg.subject), msg.data);
        } catch (handlerErr) {
          reportHandlerError(handlerErr);
        }
      },
    });
    return { unsubscribe: () => subscription.unsubscribe() };
  }

  flush(): Promise<void> {
    return this.#nc.flush();
  }

  async ping(): Promise<void> {
    await this.#nc.rtt();
  }

  /** Drains: in-flight subscription messages are delivered and pending publishes flushed first. */
  async close(): Promise<void> {
    if (this.#nc.isClosed() || this.#nc.isDraining()) {
      await this.#nc.closed();
      return;
    }
    await this.#nc.drain();
  }
}

/** `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or the 2.10+ form with domain and account hash after `ACK`. */
function parseAckSubject(reply: string): { seq: number; deliveryCount: number } {
  const tokens = reply.split('.');
  const offset = tokens.length === 9 ? 0 : 2;
  if (tokens[0] !== '$JS' || tokens[1] !== 'ACK' || tokens.length < 9 + offset) {
    throw new Error(`not a JetStream message: reply subject '${reply}'`);
  }
  return { deliveryCount: Number(tokens[4 + offset]), seq: Number(tokens[5 + offset]) };
}

/** The client hands out Node Buffers; callers get plain Uint8Arrays as from the embedded bus (a view, not a copy). */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const ACK = new TextEncoder().encode('+ACK');
const NAK = new TextEncoder().encode('-NAK');
const TERM = new TextEncoder().encode('+TERM');
const WORKING = new TextEncoder().encode('+WPI');

/**
 * Acknowledgements a binding has sent but the server has not confirmed yet. The server handles
 * acks on a queue of their own, so a pull sent right after a nak could overtake it; every
 * settle is therefore sent as a request, and the next fetch waits for the replies first.
 */
class Acknowledgements {
  readonly #nc: NatsConnection;
  readonly #inflight = new Set<Promise<unknown>>();

  constructor(nc: NatsConnection) {
    this.#nc = nc;
  }

  send(reply: string, body: Uint8Array): Promise<unknown> {
    const sent = this.#nc.request(reply, body, { timeout: ACK_TIMEOUT_MS });
    const tracked = sent.catch(() => undefined).finally(() => this.#inflight.delete(tracked));
    this.#inflight.add(tracked);
    return sent;
  }

  async settled(): Promise<void> {
    await Promise.all([...this.#inflight]);
  }
}

class NatsMessage implements BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Record<string, string> = {};
  readonly seq: number;
  readonly deliveryCount: number;
  readonly #acks: Acknowledgements;
  readonly #reply: string;
  #settled = false;

  constructor(acks: Acknowledgements, msg: Msg, subject: string) {
    const reply = msg.reply ?? '';
    const { seq, deliveryCount } = parseAckSubject(reply);
    this.subject = subject;
    this.data = plainBytes(msg.data);
    for (const [key, values] of msg.headers ?? []) this.headers[key] = values[0] ?? '';
    this.seq = seq;
    this.deliveryCount = deliveryCount;
    this.#acks = acks;
    this.#reply = reply;
  }

  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    return true;
  }

  /** A double ack: resolves once the server answered that it recorded the ack. */
  async ack(): Promise<void> {
    if (!this.#settle()) return;
    try {
      await this.#acks.send(this.#reply, ACK);
    } catch (err) {
      // Unknown whether the server got it; acking again is harmless, so let the caller retry.
      this.#settled = false;
      throw err;
    }
  }

  /** Not awaited by the caller: a lost nak or term is covered by the ack wait. */
  nak(delayMs?: number): void {
    if (!this.#settle()) return;
    const body =
      delayMs !== undefined && delayMs > 0
        ? new TextEncoder().encode(`-NAK ${JSON.stringify({ delay: nanos(delayMs) })}`)
        : NAK;
    this.#acks.send(this.#reply, body).catch(() => undefined);
  }

  term(): void {
    if (this.#settle()) this.#acks.send(this.#reply, TERM).catch(() => undefined);
  }

  working(): void {
    if (!this.#settled) this.#acks.send(this.#reply, WORKING).catch(() => undefined);
  }
}

class NatsConsumer implements Consumer {
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #ns: Namespace;
  readonly #stream: string;
  readonly #durable: string;
  readonly #acks: Acknowledgements;

  constructor(nc: NatsConnection, jsm: JetStreamManager, ns: Namespace, stream: string, durable: string) {
    this.#nc = nc;
    this.#acks = new Acknowledgements(nc);
    this.#jsm = jsm;
    this.#ns = ns;
    this.#stream = stream;
    this.#durable = durable;
  }

  async fetch(opts: { max: number; expiresMs: number }): Promise<BusMessage[]> {
    const batch = Math.max(1, Math.floor(opts.max));
    const expiresMs = Math.max(0, Math.ceil(opts.expiresMs));
    await this.#acks.settled();
    const { messages, answered } = await this.#pull(batch, expiresMs);
    // JetStream listens on the whole API subject space, so a pull for a consumer that does not
    // exist is not refused, only ignored: find out why nothing answered.
    if (!answered && messages.length === 0) await this.#info();
    return messages;
  }

  async pending(): Promise<number> {
    await this.#acks.settled();
    const info = await this.#info();
    return info.num_pending + info.num_ack_pending;
  }

  async info(): Promise<ConsumerPosition> {
    await this.#acks.settled();
    const info = await this.#info();
    return {
      ackFloor: info.ack_floor.stream_seq,
      pending: info.num_pending + info.num_ack_pending,
      delivered: info.delivered.stream_seq,
    };
  }

  async #info(): Promise<ConsumerInfo> {
    try {
      return await this.#jsm.consumers.info(this.#ns.name(this.#stream), this.#durable);
    } catch (err) {
      if (isApiError(err, JetStreamApiCodes.ConsumerNotFound, JetStreamApiCodes.StreamNotFound)) {
        throw BusNotFoundError.consumer(this.#stream, this.#durable, { cause: err });
      }
      throw err;
    }
  }

  #pull(batch: number, expiresMs: number): Promise<{ messages: BusMessage[]; answered: boolean }> {
    const subject = `$JS.API.CONSUMER.MSG.NEXT.${this.#ns.name(this.#stream)}.${this.#durable}`;
    const request =
      expiresMs > 0 ? { batch, no_wait: true, expires: nanos(expiresMs) } : { batch, no_wait: true };
    const inbox = createInbox();
    const messages: BusMessage[] = [];
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (outcome: 'answered' | 'silent' | Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        subscription.unsubscribe();
        if (outcome instanceof Error) reject(outcome);
        else resolve({ messages, answered: outcome === 'answered' });
      };
      const subscription = this.#nc.subscribe(inbox, {
        callback: (err, msg) => {
          if (err) return finish(err);
          if (msg.reply) {
            messages.push(new NatsMessage(this.#acks, msg, this.#ns.portSubject(msg.subject)));
            if (messages.length >= batch) finish('answered');
            return;
          }
          // A status closes the request: 404 nothing pending, 408 expired (or "requests pending"),
          // 409 limits such as max waiting or a deleted consumer.
          const code = msg.headers?.code ?? 0;
          if (code === 404 || code === 408 || code === 409) return finish('answered');
          if (code === 100) return;
          finish(
            new Error(
              `pull from ${this.#stream}/${this.#durable} failed: ${code} ${msg.headers?.description ?? ''}`,
            ),
          );
        },
      });
      // The connection closing (drain) ends the request with whatever arrived.
      void subscription.closed.then(() => finish('answered'));
      const timer = setTimeout(() => finish('silent'), expiresMs + PULL_SILENCE_MARGIN_MS);
      this.#nc.publish(subject, JSON.stringify(request), { reply: inbox });
    });
  }
}

function toKvEntry(entry: NatsKvEntry): KvEntry {
  return {
    key: entry.key,
    value: plainBytes(entry.value),
    revision: entry.revision,
    operation: entry.operation === 'PUT' ? 'PUT' : 'DEL',
  };
}

class NatsKvBucket implements KvBucket {
  readonly #kv: KV;

  constructor(kv: KV) {
    this.#kv = kv;
  }

  async get(key: string): Promise<KvEntry | null> {
    assertKvKey(key);
    const entry = await this.#kv.get(key);
    return entry?.operation === 'PUT' ? toKvEntry(entry) : null;
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    assertKvKey(key);
    return this.#kv.put(key, value);
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    assertKvKey(key);
    return this.#mapConflict(key, () => this.#kv.create(key, value));
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    assertKvKey(key);
    assertRevision(revision);
    return this.#mapConflict(key, () => this.#kv.update(key, value, revision));
  }

  async delete(key: string): Promise<void> {
    assertKvKey(key);
    await this.#kv.delete(key);
  }

  async keys(): Promise<string[]> {
    const keys: string[] = [];
    for await (const key of await this.#kv.keys()) keys.push(key);
    return keys;
  }

  async watch(onEntry: (entry: KvEntry) => void): Promise<{ stop(): Promise<void> }> {
    // The client delivers the last entry per key (deleted keys included) and then updates, but
    // flags the last initial entry as an update. Entries at or below the revision seen before the
    // watch started are certainly initial, so their tombstones can be skipped.
    const status = await this.#kv.status();
    const snapshotRevision = status.streamInfo.state.last_seq;
    const iterator = await this.#kv.watch();
    let markReady = (): void => {};
    const ready = new Promise<void>((resolve) => {
      markReady = resolve;
    });
    if (status.values === 0) markReady();
    let stopped = false;
    const loop = (async () => {
      try {
        for await (const entry of iterator) {
          const initial = !entry.isUpdate || entry.revision <= snapshotRevision;
          if (!initial || entry.operation === 'PUT') {
            try {
              onEntry(toKvEntry(entry));
            } catch (err) {
              reportHandlerError(err);
            }
          }
          if (entry.isUpdate) markReady();
        }
      } catch (err) {
        if (!stopped) reportHandlerError(err);
      } finally {
        markReady();
      }
    })();
    await ready;
    return {
      stop: async () => {
        stopped = true;
        iterator.stop();
        await loop;
      },
    };
  }

  async #mapConflict(key: string, write: () => Promise<number>): Promise<number> {
    try {
      return await write();
    } catch (err) {
      if (
        isApiError(
          err,
          JetStreamApiCodes.StreamWrongLastSequence,
          JetStreamApiCodes.StreamWrongLastSequenceUnknown,
        )
      ) {
        throw new BusConflictError(`key '${key}': ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
  }
}
