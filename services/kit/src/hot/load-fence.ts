/**
 * When may a customer's hot state be rebuilt from PostgreSQL without missing anything? Events a
 * gate published just before the hot state lost that customer's keys may not be in the stream
 * yet (a publish ends within the publisher's bound), so a rebuild of a customer that was
 * loaded before waits that bound out. A global marker key could tell when all of Redis was
 * lost, but not when one Redis Cluster shard was: the fence is kept per customer, beside the
 * records, where no loss of the hot state reaches it.
 */
import { fileURLToPath } from 'node:url';
import { migrate } from '../sql/migrate.ts';
import type { SqlStore } from '../sql/port.ts';
import type { HotState } from './port.ts';

export const hotMigrations = fileURLToPath(new URL('../../migrations/hot', import.meta.url));

export function migrateHot(sql: SqlStore): Promise<string[]> {
  return migrate(sql, { schema: 'hot', dir: hotMigrations });
}

export class HotLoadFence {
  readonly #sql: SqlStore;
  readonly #part: string;
  #migrated: Promise<unknown> | undefined;

  /** `part` names whose state it is (`credits`, `governance`): each loads on its own. */
  constructor(sql: SqlStore, part: string) {
    this.#sql = sql;
    this.#part = part;
  }

  /**
   * Records that `customerId` is being loaded; true when it had been loaded before, so its
   * keys were lost rather than never there.
   */
  async loadedBefore(tenant: string, customerId: string): Promise<boolean> {
    this.#migrated ??= migrateHot(this.#sql).catch((error: unknown) => {
      this.#migrated = undefined;
      throw error;
    });
    await this.#migrated;
    const { rows } = await this.#sql.query(
      `INSERT INTO hot.loads (part, tenant, customer_id) VALUES ($1, $2, $3)
       ON CONFLICT DO NOTHING RETURNING 1`,
      [this.#part, tenant, customerId],
    );
    return rows.length === 0;
  }
}

/**
 * When the hot state was born or lost its data: set on the first load after a loss, `'0'` on
 * an embedded hot state (born with its process, so nothing can be in flight to it).
 */
export const HOT_EPOCH_KEY = 'allot:credits:epoch';

/**
 * Before a customer's hot state is rebuilt from PostgreSQL: waits out the publish bound when
 * the hot state may have lost what gates published just before, that is when all of Redis lost
 * its data recently (the epoch key is new) or when this customer was loaded before and is
 * missing now (`fence`; one Redis Cluster shard can lose its keys while the epoch key, on
 * another shard, survives).
 */
export async function waitOutHotLoss(options: {
  hot: HotState;
  fence?: { loadedBefore(tenant: string, customerId: string): Promise<boolean> } | undefined;
  tenant: string;
  customerId: string;
  publishBoundMs: number;
  now: number;
}): Promise<void> {
  const { hot, now } = options;
  const epoch = await hot.call('GET', HOT_EPOCH_KEY);
  if (epoch === '0') return;
  const since = epoch === null ? now : Number(epoch);
  if (epoch === null) await hot.call('SET', HOT_EPOCH_KEY, String(now), 'NX');
  const bound = options.publishBoundMs + 500;
  const lost = (await options.fence?.loadedBefore(options.tenant, options.customerId)) ?? false;
  const grace = lost ? bound : bound - (now - since);
  if (grace > 0) await new Promise((resolve) => setTimeout(resolve, grace));
}
