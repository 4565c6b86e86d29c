/**
 * The webhooks tables (schema `webhooks`, migrations in `services/kit/migrations/webhooks`):
 * endpoints, the events handed to them, and the delivery log that is also the retry state.
 */
import type { SqlExecutor } from '../sql/port.ts';
import { generateWebhookSecret } from './signature.ts';

export interface WebhookEndpoint {
  tenant: string;
  id: string;
  url: string;
  /** Exact types, `<prefix>.*`, or `*`. */
  events: string[];
  description: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface WebhookDelivery {
  eventId: string;
  eventType: string;
  endpointId: string;
  status: DeliveryStatus;
  attempts: number;
  responseCode: number | null;
  lastError: string | null;
  nextAttemptAt: Date | null;
  deliveredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface UpsertEndpoint {
  tenant: string;
  id: string;
  url: string;
  events: string[];
  description?: string | null;
  /** The caller's own secret; absent: one is generated on creation and kept on update. */
  secret?: string;
  /** Replace the secret with a generated one (ignored when `secret` is given). */
  rotateSecret?: boolean;
}

export interface UpsertedEndpoint {
  endpoint: WebhookEndpoint;
  created: boolean;
  /** The secret this call generated, shown to the caller this once; null when none was generated. */
  generatedSecret: string | null;
}

interface EndpointRow {
  tenant: string;
  id: string;
  url: string;
  events: string[];
  description: string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

const ENDPOINT_COLUMNS = 'tenant, id, url, events, description, created_at, updated_at';
const date = (value: Date | string): Date => new Date(value);
const dateOrNull = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

function endpointRecord(row: EndpointRow): WebhookEndpoint {
  return {
    tenant: row.tenant,
    id: row.id,
    url: row.url,
    events: row.events,
    description: row.description,
    createdAt: date(row.created_at),
    updatedAt: date(row.updated_at),
  };
}

/** Creates an endpoint or replaces its url, events and description. */
export async function upsertEndpoint(sql: SqlExecutor, endpoint: UpsertEndpoint): Promise<UpsertedEndpoint> {
  const generated = endpoint.secret === undefined ? generateWebhookSecret() : null;
  const replace = endpoint.secret !== undefined || endpoint.rotateSecret === true;
  const { rows } = await sql.query<EndpointRow & { created: boolean }>(
    `INSERT INTO webhooks.endpoints AS e (tenant, id, url, events, secret, description)
     VALUES ($1, $2, $3, $4::text[], $5, $6)
     ON CONFLICT (tenant, id) DO UPDATE SET
       url = excluded.url, events = excluded.events, description = excluded.description,
       secret = CASE WHEN $7::boolean THEN excluded.secret ELSE e.secret END,
       updated_at = now()
     RETURNING ${ENDPOINT_COLUMNS}, (xmax = 0) AS created`,
    [
      endpoint.tenant,
      endpoint.id,
      endpoint.url,
      endpoint.events,
      endpoint.secret ?? generated,
      endpoint.description ?? null,
      replace,
    ],
  );
  const row = rows[0]!;
  const created = row.created === true;
  return {
    endpoint: endpointRecord(row),
    created,
    generatedSecret: generated !== null && (created || replace) ? generated : null,
  };
}

export async function listEndpoints(sql: SqlExecutor, tenant: string): Promise<WebhookEndpoint[]> {
  const { rows } = await sql.query<EndpointRow>(
    `SELECT ${ENDPOINT_COLUMNS} FROM webhooks.endpoints WHERE tenant = $1 ORDER BY id`,
    [tenant],
  );
  return rows.map(endpointRecord);
}

export async function findEndpoint(
  sql: SqlExecutor,
  tenant: string,
  id: string,
): Promise<WebhookEndpoint | null> {
  const { rows } = await sql.query<EndpointRow>(
    `SELECT ${ENDPOINT_COLUMNS} FROM webhooks.endpoints WHERE tenant = $1 AND id = $2`,
    [tenant, id],
  );
  return rows[0] ? endpointRecord(rows[0]) : null;
}

/**
 * Deletes the endpoint and its delivery log; pending deliveries stop. Returns false when there
 * was no such endpoint. A delivery the fan-out adds meanwhile is dropped when it comes due.
 */
export async function deleteEndpoint(sql: SqlExecutor, tenant: string, id: string): Promise<boolean> {
  const { rows } = await sql.query<{ deleted: string }>(
    `WITH gone AS (
       DELETE FROM webhooks.endpoints WHERE tenant = $1 AND id = $2 RETURNING id
     ), log AS (
       DELETE FROM webhooks.deliveries WHERE tenant = $1 AND endpoint_id IN (SELECT id FROM gone)
     )
     SELECT count(*) AS deleted FROM gone`,
    [tenant, id],
  );
  return Number(rows[0]?.deleted ?? 0) > 0;
}

// ---------------------------------------------------------------------------------------------
// The delivery log

export interface DeliveryPage {
  deliveries: WebhookDelivery[];
  /** Pass back as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

export class InvalidDeliveryCursorError extends Error {
  override readonly name = 'InvalidDeliveryCursorError';
}

interface DeliveryRow {
  seq: string;
  event_id: string;
  event_type: string;
  endpoint_id: string;
  status: DeliveryStatus;
  attempts: number;
  response_code: number | null;
  last_error: string | null;
  next_attempt_at: Date | string | null;
  delivered_at: Date | string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

const CURSOR_PREFIX = 'd1.';

/** One endpoint's deliveries, newest first, keyset-paginated on the log's sequence. */
export async function deliveryPage(
  sql: SqlExecutor,
  tenant: string,
  endpointId: string,
  options: { cursor?: string | null; limit: number },
): Promise<DeliveryPage> {
  let before: string | null = null;
  if (options.cursor) {
    const text = Buffer.from(options.cursor, 'base64url').toString('utf8');
    const seq = text.startsWith(CURSOR_PREFIX) ? text.slice(CURSOR_PREFIX.length) : '';
    if (!/^[1-9]\d{0,18}$/.test(seq)) {
      throw new InvalidDeliveryCursorError(`invalid deliveries cursor ${JSON.stringify(options.cursor)}`);
    }
    before = seq;
  }
  const { rows } = await sql.query<DeliveryRow>(
    `SELECT seq, event_id, event_type, endpoint_id, status, attempts, response_code, last_error,
       next_attempt_at, delivered_at, created_at, updated_at
     FROM webhooks.deliveries
     WHERE tenant = $1 AND endpoint_id = $2 AND ($3::bigint IS NULL OR seq < $3::bigint)
     ORDER BY seq DESC LIMIT $4`,
    [tenant, endpointId, before, options.limit + 1],
  );
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  return {
    deliveries: page.map((row) => ({
      eventId: row.event_id,
      eventType: row.event_type,
      endpointId: row.endpoint_id,
      status: row.status,
      attempts: row.attempts,
      responseCode: row.response_code,
      lastError: row.last_error,
      nextAttemptAt: dateOrNull(row.next_attempt_at),
      deliveredAt: dateOrNull(row.delivered_at),
      createdAt: date(row.created_at),
      updatedAt: date(row.updated_at),
    })),
    nextCursor:
      rows.length > options.limit && last
        ? Buffer.from(`${CURSOR_PREFIX}${last.seq}`).toString('base64url')
        : null,
  };
}

// ---------------------------------------------------------------------------------------------
// The dispatcher's side

export interface ReceivedEvent {
  tenant: string;
  id: string;
  type: string;
  /** The exact JSON text endpoints receive. */
  body: string;
}

/**
 * Stores the events and one pending delivery per (event, subscribed endpoint of its tenant),
 * due at once. Idempotent: an event or delivery already there is left as it is, so a
 * redelivered message never sends anything twice. Returns the deliveries added.
 */
export async function fanOut(sql: SqlExecutor, events: readonly ReceivedEvent[], now: Date): Promise<number> {
  if (events.length === 0) return 0;
  const { rows } = await sql.query<{ added: string }>(
    `WITH incoming AS (
       SELECT DISTINCT ON (tenant, id) * FROM json_to_recordset($1::json)
         AS e (tenant text, id text, type text, body text)
       ORDER BY tenant, id
     ),
     stored AS (
       INSERT INTO webhooks.events (tenant, id, type, body, received_at)
       SELECT tenant, id, type, body, $2::timestamptz FROM incoming
       ON CONFLICT (tenant, id) DO NOTHING
     ),
     added AS (
       INSERT INTO webhooks.deliveries
         (tenant, event_id, endpoint_id, event_type, status, attempts, next_attempt_at, created_at, updated_at)
       SELECT e.tenant, e.id, ep.id, e.type, 'pending', 0, $2::timestamptz, $2::timestamptz, $2::timestamptz
       FROM incoming e
       JOIN webhooks.endpoints ep ON ep.tenant = e.tenant AND EXISTS (
         SELECT 1 FROM unnest(ep.events) AS p (pattern)
         WHERE p.pattern = '*' OR p.pattern = e.type
           OR (right(p.pattern, 2) = '.*' AND starts_with(e.type, left(p.pattern, -1))))
       ORDER BY e.tenant, e.id, ep.id
       ON CONFLICT (tenant, event_id, endpoint_id) DO NOTHING
       RETURNING 1
     )
     SELECT count(*) AS added FROM added`,
    [JSON.stringify(events), now],
  );
  return Number(rows[0]?.added ?? 0);
}

/** A delivery claimed for one attempt. `url`/`secret` are null when the endpoint is gone. */
export interface ClaimedDelivery {
  tenant: string;
  eventId: string;
  endpointId: string;
  eventType: string;
  /** This attempt's number (1 for the first). */
  attempt: number;
  url: string | null;
  secret: string | null;
  body: string | null;
  receivedAt: Date | null;
}

/**
 * Claims up to `limit` pending deliveries that are due: counts the attempt and moves
 * `next_attempt_at` to `leaseUntil`, so no other dispatcher takes them meanwhile and, if this
 * one dies mid-attempt, the delivery comes due again when the lease ends.
 */
export async function claimDueDeliveries(
  sql: SqlExecutor,
  now: Date,
  limit: number,
  leaseUntil: Date,
): Promise<ClaimedDelivery[]> {
  const { rows } = await sql.query<{
    tenant: string;
    event_id: string;
    endpoint_id: string;
    event_type: string;
    attempts: number;
    url: string | null;
    secret: string | null;
    body: string | null;
    received_at: Date | string | null;
  }>(
    `WITH due AS (
       SELECT tenant, event_id, endpoint_id FROM webhooks.deliveries
       WHERE status = 'pending' AND next_attempt_at <= $1::timestamptz
       ORDER BY next_attempt_at LIMIT $2
       FOR UPDATE SKIP LOCKED
     ),
     claimed AS (
       UPDATE webhooks.deliveries d
       SET attempts = d.attempts + 1, next_attempt_at = $3::timestamptz, updated_at = $1::timestamptz
       FROM due
       WHERE d.tenant = due.tenant AND d.event_id = due.event_id AND d.endpoint_id = due.endpoint_id
       RETURNING d.tenant, d.event_id, d.endpoint_id, d.event_type, d.attempts
     )
     SELECT c.tenant, c.event_id, c.endpoint_id, c.event_type, c.attempts, ep.url, ep.secret, ev.body,
       ev.received_at
     FROM claimed c
     LEFT JOIN webhooks.endpoints ep ON ep.tenant = c.tenant AND ep.id = c.endpoint_id
     LEFT JOIN webhooks.events ev ON ev.tenant = c.tenant AND ev.id = c.event_id`,
    [now, limit, leaseUntil],
  );
  return rows.map((row) => ({
    tenant: row.tenant,
    eventId: row.event_id,
    endpointId: row.endpoint_id,
    eventType: row.event_type,
    attempt: row.attempts,
    url: row.url,
    secret: row.secret,
    body: row.body,
    receivedAt: dateOrNull(row.received_at),
  }));
}

export type AttemptOutcome =
  | { status: 'delivered'; responseCode: number; at: Date }
  | {
      status: 'pending' | 'failed';
      responseCode: number | null;
      error: string;
      at: Date;
      /** When to try again (pending only). */
      nextAttemptAt: Date | null;
    };

/**
 * Records how the claimed attempt ended. Only the claim that is still current writes: if the
 * lease ran out and another dispatcher took the delivery over, this changes nothing.
 */
export async function recordAttempt(
  sql: SqlExecutor,
  claim: Pick<ClaimedDelivery, 'tenant' | 'eventId' | 'endpointId' | 'attempt'>,
  outcome: AttemptOutcome,
): Promise<boolean> {
  const delivered = outcome.status === 'delivered';
  const { rowCount } = await sql.query(
    `UPDATE webhooks.deliveries SET
       status = $5, response_code = $6, last_error = $7, next_attempt_at = $8::timestamptz,
       delivered_at = $9::timestamptz, updated_at = $10::timestamptz
     WHERE tenant = $1 AND event_id = $2 AND endpoint_id = $3 AND attempts = $4 AND status = 'pending'`,
    [
      claim.tenant,
      claim.eventId,
      claim.endpointId,
      claim.attempt,
      outcome.status,
      outcome.responseCode,
      delivered ? null : outcome.error,
      delivered ? null : outcome.nextAttemptAt,
      delivered ? outcome.at : null,
      outcome.at,
    ],
  );
  return rowCount > 0;
}

/** A delivery whose endpoint was deleted: nothing to send it to, and no log to keep it in. */
export async function dropDelivery(
  sql: SqlExecutor,
  claim: Pick<ClaimedDelivery, 'tenant' | 'eventId' | 'endpointId'>,
): Promise<void> {
  await sql.query(
    `DELETE FROM webhooks.deliveries
     WHERE tenant = $1 AND event_id = $2 AND endpoint_id = $3
       AND NOT EXISTS (SELECT 1 FROM webhooks.endpoints WHERE tenant = $1 AND id = $3)`,
    [claim.tenant, claim.eventId, claim.endpointId],
  );
}

/** Forgets finished deliveries and events last touched before `before`. */
export async function pruneDeliveries(sql: SqlExecutor, before: Date): Promise<number> {
  const { rows } = await sql.query<{ pruned: string }>(
    `WITH finished AS (
       DELETE FROM webhooks.deliveries WHERE status <> 'pending' AND updated_at < $1::timestamptz RETURNING 1
     ),
     old_events AS (
       DELETE FROM webhooks.events e WHERE e.received_at < $1::timestamptz
         AND NOT EXISTS (SELECT 1 FROM webhooks.deliveries d
                         WHERE d.tenant = e.tenant AND d.event_id = e.id AND d.status = 'pending')
     )
     SELECT count(*) AS pruned FROM finished`,
    [before],
  );
  return Number(rows[0]?.pruned ?? 0);
}
