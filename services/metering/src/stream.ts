/**
 * The METERING stream: ingested events, many per message, on one subject per partition
 * (`metering.ev.<partition>`, the partition a hash of the subject), so workers can split the
 * partitions between them and each customer's aggregates are written by one worker.
 */
import type { StreamConfig } from '@allot/kit/bus';

export const METERING_STREAM = 'METERING';
export const DEFAULT_PARTITIONS = 4;
const SEVEN_DAYS_MS = 7 * 24 * 60 * 60 * 1000;

export const meteringStreamConfig: StreamConfig = {
  name: METERING_STREAM,
  subjects: ['metering.ev.*'],
  // Publishers set Nats-Msg-Id: a publish retried within two minutes is stored once.
  duplicateWindowMs: 120_000,
  maxAgeMs: SEVEN_DAYS_MS,
};

export function meteringSubject(partition: number): string {
  return `metering.ev.${partition}`;
}

/** FNV-1a of the subject (the customer), so one customer always lands in one partition. */
export function partitionOf(subject: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < subject.length; i++) {
    hash ^= subject.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

/** The durable consumer of one partition (shared by every worker that takes that partition). */
export function partitionConsumer(partition: number, ackWaitMs: number) {
  return { durable: `metering-p${partition}`, filterSubject: meteringSubject(partition), ackWaitMs };
}
