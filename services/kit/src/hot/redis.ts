/**
 * The production hot state: Redis through ioredis.
 *
 * - Auto-pipelining: concurrent calls from one event-loop turn share one write.
 * - Scripts go out as EVALSHA, and on NOSCRIPT (first use, SCRIPT FLUSH, a restarted or
 *   failed-over Redis) the source is sent with EVAL. Not ioredis `defineCommand`: an
 *   auto-pipeline open when a command is defined lacks it (ioredis copies its script table into a
 *   pipeline when it creates one), so the first call of a new script under load failed, and the
 *   pipeline's replies went out of step with its callbacks, throwing out of ioredis.
 * - `prefix` is ioredis's keyPrefix: applied to every key argument, script KEYS included.
 * - RESP2, pinned: script replies convert as documented for RESP2 (true is 1, false is nil),
 *   identical to the embedded adapter. ioredis 6 would otherwise negotiate RESP3.
 * - Fail fast, never queue: while disconnected a call rejects at once (no offline queue), a call
 *   in flight when the connection drops rejects at once and is not re-sent (it may or may not
 *   have run; the caller's idempotency key resolves that), and every call rejects after
 *   `commandTimeoutMs` however the server misbehaves. The client keeps reconnecting with capped
 *   backoff, so calls succeed again as soon as Redis is back.
 * - Redis Cluster with `cluster: true`: the URL is any node (or the configuration endpoint of
 *   ElastiCache or Memorystore), the client learns the slots from it and follows MOVED and ASK.
 *   Every script's keys share one hash tag (asserted before sending), so a script runs on one
 *   node. A cluster that cannot serve a slot (CLUSTERDOWN, TRYAGAIN, a primary lost) counts as
 *   unreachable, never as a script's own error.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { type HotArg, type HotReply, HotReplyError, type HotScript, type HotState } from './port.ts';
import { hotArgToString, normaliseReply } from './reply.ts';
import { assertOneHashTag, ScriptCatalog } from './script.ts';

export interface RedisHotStateOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://...` for TLS. */
  readonly url: string;
  /** Prepended to every key (KEYS of scripts included); isolates tenants of one Redis, or tests. */
  readonly prefix?: string;
  /** Upper bound on any one call, queued or sent. Default 2000 ms. */
  readonly commandTimeoutMs?: number;
  /** Upper bound on establishing a connection. Default 2000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * `true` (default): `open` throws when Redis cannot be reached. `false`: `open` returns at
   * once and the client keeps connecting in the background; calls reject until it is up, and
   * the process can start, report not ready, and apply its fail-open or fail-closed policy.
   */
  readonly requireConnection?: boolean;
  /** Redis Cluster: `url` is a seed node (any node, or the configuration endpoint). */
  readonly cluster?: boolean;
  /** PEM of the CA that signed the server's certificate (rediss://), e.g. Memorystore's own CA. */
  readonly tlsCa?: string;
}

type RedisClient = Redis | Cluster;
type ClusterClientOptions = NonNullable<ConstructorParameters<typeof Cluster>[1]>;

/** Commands that ignore the key prefix and would reach every tenant's keys. */
const KEYSPACE_WIDE = new Set(['flushall', 'flushdb', 'keys', 'scan', 'dbsize', 'randomkey', 'swapdb']);

export class RedisHotState implements HotState {
  readonly kind = 'redis' as const;
  private readonly scripts = new ScriptCatalog();

  private constructor(
    private readonly client: RedisClient,
    /** Prepended to every key this adapter touches. */
    readonly prefix: string,
  ) {}

