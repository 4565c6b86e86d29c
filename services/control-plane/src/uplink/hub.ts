/**
 * The control plane's end of the uplink. It answers each data plane's configuration sync with
 * the changes since the version it names, tells it when there is a new one, and takes what
 * comes up: acknowledged versions, health, aggregates. The tenant is always the one in the
 * subject (which its NATS user is limited to), never one named in a payload, and a reply
 * only ever goes to that tenant's inbox.
 */
import type { Bus } from '@allot/kit/bus';
import type { ConfigStore } from '@allot/kit/config-store';
import type { SqlStore } from '@allot/kit/sql';
import { recordAck, recordHealth, storeAggregates, type UplinkAggregate } from '../store/tenants.ts';
import { respond } from './rpc.ts';
import { subjects, tenantOfSubject } from './subjects.ts';

export interface HubOptions {
  sql: SqlStore;
  /** The hub's bus (the control plane's NATS user: every subject). */
  bus: Bus;
  /** The control plane's configuration documents. */
  store: ConfigStore;
  log?: { warn(obj: object, msg: string): void };
}

/** A change as it goes down: the document and the control plane's version of it. */
export interface ConfigChange {
  kind: string;
  id: string;
  body: unknown;
  version: number;
}

const SYNC_PAGE = 1000;

export class ControlPlaneHub {
  readonly #o: HubOptions;
  readonly #subscriptions: { unsubscribe(): void }[] = [];

  constructor(options: HubOptions) {
    this.#o = options;
  }

  start(): void {
    const { bus, store, sql } = this.#o;
    const onError = (error: unknown, subject: string) =>
      this.#o.log?.warn({ err: error, subject }, 'control plane hub: request failed');
    const guard = (subject: string, replyTo: string): string => {
      const tenant = tenantOfSubject(subject);
      if (!tenant) throw new Error(`not a tenant subject: ${subject}`);
      if (!replyTo.startsWith(`${subjects.inbox(tenant)}.`))
        throw new Error(`reply outside ${tenant}'s inbox`);
      return tenant;
    };
    this.#subscriptions.push(
      respond<{ after?: number }>(
        bus,
        'allot.*.config.sync',
        async (subject, body, replyTo) => {
          const tenant = guard(subject, replyTo);
          const after = Number.isSafeInteger(body?.after) ? Number(body.after) : 0;
          const docs = await store.changesSince(tenant, after, SYNC_PAGE);
          const version = (await store.versions()).get(tenant) ?? 0;
          const changes: ConfigChange[] = docs.map((d) => ({
            kind: d.kind,
            id: d.id,
            body: d.body,
            version: d.version,
          }));
          return { changes, version, more: docs.length === SYNC_PAGE };
        },
        onError,
      ),
      respond<{ version?: number }>(
        bus,
        'allot.*.up.ack',
        async (subject, body, replyTo) => {
          const tenant = guard(subject, replyTo);
          if (!Number.isSafeInteger(body?.version)) throw new Error('ack: version must be an integer');
          await recordAck(sql, tenant, Number(body.version));
          return { ok: true };
        },
        onError,
      ),
      respond<Record<string, unknown>>(
        bus,
        'allot.*.up.health',
        async (subject, body, replyTo) => {
          const tenant = guard(subject, replyTo);
          await recordHealth(sql, tenant, typeof body === 'object' && body !== null ? body : {});
          return { ok: true };
        },
        onError,
      ),
      respond<{ aggregates?: UplinkAggregate[] }>(
        bus,
        'allot.*.up.aggregates',
        async (subject, body, replyTo) => {
          const tenant = guard(subject, replyTo);
          const rows = Array.isArray(body?.aggregates) ? body.aggregates : [];
          await storeAggregates(sql, tenant, rows);
          return { ok: true, stored: rows.length };
        },
        onError,
      ),
    );
  }

  /** Tells a tenant's data plane there is a new version to fetch (at most once: it also syncs on a timer). */
  announce(tenant: string, version: number): void {
    if (tenantOfSubject(subjects.changed(tenant)) !== tenant) return;
    try {
      this.#o.bus.notify(subjects.changed(tenant), Buffer.from(JSON.stringify({ version })));
    } catch (error) {
      this.#o.log?.warn({ err: error, tenant }, 'control plane hub: change notice not sent');
    }
  }

  stop(): void {
    for (const s of this.#subscriptions.splice(0)) s.unsubscribe();
  }
}
