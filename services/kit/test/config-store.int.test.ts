/**
 * The configuration store and its replica on PostgreSQL with NATS, and on PGlite with the
 * in-process bus: versions per tenant, no-op rewrites, tombstones, the audit log, and a replica
 * that follows pushes, catches up by polling what an announcement missed, and keeps its last
 * version while the store is unreachable.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bus } from '../src/bus/port.ts';
import { ConfigReplica } from '../src/config-store/replica.ts';
import { ConfigStore, canonicalJson, migrateConfig } from '../src/config-store/store.ts';
import type { SqlStore } from '../src/sql/port.ts';
import {
  freshEmbeddedBus,
  freshNatsBus,
  freshPgDatabase,
  freshPgliteStore,
  until,
} from '../src/testing/index.ts';

type Backend = 'postgres+nats' | 'pglite+embedded';

describe.each<Backend>(['postgres+nats', 'pglite+embedded'])('config store on %s', (backend) => {
  let sql: SqlStore;
  let bus: Bus;
  let store: ConfigStore;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    if (backend === 'postgres+nats') {
      const db = await freshPgDatabase();
      const nats = await freshNatsBus();
      sql = db.store;
      bus = nats.bus;
      cleanup = async () => {
        await nats.cleanup();
        await db.drop();
      };
    } else {
      const pglite = await freshPgliteStore();
      const embedded = await freshEmbeddedBus();
      sql = pglite;
      bus = embedded.bus;
      cleanup = async () => {
        await embedded.cleanup();
        await pglite.close();
      };
    }
    await migrateConfig(sql);
    store = new ConfigStore(sql, bus);
  });
  afterEach(() => cleanup());

  it('versions every change per tenant, skips rewrites of the same body, and audits who changed what', async () => {
    const a = await store.put('t1', 'feature', 'tokens', { name: 'Tokens', type: 'metered' }, 'key:admin');
    const b = await store.put('t1', 'plan', 'pro', { name: 'Pro', entitlements: [] }, 'key:admin');
    const other = await store.put('t2', 'plan', 'pro', { name: 'Pro' }, 'key:other');
    // Same meaning, other key order: nothing changes, no version taken.
    const again = await store.put(
      't1',
      'feature',
      'tokens',
      { type: 'metered', name: 'Tokens' },
      'key:admin',
    );
    expect([a.document.version, b.document.version, other.document.version]).toEqual([1, 2, 1]);
    expect(again).toMatchObject({ changed: false, document: { version: 1 } });
    const renamed = await store.put(
      't1',
      'feature',
      'tokens',
      { name: 'LLM tokens', type: 'metered' },
      'key:ui',
    );
    expect(renamed).toMatchObject({ changed: true, document: { version: 3 } });
    expect(await store.delete('t1', 'plan', 'pro', 'key:ui')).toBe(true);
    expect(await store.delete('t1', 'plan', 'pro', 'key:ui')).toBe(false);

    expect(await store.get('t1', 'plan', 'pro')).toBeNull();
    expect((await store.get('t2', 'plan', 'pro'))?.body).toEqual({ name: 'Pro' });
    expect((await store.list('t1', 'feature')).map((d) => d.body)).toEqual([
      { name: 'LLM tokens', type: 'metered' },
    ]);
    expect(Object.fromEntries(await store.versions())).toEqual({ t1: 4, t2: 1 });
    // A replica asking what changed since version 1 learns of the rename and the deletion.
    expect((await store.changesSince('t1', 1)).map((d) => [d.kind, d.id, d.version, d.body])).toEqual([
      ['feature', 'tokens', 3, { name: 'LLM tokens', type: 'metered' }],
      ['plan', 'pro', 4, null],
    ]);
    expect((await store.audit('t1')).map((e) => [e.version, e.action, e.kind, e.id, e.actor])).toEqual([
      [4, 'delete', 'plan', 'pro', 'key:ui'],
      [3, 'put', 'feature', 'tokens', 'key:ui'],
      [2, 'put', 'plan', 'pro', 'key:admin'],
      [1, 'put', 'feature', 'tokens', 'key:admin'],
    ]);
  });

  it('gives concurrent writers of one tenant distinct, gapless versions', async () => {
    const writes = await Promise.all(
      Array.from({ length: 40 }, (_, i) => store.put('t1', 'customer', `c${i}`, { name: `C${i}` }, 'key')),
    );
    expect(writes.map((w) => w.document.version).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
  });

  it('keeps a replica current by push, and by polling when an announcement is lost', async () => {
    await store.put('t1', 'block', 'b0', { scope: { customerId: 'acme' } }, 'key');
    const replica = new ConfigReplica({ store, bus, pollMs: 200 });
    await replica.start();
    try {
      expect(replica.get('t1', 'block', 'b0')?.body).toEqual({ scope: { customerId: 'acme' } });
      const seen: string[] = [];
      replica.onChange((tenant, docs) => seen.push(...docs.map((d) => `${tenant}:${d.kind}:${d.id}`)));

      await store.put('t1', 'block', 'b1', { scope: { agent: 'a7' } }, 'key');
      await until('the pushed block', async () => replica.get('t1', 'block', 'b1'));
      await store.delete('t1', 'block', 'b0', 'key');
      await until('the deletion', async () => replica.get('t1', 'block', 'b0') === undefined);

      // A writer that announces nothing (its bus was down): the poll finds the change.
      const silent = new ConfigStore(sql);
      await silent.put('t2', 'customer', 'c1', { name: 'Silent' }, 'key');
      await until('the polled change', async () => replica.get('t2', 'customer', 'c1'));
      expect(replica.version('t1')).toBe(3);
      expect(seen).toEqual(['t1:block:b1', 't1:block:b0', 't2:customer:c1']);

      // waitFor: read-your-writes for the process that wrote.
      const write = await silent.put('t1', 'block', 'b2', { scope: { model: 'gpt-5' } }, 'key');
      await replica.waitFor('t1', write.document.version);
      expect(replica.get('t1', 'block', 'b2')).toBeDefined();
    } finally {
      await replica.stop();
    }
  });
});

describe('canonicalJson', () => {
  it('ignores key order at every depth, keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: null } })).toBe(
      canonicalJson({ a: { c: null, d: [2, 1] }, b: 1 }),
    );
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
  });
});
