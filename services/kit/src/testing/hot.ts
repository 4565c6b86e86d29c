import { randomBytes } from 'node:crypto';
import { EmbeddedHotState } from '../hot/embedded.ts';
import { RedisHotState } from '../hot/redis.ts';

/** The Redis the integration tests use; it is shared, so every test works under its own prefix. */
export const testRedisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface FreshRedisHotState extends RedisHotState {
  /** Deletes every key under this adapter's prefix, then closes it. */
  cleanup(): Promise<void>;
}

/** A Redis adapter under a new prefix (`t:<random>:`), so a test never sees another's keys. */
export async function freshRedisHotState(): Promise<FreshRedisHotState> {
  const prefix = `t:${randomBytes(6).toString('hex')}:`;
  const hot = await RedisHotState.open({ url: testRedisUrl, prefix });
  return Object.assign(hot, {
    async cleanup() {
      try {
        await deleteByPrefix(hot, prefix);
      } finally {
        await hot.close();
      }
    },
  });
}

/** An in-process adapter: nothing outlives `close()`. */
export function freshEmbeddedHotState(): Promise<EmbeddedHotState> {
  return EmbeddedHotState.open();
}

/** Deletes every key under `prefix` (the adapter's own prefix, as it was opened with). */
export async function deleteByPrefix(hot: RedisHotState, prefix: string): Promise<void> {
  const redis = hot.redis;
  // SCAN's MATCH is not prefixed by ioredis, and the keys it returns carry the prefix, which
  // ioredis would add again on DEL; UNLINK through `call` with the prefix stripped avoids both.
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys.map((key) => key.slice(prefix.length)));
  } while (cursor !== '0');
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
