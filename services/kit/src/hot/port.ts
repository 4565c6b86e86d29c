/**
 * The hot-state port: the state the gate decides on. Redis in production (ioredis),
 * an in-process keyspace in `npm start`. Both run the *same Lua source*: the embedded
 * adapter executes scripts in a Lua VM against its own keyspace, so a script is written
 * once and the conformance suite proves both adapters answer alike.
 *
 * Rules the scripts follow so they behave identically on Redis (Lua 5.1) and the embedded VM:
 * - every key a script touches is passed in KEYS and shares one hash tag (`{tenant:customer}`),
 *   so it runs on Redis Cluster;
 * - numbers are integers (money in micro-units); use `math.floor`, never rely on float
 *   formatting; return integers, strings, arrays of those, or `redis.error_reply`.
 */
export type HotArg = string | number | bigint;
export type HotReply = null | number | string | HotReply[];

/** A script defined once and called by name (EVALSHA on Redis, loaded once). */
export interface HotScript {
  readonly name: string;
  readonly lua: string;
}

export interface HotState {
  readonly kind: 'redis' | 'embedded';
  /** Runs a script atomically. `keys` must share one hash tag. */
  run(script: HotScript, keys: readonly string[], args: readonly HotArg[]): Promise<HotReply>;
  /** One plain command (`GET`, `HGETALL`, `DEL`, ...), same reply shape as inside a script. */
  call(command: string, ...args: HotArg[]): Promise<HotReply>;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** `{tenant:customer}:part:part`: every key of one customer lands in one Redis Cluster slot. */
export function hotKey(tenant: string, customer: string, ...parts: string[]): string {
  return [`{${tenant}:${customer}}`, ...parts].join(':');
}

/**
 * An error replied by the hot state itself (a script's `redis.error_reply`, a raised error,
 * `WRONGTYPE`, a bad argument). The message is Redis's text, identical on both adapters.
 * Any other rejection means the hot state could not be reached or did not answer in time.
 */
export class HotReplyError extends Error {
  override readonly name = 'HotReplyError';
}
