/**
 * The control plane assembled: its configuration store (the data plane's model, in schema
 * `controlplane_config`), a replica of it for the configuration routes' checks, and the hub
 * end of the uplink.
 */
import type { Bus } from '@allot/kit/bus';
import { ConfigReplica, ConfigStore } from '@allot/kit/config-store';
import type { SqlStore } from '@allot/kit/sql';
import { CONTROL_PLANE_CONFIG_SCHEMA, migrateControlPlane } from './store/tenants.ts';
import { ControlPlaneHub } from './uplink/hub.ts';

export const CONTROL_PLANE_CHANGED_SUBJECT = 'controlplane.config.changed';

export interface ControlPlaneOptions {
  sql: SqlStore;
  /** The hub's bus, as the control plane's own user. */
  hub: Bus;
  log?: { warn(obj: object, msg: string): void };
  /** Wraps the replica the configuration routes wait on (the all-in-one process waits for its data plane too). */
  replica?: (store: ConfigStore) => ConfigReplica;
}

export interface ControlPlane {
  store: ConfigStore;
  replica: ConfigReplica;
  hub: ControlPlaneHub;
  close(): Promise<void>;
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  await migrateControlPlane(options.sql);
  // Its changes are announced to the data planes only (allot.<tenant>.config.changed), never
  // on a subject of the control plane's own: the hub carries nothing else.
  let hub: ControlPlaneHub | undefined;
  const store = new ConfigStore(options.sql, undefined, {
    schema: CONTROL_PLANE_CONFIG_SCHEMA,
    subject: CONTROL_PLANE_CHANGED_SUBJECT,
    onChange: (tenant, version) => hub?.announce(tenant, version),
  });
  const replica =
    options.replica?.(store) ?? new ConfigReplica({ store, ...(options.log ? { log: options.log } : {}) });
  await replica.start();
  hub = new ControlPlaneHub({
    sql: options.sql,
    bus: options.hub,
    store,
    ...(options.log ? { log: options.log } : {}),
  });
  hub.start();
  return {
    store,
    replica,
    hub,
    async close() {
      hub.stop();
      await replica.stop();
    },
  };
}
