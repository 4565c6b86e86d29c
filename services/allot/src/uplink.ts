/**
 * A data plane's link to a remote control plane: connects outbound to the hub as its tenant and
 * runs the uplink agent, which applies the configuration versions that come down (credit types
 * and grants through the credits service) and sends health and metering's aggregates up. Used
 * by the all-in-one process (ALLOT_UPLINK_URL) and by the uplink process of a split deployment.
 */
import { credits as creditContracts } from '@allot/contracts';
import { UplinkAgent } from '@allot/control-plane';
import { addGrant, type CreditsService, upsertCreditType } from '@allot/credits';
import { NatsBus } from '@allot/kit/bus';
import type { ConfigReplica, ConfigStore } from '@allot/kit/config-store';
import type { SqlStore } from '@allot/kit/sql';
import { exportAggregates, type MeterCatalog } from '@allot/metering';

export interface ConnectUplinkOptions {
  tenant: string;
  hub: { url: string; user?: string | undefined; password?: string | undefined };
  sql: SqlStore;
  config: { store: ConfigStore; replica: ConfigReplica };
  credits: Pick<CreditsService, 'engine'>;
  meters: MeterCatalog;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export async function connectUplink(
  options: ConnectUplinkOptions,
): Promise<{ agent: UplinkAgent; close(): Promise<void> }> {
  const { tenant, sql } = options;
  const hub = await NatsBus.connect({
    url: options.hub.url,
    name: `allot-data-plane-${tenant}`,
    jetstream: false,
    ...(options.hub.user ? { user: options.hub.user } : {}),
    ...(options.hub.password ? { pass: options.hub.password } : {}),
  });
  const agent = new UplinkAgent({
    tenant,
    bus: hub,
    sql,
    ...options.config,
    commands: {
      'credit-type': async (t, key, body) => {
        const b = body as { name: string; unit?: string };
        await upsertCreditType(sql, { tenant: t, key, name: b.name, unit: b.unit ?? null });
      },
      grant: async (t, docId, body) => {
        const customerId = docId.slice(0, docId.indexOf('/'));
        await addGrant(
          { sql, engine: options.credits.engine },
          t,
          customerId,
          creditContracts.grantBody.parse(body),
        );
      },
    },
    exportAggregates: (after) =>
      exportAggregates(
        sql,
        tenant,
        new Map(options.meters.meters(tenant).map((m) => [m.slug, m])),
        after,
        50,
      ),
    log: options.log,
  });
  await agent.start();
  return {
    agent,
    async close() {
      await agent.stop();
      await hub.close();
    },
  };
}
