/**
 * The bus: durable streams, pull consumers, KV buckets and notifications. `openBus` picks
 * NATS JetStream when a URL is configured and the in-process bus otherwise.
 */
import { EmbeddedBus } from './embedded.ts';
import { NatsBus } from './nats.ts';
import type { Bus } from './port.ts';

export { EmbeddedBus, type EmbeddedBusOptions, EmbeddedServer, sharedEmbeddedServer } from './embedded.ts';
export { NatsBus, type NatsBusOptions, parseNatsUrl } from './nats.ts';
export type {
  Bus,
  BusMessage,
  Consumer,
  ConsumerConfig,
  ConsumerPosition,
  KvBucket,
  KvEntry,
  PublishAck,
  PublishOptions,
  StreamConfig,
  StreamStatus,
} from './port.ts';
export { BusConflictError, BusNoStreamError, BusNotFoundError } from './port.ts';

export interface OpenBusOptions {
  /** NATS URL(s); unset: the in-process bus shared by everything in this process. */
  url?: string;
  /** Namespace for streams, buckets and subjects, e.g. per tenant or per test. */
  prefix?: string;
  /** Connection name (NATS only). */
  name?: string;
  /** Replicas of streams and buckets on a JetStream cluster (NATS only; see NatsBusOptions). */
  replicas?: number;
}

export async function openBus(opts: OpenBusOptions = {}): Promise<Bus> {
  const prefix = opts.prefix === undefined ? {} : { prefix: opts.prefix };
  if (opts.url !== undefined && opts.url !== '') {
    return NatsBus.connect({
      url: opts.url,
      ...prefix,
      ...(opts.name === undefined ? {} : { name: opts.name }),
      ...(opts.replicas === undefined ? {} : { replicas: opts.replicas }),
    });
  }
  return new EmbeddedBus(prefix);
}
