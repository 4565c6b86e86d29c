/**
 * A data plane's end of the uplink, connected outbound to the hub as its tenant. It applies
 * the control plane's configuration changes to the local configuration store in version
 * order, remembers the version it applied and acknowledges it; it sends health and the
 * metering export's aggregates up. When the hub is unreachable nothing stops: the gate keeps
 * deciding on the last applied configuration, and the agent catches up when the hub is back
 * (a change notice, or the periodic sync).
 */
import { fileURLToPath } from 'node:url';
import type { Bus } from '@allot/kit/bus';
import type { ConfigReplica, ConfigStore } from '@allot/kit/config-store';
import { migrate, type SqlStore } from '@allot/kit/sql';
import type { ConfigChange } from './hub.ts';
import { Requester } from './rpc.ts';
import { subjects } from './subjects.ts';

const MIGRATIONS = fileURLToPath(new URL('../../migrations-uplink', import.meta.url));
export const CONTROL_PLANE_ACTOR = 'control-plane';

export function migrateUplink(sql: SqlStore): Promise<string[]> {
  return migrate(sql, { schema: 'uplink', dir: MIGRATIONS });
}

export interface ExportPageLike {
  aggregates: unknown[];
  cursor: string;
}

export interface UplinkAgentOptions {
  tenant: string;
  /** The bus connected to the hub, as this tenant. */
  bus: Bus;
  /** The data plane's database (its uplink state). */
  sql: SqlStore;
  /**
   * Kinds applied by a service instead of the configuration store (credit types and grants go
   * to the credits engine); a failure is logged and the change skipped, not retried forever.
   */
  commands?: Record<string, (tenant: string, id: string, body: unknown) => Promise<void>>;
  /** The data plane's configuration store, where the changes are applied. */
  store: ConfigStore;
  /** Its replica: a change counts as applied once the replica (the gate's view) has it. */
  replica?: ConfigReplica;
  /** Aggregates changed after a cursor (metering's export). Unset: none go up. */
  exportAggregates?: (after: string) => Promise<ExportPageLike>;
  /** What health reports besides the applied version. */
  health?: () => Record<string, unknown>;
  /** Sync even without a notice this often. Default 2 s. */
  syncIntervalMs?: number;
  healthIntervalMs?: number;
  aggregatesIntervalMs?: number;
  requestTimeoutMs?: number;
  log?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
}

export class UplinkAgent {
  readonly #o: UplinkAgentOptions;
  readonly #requester: Requester;
  readonly #timers: NodeJS.Timeout[] = [];
  #subscription: { unsubscribe(): void } | undefined;
  #applied = 0;
  #cursor = '0';
  #syncing: Promise<void> | undefined;
  #again = false;
  #sending: Promise<void> | undefined;
  #connected = false;

  constructor(options: UplinkAgentOptions) {
    this.#o = options;
    this.#requester = new Requester(options.bus, subjects.inbox(options.tenant));
  }

  /** The control plane's configuration version applied here. */
  get appliedVersion(): number {
    return this.#applied;
  }

