/**
 * Events every service publishes for the outside world (alerts, recharge requests): one durable
 * JetStream stream, `EVENTS`, on subjects `events.<type>`. The webhook dispatcher delivers them;
 * any other NATS consumer may read them too, deduplicating on `id`.
 */
import { z } from 'zod';
import type { Bus, PublishAck, StreamConfig } from '../bus/port.ts';

export const EVENTS_STREAM = 'EVENTS';
export const EVENTS_SUBJECTS = 'events.>';

/** Every publisher and the dispatcher declare the stream alike. */
export const eventsStreamConfig: StreamConfig = {
  name: EVENTS_STREAM,
  subjects: [EVENTS_SUBJECTS],
  // A publish retried within two minutes (same tenant and id) is stored once.
  duplicateWindowMs: 120_000,
  maxAgeMs: 7 * 24 * 60 * 60 * 1000,
};

/** `credits.balance.low`: lower-case dot-separated words, so the type is also a subject. */
export const eventType = z
  .string()
  .max(128)
  .regex(
    /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/,
    'expected dot-separated lower-case words, like credits.balance.low',
  );

/**
 * The envelope every event shares. Services add their own fields (`customerId`, ...) beside
 * these; `data` holds what is specific to the type.
 */
export const allotEvent = z.looseObject({
  /** Unique per tenant and deterministic per occurrence: a republished event keeps its id. */
  id: z.string().min(1).max(256),
  type: eventType,
  tenant: z.string().min(1).max(128),
  occurredAt: z.iso.datetime({ offset: true }),
  data: z.record(z.string(), z.unknown()),
});
export type AllotEvent = z.infer<typeof allotEvent>;

export const eventSubject = (type: string): string => `events.${type}`;

/**
 * Durable publish to the EVENTS stream (declare it once with `bus.ensureStream(eventsStreamConfig)`).
 * The message id is the tenant and the event id, so a retry within the duplicate window is
 * stored once; the dispatcher deduplicates beyond it.
 */
export function publishEvent(bus: Bus, event: AllotEvent): Promise<PublishAck> {
  const parsed = allotEvent.parse(event);
  return bus.publish(eventSubject(parsed.type), new TextEncoder().encode(JSON.stringify(parsed)), {
    msgId: `${parsed.tenant}:${parsed.id}`,
  });
}
