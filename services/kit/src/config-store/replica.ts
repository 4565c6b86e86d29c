import type { Bus } from '../bus/port.ts';
import type { ConfigDocument, ConfigStore } from './store.ts';

export interface ConfigReplicaOptions {
  store: ConfigStore;
  bus?: Bus;
  /** Polls every tenant's version this often, in case an announcement was lost. Default 1000 ms. */
  pollMs?: number;
  log?: { warn(obj: object, msg: string): void };
}

/** What changed for a tenant in one sync: the documents as they are now (body null: deleted). */
export type ConfigChangeListener = (tenant: string, changed: readonly ConfigDocument[]) => void;

interface TenantState {
  version: number;
  kinds: Map<string, Map<string, ConfigDocument>>;
  /** The sync in progress, so syncs of one tenant never overlap. */
  syncing: Promise<void> | undefined;
  /** Another sync was asked for while one ran. */
  again: boolean;
}

/**
 * Every tenant's configuration in memory, kept current by push: a change announced on the bus
 * is fetched from the store at once ("what changed since my version"), and a poll of every
 * tenant's version catches what an announcement missed. Reads never touch the store, so the
 * gate decides from memory; while the store is unreachable it keeps the last version it had.
 */
export class ConfigReplica {
  readonly #store: ConfigStore;
  readonly #bus: Bus | undefined;
  readonly #pollMs: number;
  readonly #log: ConfigReplicaOptions['log'];
  readonly #tenants = new Map<string, TenantState>();
  readonly #listeners = new Set<ConfigChangeListener>();
  readonly #waiters = new Set<{ tenant: string; version: number; resolve: () => void }>();
  #subscription: { unsubscribe(): void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;

  constructor(options: ConfigReplicaOptions) {
    this.#store = options.store;
    this.#bus = options.bus;
    this.#pollMs = options.pollMs ?? 1000;
    this.#log = options.log;
  }

  /** Loads every tenant, then follows changes. */
  async start(): Promise<void> {
    this.#subscription = this.#bus?.subscribe(this.#store.subject, (_, data) => {
      try {
        const { tenant } = JSON.parse(Buffer.from(data).toString('utf8')) as { tenant: string };
        if (typeof tenant === 'string') void this.sync(tenant);
      } catch {
        // Not ours to understand; the poll covers it.
      }
    });
    await this.#poll();
    this.#timer = setInterval(() => {
      this.#polling ??= this.#poll().finally(() => {
        this.#polling = undefined;
      });
    }, this.#pollMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#subscription?.unsubscribe();
    await this.#polling;
  }

  onChange(listener: ConfigChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  version(tenant: string): number {
    return this.#tenants.get(tenant)?.version ?? 0;
  }

  get(tenant: string, kind: string, id: string): ConfigDocument | undefined {
    return this.#tenants.get(tenant)?.kinds.get(kind)?.get(id);
  }

  /** Live documents of one kind (in no particular order). */
  list(tenant: string, kind: string): ConfigDocument[] {
    const docs = this.#tenants.get(tenant)?.kinds.get(kind);
    return docs ? [...docs.values()] : [];
  }

  /** Resolves once this replica has applied `version` of `tenant` (syncing now if it has not). */
  async waitFor(tenant: string, version: number, timeoutMs = 5000): Promise<void> {
    if (this.version(tenant) >= version) return;
    const reached = new Promise<void>((resolve) => {
      const waiter = { tenant, version, resolve };
      this.#waiters.add(waiter);
      setTimeout(() => {
        this.#waiters.delete(waiter);
        resolve();
      }, timeoutMs).unref();
    });
    void this.sync(tenant);
    await reached;
  }

  /** Fetches what changed for `tenant` since the version held. Never overlaps itself. */
  sync(tenant: string): Promise<void> {
    const state = this.#state(tenant);
    if (state.syncing) {
      state.again = true;
      return state.syncing;
    }
    state.syncing = (async () => {
      try {
        do {
          state.again = false;
          await this.#pull(tenant, state);
        } while (state.again);
      } catch (error) {
        this.#log?.warn({ err: error, tenant }, 'configuration sync failed; deciding on the last version');
      } finally {
        state.syncing = undefined;
      }
    })();
    return state.syncing;
  }

  async #pull(tenant: string, state: TenantState): Promise<void> {
    for (;;) {
      const changes = await this.#store.changesSince(tenant, state.version);
      if (changes.length === 0) return;
      for (const doc of changes) {
        let docs = state.kinds.get(doc.kind);
        if (!docs) {
          docs = new Map();
          state.kinds.set(doc.kind, docs);
        }
        if (doc.body === null) docs.delete(doc.id);
        else docs.set(doc.id, doc);
        state.version = Math.max(state.version, doc.version);
      }
      for (const listener of this.#listeners) {
        try {
          listener(tenant, changes);
        } catch (error) {
          this.#log?.warn({ err: error, tenant }, 'configuration listener failed');
        }
      }
      for (const waiter of this.#waiters) {
        if (waiter.tenant === tenant && state.version >= waiter.version) {
          this.#waiters.delete(waiter);
          waiter.resolve();
        }
      }
    }
  }

  async #poll(): Promise<void> {
    let versions: Map<string, number>;
    try {
      versions = await this.#store.versions();
    } catch (error) {
      this.#log?.warn({ err: error }, 'configuration poll failed; deciding on the last version');
      return;
    }
    await Promise.all(
      [...versions].filter(([tenant, version]) => version > this.version(tenant)).map(([t]) => this.sync(t)),
    );
  }

  #state(tenant: string): TenantState {
    let state = this.#tenants.get(tenant);
    if (!state) {
      state = { version: 0, kinds: new Map(), syncing: undefined, again: false };
      this.#tenants.set(tenant, state);
    }
    return state;
  }
}