  /** Connects (bounded by `connectTimeoutMs`) and returns a ready adapter, or throws (see `requireConnection`). */
  static async open(options: RedisHotStateOptions): Promise<RedisHotState> {
    const client = options.cluster
      ? new Cluster([seedNode(options.url)], clusterClientOptions(options))
      : new Redis(options.url, redisClientOptions(options));
    // Errors surface through the calls; without a listener ioredis would log every reconnect attempt.
    client.on('error', () => {});
    if (options.requireConnection === false) {
      // A failed first attempt still goes through retryStrategy, so the client keeps trying.
      client.connect().catch(() => {});
      return new RedisHotState(client, options.prefix ?? '');
    }
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`cannot connect to Redis at ${redactUrl(options.url)}: ${reason}`);
    }
    return new RedisHotState(client, options.prefix ?? '');
  }

  async run(script: HotScript, keys: readonly string[], args: readonly HotArg[]): Promise<HotReply> {
    const prepared = this.scripts.prepare(script);
    assertOneHashTag(prepared, keys);
    // Fresh argument arrays per command: ioredis prefixes the keys in place.
    const rest = () => [String(keys.length), ...keys, ...args.map(hotArgToString)];
    return reply(
      this.client.call('EVALSHA', prepared.sha, ...rest()).catch((error: unknown) => {
        if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
          return this.client.call('EVAL', prepared.lua, ...rest());
        }
        throw error;
      }),
    );
  }

  async call(command: string, ...args: HotArg[]): Promise<HotReply> {
    if (this.prefix !== '' && KEYSPACE_WIDE.has(command.toLowerCase())) {
      throw new Error(`${command.toUpperCase()} ignores the key prefix '${this.prefix}'; refusing to run it`);
    }
    return reply(this.client.call(command, ...args.map(hotArgToString)));
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    if (this.client.status === 'end') return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  /** The underlying client, for fixtures and tooling (SCAN by prefix, SCRIPT FLUSH). */
  get redis(): RedisClient {
    return this.client;
  }
}

async function reply(pending: Promise<unknown>): Promise<HotReply> {
  let raw: unknown;
  try {
    raw = await pending;
  } catch (error) {
    // A ReplyError is Redis answering; anything else (timeouts, connection loss) passes through,
    // and so does a cluster that cannot serve the slot right now: that is Redis unreachable.
    if (error instanceof Error && error.name === 'ReplyError' && !UNAVAILABLE.test(error.message)) {
      throw new HotReplyError(error.message);
    }
    throw error;
  }
  return normaliseReply(raw);
}

/** Replies that mean "not now" from a cluster in failover or a node still loading. */
const UNAVAILABLE = /^(CLUSTERDOWN|TRYAGAIN|MASTERDOWN|LOADING|MOVED|ASK)\b/;

function seedNode(url: string): { host: string; port: number } {
  const parsed = parseRedisUrl(url);
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || 6379) };
}

/** The same fail-fast policy for a cluster: node connections as a single client's, slots refreshed on change. */
export function clusterClientOptions(options: RedisHotStateOptions): ClusterClientOptions {
  const url = parseRedisUrl(options.url);
  const single = redisClientOptions(options);
  const prefix = options.prefix ?? '';
  return {
    lazyConnect: true,
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    // A failover moves slots: retry a command once the new owner is known, within the timeout.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    maxRedirections: 16,
    slotsRefreshTimeout: options.connectTimeoutMs ?? 2000,
    clusterRetryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 5), 1000),
    // TLS endpoints (ElastiCache, Memorystore) are named by their certificates, not their IPs.
    ...(url.protocol === 'rediss:' ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
    ...(prefix === '' ? {} : { keyPrefix: prefix }),
    redisOptions: {
      protocol: 2,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: single.commandTimeout,
      connectTimeout: single.connectTimeout,
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.protocol === 'rediss:' ? { tls: tlsOptions(options) } : {}),
    },
  };
}

export function redisClientOptions(options: RedisHotStateOptions): Omit<RedisOptions, 'replyMapping'> {
  const url = parseRedisUrl(options.url);
  const prefix = options.prefix ?? '';
  return {
    protocol: 2,
    lazyConnect: true,
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.commandTimeoutMs ?? 2000,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 5), 1000),
    ...(url.protocol === 'rediss:' ? { tls: tlsOptions(options) } : {}),
    ...(prefix === '' ? {} : { keyPrefix: prefix }),
  };
}

function tlsOptions(options: RedisHotStateOptions): { ca?: string } {
  return options.tlsCa ? { ca: options.tlsCa } : {};
}

/** Throws `invalid Redis URL: ...` (credentials masked) unless `text` is a redis:// or rediss:// URL. */
export function parseRedisUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`invalid Redis URL: ${redactUrl(text)} (expected redis://host:port)`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new Error(`invalid Redis URL: ${redactUrl(text)} (the scheme must be redis:// or rediss://)`);
  }
  if (url.hostname === '') throw new Error(`invalid Redis URL: ${redactUrl(text)} (no host)`);
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) {
    throw new Error(`invalid Redis URL: ${redactUrl(text)} (the path must be a database number)`);
  }
  return url;
}

/** The URL with any password replaced, fit for errors and logs. */
export function redactUrl(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}
