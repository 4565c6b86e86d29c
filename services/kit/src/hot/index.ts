/** The hot-state port and its two adapters: Redis in production, embedded for `npm start`. */
import { EmbeddedHotState } from './embedded.ts';
import type { HotState } from './port.ts';
import { RedisHotState } from './redis.ts';

export { EmbeddedHotState, type EmbeddedHotStateOptions } from './embedded.ts';
export { HOT_EPOCH_KEY, HotLoadFence, hotMigrations, migrateHot, waitOutHotLoss } from './load-fence.ts';
export { type HotArg, type HotReply, HotReplyError, type HotScript, type HotState, hotKey } from './port.ts';
export { parseRedisUrl, RedisHotState, type RedisHotStateOptions } from './redis.ts';

export interface OpenHotStateOptions {
  /** A Redis URL; unset means the embedded adapter. */
  readonly url?: string;
  readonly prefix?: string;
  /** See `RedisHotStateOptions.requireConnection`. */
  readonly requireConnection?: boolean;
  /** See `RedisHotStateOptions.cluster`. */
  readonly cluster?: boolean;
  /** See `RedisHotStateOptions.tlsCa`. */
  readonly tlsCa?: string;
}

/** Redis when `url` is set (connects before resolving unless `requireConnection` is false), the in-process adapter otherwise. */
export async function openHotState(options: OpenHotStateOptions = {}): Promise<HotState> {
  const prefix = options.prefix === undefined ? {} : { prefix: options.prefix };
  if (options.url !== undefined && options.url !== '') {
    const require =
      options.requireConnection === undefined ? {} : { requireConnection: options.requireConnection };
    return RedisHotState.open({
      url: options.url,
      ...prefix,
      ...require,
      ...(options.cluster ? { cluster: true } : {}),
      ...(options.tlsCa ? { tlsCa: options.tlsCa } : {}),
    });
  }
  return EmbeddedHotState.open(prefix);
}
