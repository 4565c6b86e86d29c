/**
 * The meters of every tenant, compiled from the configuration replica and recompiled when a
 * tenant's meters change. Ingest, the worker and queries read them from memory.
 */
import { config } from '@allot/contracts';
import type { ConfigReplica } from '@allot/kit/config-store';
import { compileMeter, type Meter } from './domain/meters.ts';

export class MeterCatalog {
  readonly #replica: ConfigReplica;
  readonly #tenants = new Map<string, { version: number; all: Meter[]; byType: Map<string, Meter[]> }>();

  constructor(replica: ConfigReplica) {
    this.#replica = replica;
    replica.onChange((tenant, changed) => {
      if (changed.some((doc) => doc.kind === 'meter')) this.#tenants.delete(tenant);
    });
  }

  meters(tenant: string): readonly Meter[] {
    return this.#tenant(tenant).all;
  }

  meter(tenant: string, slug: string): Meter | undefined {
    return this.#tenant(tenant).all.find((m) => m.slug === slug);
  }

  forType(tenant: string, type: string): readonly Meter[] {
    return this.#tenant(tenant).byType.get(type) ?? [];
  }

  #tenant(tenant: string) {
    let entry = this.#tenants.get(tenant);
    if (!entry) {
      const all: Meter[] = [];
      for (const doc of this.#replica.list(tenant, 'meter')) {
        if (doc.body === null) continue;
        const body = config.meterBody.safeParse(doc.body);
        if (body.success) all.push(compileMeter(doc.id, doc.version, body.data));
      }
      const byType = new Map<string, Meter[]>();
      for (const meter of all) {
        let list = byType.get(meter.eventType);
        if (!list) {
          list = [];
          byType.set(meter.eventType, list);
        }
        list.push(meter);
      }
      entry = { version: this.#replica.version(tenant), all, byType };
      this.#tenants.set(tenant, entry);
    }
    return entry;
  }
}
