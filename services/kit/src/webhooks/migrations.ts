import { fileURLToPath } from 'node:url';
import { migrate } from '../sql/migrate.ts';
import type { SqlStore } from '../sql/port.ts';

/** The webhooks tables' migrations, applied to schema `webhooks`. */
export const webhooksMigrations = fileURLToPath(new URL('../../migrations/webhooks', import.meta.url));

/** Creates or brings up to date the `webhooks` schema. Idempotent; safe from several processes at once. */
export function migrateWebhooks(sql: SqlStore): Promise<string[]> {
  return migrate(sql, { schema: 'webhooks', dir: webhooksMigrations });
}
