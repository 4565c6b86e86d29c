/**
 * Bus fixtures: a bus under a fresh, unique prefix, so that tests sharing one NATS server (or
 * running in parallel) never see each other's streams, buckets or subjects.
 */
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { EmbeddedBus, EmbeddedServer } from '../bus/embedded.ts';
import { NatsBus } from '../bus/nats.ts';
import type { Bus } from '../bus/port.ts';

export const testNatsUrl = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

export interface BusFixture<B extends Bus = Bus> {
  bus: B;
  prefix: string;
  /** Another connection to the same server: same prefix by default, or a different namespace. */
  connect(prefix?: string): Promise<B>;
  /** Closes every connection opened here and deletes the streams and buckets of every prefix used. */
  cleanup(): Promise<void>;
}

/** Fixed length, so no prefix is the start of another one's `<prefix>_` names. */
export function uniqueBusPrefix(): string {
  return `t${randomBytes(6).toString('hex')}`;
}

/** `replicas`: of its streams and buckets, on a JetStream cluster (`url` lists its servers). */
export async function freshNatsBus(
  url: string = testNatsUrl,
  options: { replicas?: number } = {},
): Promise<BusFixture<NatsBus>> {
  const prefixes = new Set<string>();
  const opened: NatsBus[] = [];
  const open = async (prefix: string): Promise<NatsBus> => {
    prefixes.add(prefix);
    const bus = await NatsBus.connect({
      url,
      prefix,
      name: `test-${prefix}`,
      ...(options.replicas ? { replicas: options.replicas } : {}),
    });
    opened.push(bus);
    return bus;
  };
  const prefix = uniqueBusPrefix();
  const bus = await open(prefix);
  return {
    bus,
    prefix,
    connect: (other = prefix) => open(other),
    async cleanup() {
      await Promise.allSettled(opened.map((b) => b.close()));
      await deleteNamespaces(url, [...prefixes]);
    },
  };
}

/** Deletes only streams named `<prefix>_*` and KV buckets `KV_<prefix>_*`: the server is shared. */
async function deleteNamespaces(url: string, prefixes: string[]): Promise<void> {
  const nc = await connect({ servers: url.split(','), name: 'test-cleanup' });
  try {
    const jsm = await jetstreamManager(nc);
    const doomed: string[] = [];
    for await (const name of jsm.streams.names()) {
      if (prefixes.some((p) => name.startsWith(`${p}_`) || name.startsWith(`KV_${p}_`))) doomed.push(name);
    }
    await Promise.all(doomed.map((name) => jsm.streams.delete(name)));
  } finally {
    await nc.close();
  }
}

/** A private in-process server, so tests never share state with each other or with `npm start`. */
export async function freshEmbeddedBus(): Promise<BusFixture<EmbeddedBus>> {
  const server = new EmbeddedServer();
  const opened: EmbeddedBus[] = [];
  const open = async (prefix: string): Promise<EmbeddedBus> => {
    const bus = new EmbeddedBus({ server, prefix });
    opened.push(bus);
    return bus;
  };
  const prefix = uniqueBusPrefix();
  const bus = await open(prefix);
  return {
    bus,
    prefix,
    connect: (other = prefix) => open(other),
    async cleanup() {
      await Promise.allSettled(opened.map((b) => b.close()));
    },
  };
}
