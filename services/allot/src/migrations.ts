/**
 * Every schema of a plane, in dependency order, so one step (a Helm pre-install/pre-upgrade
 * job, `allot migrate`) brings a database to what the new version expects before any of its
 * processes roll. The services still migrate at boot (each migration runs once, under an
 * advisory lock), so skipping this step never breaks a start; it only moves the wait.
 */
import { migrateControlPlane, migrateUplink } from '@allot/control-plane';
import { creditsMigrations } from '@allot/credits';
import { migrateGovernance } from '@allot/governance';
import { migrateConfig } from '@allot/kit/config-store';
import { migrateHot } from '@allot/kit/hot';
import { migrate, type SqlStore } from '@allot/kit/sql';
import { migrateWebhooks } from '@allot/kit/webhooks';
import { migrateMetering } from '@allot/metering';

export const planes = ['data-plane', 'control-plane'] as const;
export type Plane = (typeof planes)[number];

/** Applies what is missing; answers the migrations applied now (none when already current). */
export async function migratePlane(sql: SqlStore, plane: Plane): Promise<string[]> {
  if (plane === 'control-plane') return migrateControlPlane(sql);
  return [
    ...(await migrateConfig(sql)),
    ...(await migrateHot(sql)),
    ...(await migrate(sql, { schema: 'credits', dir: creditsMigrations })),
    ...(await migrateGovernance(sql)),
    ...(await migrateWebhooks(sql)),
    ...(await migrateMetering(sql)),
    ...(await migrateUplink(sql)),
  ];
}
