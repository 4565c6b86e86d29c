/**
 * The all-in-one process: the control plane and the data plane side by side on one bus. An
 * uplink agent per tenant is started on the first change notice (or for every tenant the
 * control plane already knows), and a configuration write through the control plane returns
 * only once the data plane applied it, so a write is visible to the very next decision, as
 * when the data plane's own routes served it.
 */
import type { Bus } from '@allot/kit/bus';
import { ConfigReplica, type ConfigReplicaOptions, type ConfigStore } from '@allot/kit/config-store';
import type { SqlStore } from '@allot/kit/sql';
import { type ExportPageLike, migrateUplink, UplinkAgent } from './agent.ts';
import { tenantOfSubject } from './subjects.ts';

export interface LocalUplinkOptions {
  bus: Bus;
  sql: SqlStore;
  /** The data plane's configuration store and replica. */
  store: ConfigStore;
  replica: ConfigReplica;
  exportAggregates?: (tenant: string, after: string) => Promise<ExportPageLike>;
  log?: { warn(obj: object, msg: string): void };
}

export class LocalUplink {
  readonly #o: LocalUplinkOptions;
  readonly #agents = new Map<string, Promise<UplinkAgent>>();
  #subscription: { unsubscribe(): void } | undefined;

  constructor(options: LocalUplinkOptions) {
    this.#o = options;
  }

  async start(tenants: Iterable<string>): Promise<void> {
    await migrateUplink(this.#o.sql);
    this.#subscription = this.#o.bus.subscribe('allot.*.config.changed', (subject) => {
      const tenant = tenantOfSubject(subject);
      if (tenant) void this.agent(tenant);
    });
    await Promise.all([...tenants].map((t) => this.agent(t)));
  }

  async stop(): Promise<void> {
    this.#subscription?.unsubscribe();
    const agents = await Promise.all(this.#agents.values());
    await Promise.all(agents.map((a) => a.stop()));
  }

  agent(tenant: string): Promise<UplinkAgent> {
    let agent = this.#agents.get(tenant);
    if (!agent) {
      const exporter = this.#o.exportAggregates;
      const created = new UplinkAgent({
        tenant,
        bus: this.#o.bus,
        sql: this.#o.sql,
        store: this.#o.store,
        replica: this.#o.replica,
        ...(exporter ? { exportAggregates: (after: string) => exporter(tenant, after) } : {}),
        ...(this.#o.log ? { log: this.#o.log } : {}),
      });
      agent = created.start({ migrated: true }).then(() => created);
      this.#agents.set(tenant, agent);
    }
    return agent;
  }

  /** A replica of the control plane's store whose `waitFor` also waits for the data plane. */
  waitingReplica(options: ConfigReplicaOptions): ConfigReplica {
    const uplink = this;
    return new (class extends ConfigReplica {
      override async waitFor(tenant: string, version: number, timeoutMs = 5000): Promise<void> {
        await super.waitFor(tenant, version, timeoutMs);
        const agent = await uplink.agent(tenant);
        await agent.waitForApplied(version, timeoutMs);
      }
    })(options);
  }
}
