/**
 * The uplink between a tenant's data plane and the control plane's hub: every subject of a
 * tenant lies under `allot.<tenant>.`, which is exactly what its NATS user may publish and
 * subscribe to. Down: configuration change notices and the replies to its requests. Up:
 * acknowledgements of applied versions, health, and aggregates. Nothing else crosses.
 */
export const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const subjects = {
  /** Down (hub → data plane): `{ version }`, a change to fetch. */
  changed: (tenant: string) => `allot.${tenant}.config.changed`,
  /** Request (data plane → hub): `{ after }`, answered with the changes since. */
  sync: (tenant: string) => `allot.${tenant}.config.sync`,
  /** Up: `{ version }`, the configuration version applied. */
  ack: (tenant: string) => `allot.${tenant}.up.ack`,
  /** Up: `{ status, appliedVersion, ... }`. */
  health: (tenant: string) => `allot.${tenant}.up.health`,
  /** Up: `{ aggregates, cursor }` from the metering export. */
  aggregates: (tenant: string) => `allot.${tenant}.up.aggregates`,
  /** Where replies to the data plane go (its requests name one under it). */
  inbox: (tenant: string) => `allot.${tenant}.inbox`,
  /** What the hub listens on. */
  requests: ['allot.*.config.sync', 'allot.*.up.ack', 'allot.*.up.health', 'allot.*.up.aggregates'],
};

/** The tenant a subject belongs to (its second token), never one named in a payload. */
export function tenantOfSubject(subject: string): string | null {
  const parts = subject.split('.');
  return parts[0] === 'allot' && parts.length >= 3 && TENANT_ID.test(parts[1]!) ? parts[1]! : null;
}