  /** Resolves once `version` is applied here (false after `timeoutMs`). */
  async waitForApplied(version: number, timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#applied < version) {
      if (Date.now() > deadline) return false;
      // One sync at a time (a call during one runs it once more); only a sync that found the
      // hub not yet at `version` waits a moment before the next.
      await this.sync();
      if (this.#applied < version) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return true;
  }

  /** Whether the last exchange with the hub succeeded. */
  get connected(): boolean {
    return this.#connected;
  }

  async start(options: { migrated?: boolean } = {}): Promise<void> {
    if (!options.migrated) await migrateUplink(this.#o.sql);
    const { rows } = await this.#o.sql.query<{ applied_version: string; export_cursor: string }>(
      'SELECT applied_version, export_cursor FROM uplink.state WHERE tenant = $1',
      [this.#o.tenant],
    );
    this.#applied = Number(rows[0]?.applied_version ?? 0);
    this.#cursor = rows[0]?.export_cursor ?? '0';
    this.#requester.start();
    this.#subscription = this.#o.bus.subscribe(subjects.changed(this.#o.tenant), () => void this.sync());
    void this.sync();
    this.#every(this.#o.syncIntervalMs ?? 2000, () => void this.sync());
    this.#every(this.#o.healthIntervalMs ?? 5000, () => void this.#health());
    if (this.#o.exportAggregates)
      this.#every(this.#o.aggregatesIntervalMs ?? 2000, () => void this.sendAggregates());
    void this.#health();
  }

  async stop(): Promise<void> {
    for (const t of this.#timers.splice(0)) clearInterval(t);
    this.#subscription?.unsubscribe();
    await this.#syncing;
    await this.#sending;
    this.#requester.stop();
  }

  /** Fetches and applies what changed since the applied version (one at a time; a call during one runs it again). */
  sync(): Promise<void> {
    if (this.#syncing) {
      this.#again = true;
      return this.#syncing;
    }
    this.#syncing = (async () => {
      try {
        do {
          this.#again = false;
          await this.#syncOnce();
        } while (this.#again);
      } finally {
        this.#syncing = undefined;
      }
    })();
    return this.#syncing;
  }

  async #syncOnce(): Promise<void> {
    const { tenant, store } = this.#o;
    for (;;) {
      let reply: { changes?: ConfigChange[]; version?: number; more?: boolean; error?: string };
      try {
        reply = await this.#requester.request(
          subjects.sync(tenant),
          { after: this.#applied },
          this.#timeout(),
        );
        this.#connected = true;
      } catch (error) {
        this.#disconnected(error);
        return;
      }
      if (reply.error) {
        this.#o.log?.warn({ error: reply.error }, 'uplink: the hub refused the sync');
        return;
      }
      const changes = reply.changes ?? [];
      // Applied counts once the replica (what the gate decides on) has it, not before.
      let applied = this.#applied;
      for (const change of changes) {
        if (change.version <= applied) continue;
        const actor = `${CONTROL_PLANE_ACTOR}@${change.version}`;
        const command = this.#o.commands?.[change.kind];
        if (command) {
          if (change.body !== null) {
            await command(tenant, change.id, change.body).catch((error: unknown) =>
              this.#o.log?.warn(
                { err: error, kind: change.kind, id: change.id },
                'uplink: a change could not be applied',
              ),
            );
          }
        } else if (change.body === null) await store.delete(tenant, change.kind, change.id, actor);
        else await store.put(tenant, change.kind, change.id, change.body, actor);
        applied = change.version;
      }
      if (applied !== this.#applied) {
        if (this.#o.replica) await this.#o.replica.waitFor(tenant, (await store.versions()).get(tenant) ?? 0);
        await this.#o.sql.query(
          `INSERT INTO uplink.state (tenant, applied_version) VALUES ($1, $2)
           ON CONFLICT (tenant) DO UPDATE SET applied_version = excluded.applied_version, updated_at = now()`,
          [tenant, applied],
        );
        this.#applied = applied;
      }
      if (reply.more && changes.length > 0) continue;
      // Acknowledged every time: an ack lost while the hub was away is repeated.
      await this.#requester
        .request(subjects.ack(tenant), { version: this.#applied }, this.#timeout())
        .catch((error: unknown) => this.#disconnected(error));
      return;
    }
  }

  /** Sends the aggregates changed since the last confirmed cursor, until none are left. */
  sendAggregates(): Promise<void> {
    this.#sending ??= (async () => {
      try {
        for (let page = 0; page < 20; page++) {
          const exported = await this.#o.exportAggregates!(this.#cursor);
          if (exported.aggregates.length === 0) return;
          const reply = await this.#requester.request<{ ok?: boolean }>(
            subjects.aggregates(this.#o.tenant),
            { aggregates: exported.aggregates, cursor: exported.cursor },
            this.#timeout(),
          );
          if (!reply.ok) return;
          this.#cursor = exported.cursor;
          await this.#o.sql.query(
            `INSERT INTO uplink.state (tenant, export_cursor) VALUES ($1, $2)
             ON CONFLICT (tenant) DO UPDATE SET export_cursor = excluded.export_cursor, updated_at = now()`,
            [this.#o.tenant, this.#cursor],
          );
        }
      } catch (error) {
        this.#disconnected(error);
      } finally {
        this.#sending = undefined;
      }
    })();
    return this.#sending;
  }

  async #health(): Promise<void> {
    const body = {
      status: 'ok',
      appliedVersion: this.#applied,
      at: new Date().toISOString(),
      ...this.#o.health?.(),
    };
    await this.#requester
      .request(subjects.health(this.#o.tenant), body, this.#timeout())
      .then(() => {
        this.#connected = true;
      })
      .catch((error: unknown) => this.#disconnected(error));
  }

  #disconnected(error: unknown): void {
    if (this.#connected)
      this.#o.log?.warn(
        { err: error },
        'uplink: the hub is unreachable; deciding on the last applied configuration',
      );
    this.#connected = false;
  }

  #timeout(): number {
    return this.#o.requestTimeoutMs ?? 2000;
  }

  #every(ms: number, fn: () => void): void {
    const timer = setInterval(fn, ms);
    timer.unref();
    this.#timers.push(timer);
  }
}
