/**
 * The webhook dispatcher: reads the EVENTS stream through a durable consumer (`webhooks`), fans
 * each event out to its tenant's subscribed endpoints as rows of the delivery log, and POSTs
 * them, signed, retrying failures with backoff until the event's maximum age.
 *
 * The stream is acknowledged only once the fan-out is committed, and every attempt is claimed
 * and recorded in PostgreSQL, so a dispatcher that stops or dies loses nothing: another one (or
 * the same, restarted) resumes from the log. Delivery is at least once: an attempt whose
 * outcome could not be recorded is made again, and receivers dedupe on `allot-event-id`.
 * Deliveries are idempotent per (event id, endpoint): a redelivered stream message adds none.
 */
import type { Registry } from 'prom-client';
import { Counter, Histogram } from 'prom-client';
import type { Bus, BusMessage, Consumer } from '../bus/port.ts';
import { LoopSignal } from '../loop-signal.ts';
import type { SqlStore } from '../sql/port.ts';
import { allotEvent, EVENTS_STREAM, EVENTS_SUBJECTS, eventsStreamConfig } from './events.ts';
import { migrateWebhooks } from './migrations.ts';
import { defaultRetryPolicy, nextAttemptAt, type RetryPolicy } from './retry.ts';
import { EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, signWebhook } from './signature.ts';
import {
  type AttemptOutcome,
  type ClaimedDelivery,
  claimDueDeliveries,
  dropDelivery,
  fanOut,
  pruneDeliveries,
  type ReceivedEvent,
  recordAttempt,
} from './store.ts';

export const WEBHOOKS_DURABLE = 'webhooks';
export const ATTEMPT_HEADER = 'allot-delivery-attempt';

/** pino's logger fits. */
export interface DispatcherLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WebhookDispatcherOptions {
  sql: SqlStore;
  bus: Bus;
  log?: DispatcherLog;
  /** Where to register the dispatcher's Prometheus metrics. */
  registry?: Registry;
  retry?: Partial<RetryPolicy>;
  /** Each attempt, response body included, ends after this. Default 10 s. */
  timeoutMs?: number;
  /** Attempts in flight at once. Default 16. */
  concurrency?: number;
  /** How often the log is looked at for retries that came due. Default 1 s. */
  pollMs?: number;
  /** Stream messages per fan-out. Default 64. */
  fetchMax?: number;
  /** How long a fetch waits for a first message (and `stop` may wait for one). Default 500 ms. */
  fetchExpiresMs?: number;
  /** Finished deliveries are forgotten after this. Default 30 days; keep it above the stream's max age. */
  retentionMs?: number;
  /** The clock, epoch ms (tests). */
  now?: () => number;
  /** In [0, 1), for the retry jitter (tests). */
  random?: () => number;
}

export interface DispatcherStats {
  /** Events read from the stream (a redelivered message counts again). */
  events: number;
  /** Delivery rows the fan-out added. */
  deliveriesAdded: number;
  /** Messages that were not an event, terminated. */
  malformed: number;
  delivered: number;
  /** Failed attempts that will be retried. */
  retried: number;
  /** Deliveries given up after the maximum age. */
  failed: number;
}

/** How long past its timeout an attempt keeps its claim: then another dispatcher may retry it. */
const LEASE_MARGIN_MS = 30_000;
const PRUNE_EVERY_MS = 60 * 60 * 1000;
const ERROR_EXCERPT_BYTES = 300;

export class WebhookDispatcher {
  readonly #sql: SqlStore;
  readonly #bus: Bus;
  readonly #log: DispatcherLog;
  readonly #policy: RetryPolicy;
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  readonly #pollMs: number;
  readonly #fetchMax: number;
  readonly #fetchExpiresMs: number;
  readonly #retentionMs: number;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #metrics: DispatcherMetrics | undefined;
  readonly #stats: DispatcherStats = {
    events: 0,
    deliveriesAdded: 0,
    malformed: 0,
    delivered: 0,
    retried: 0,
    failed: 0,
  };
  readonly #inFlight = new Set<Promise<void>>();
  #loops: Promise<void>[] = [];
  readonly #signal = new LoopSignal();
  /** Pauses in progress (either loop's); `wake` and `stop` end them. */
  #lastPrune = 0;

  constructor(options: WebhookDispatcherOptions) {
    this.#sql = options.sql;
    this.#bus = options.bus;
    this.#log = options.log ?? silentLog;
    this.#policy = { ...defaultRetryPolicy, ...options.retry };
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#concurrency = Math.max(1, options.concurrency ?? 16);
    this.#pollMs = options.pollMs ?? 1000;
    this.#fetchMax = options.fetchMax ?? 64;
    this.#fetchExpiresMs = options.fetchExpiresMs ?? 500;
    this.#retentionMs = options.retentionMs ?? 30 * 24 * 60 * 60 * 1000;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#metrics = options.registry ? new DispatcherMetrics(options.registry) : undefined;
  }

  get stats(): Readonly<DispatcherStats> {
    return { ...this.#stats };
  }

  /** Declares the EVENTS stream and the durable consumer, then runs until `stop`. */
  async start(): Promise<void> {
    if (this.#loops.length > 0) throw new Error('webhook dispatcher already started');
    await this.#bus.ensureStream(eventsStreamConfig);
    const consumer = await this.#bus.consumer(EVENTS_STREAM, {
      durable: WEBHOOKS_DURABLE,
      filterSubject: EVENTS_SUBJECTS,
      ackWaitMs: 30_000,
    });
    this.#signal.start();
    this.#loops = [this.#consume(consumer), this.#deliver()];
  }

  /** Stops reading and claiming, lets the attempts in flight finish and record, and resolves. */
  async stop(): Promise<void> {
    this.#signal.stop();
    await Promise.all(this.#loops);
    this.#loops = [];
  }

  /** Looks for due deliveries now rather than at the next poll. */
  wake(): void {
    this.#signal.wake();
  }

  async #consume(consumer: Consumer): Promise<void> {
    let failures = 0;
    while (!this.#signal.stopping) {
      let messages: BusMessage[];
      try {
        messages = await consumer.fetch({ max: this.#fetchMax, expiresMs: this.#fetchExpiresMs });
      } catch (error) {
        this.#log.warn({ err: error }, 'webhooks: fetching events failed');
        await this.#signal.pause(backoffMs(++failures));
        continue;
      }
      if (messages.length === 0) continue;
      const received: { message: BusMessage; event: ReceivedEvent }[] = [];
      for (const message of messages) {
        const event = this.#decode(message);
        if (event) received.push({ message, event });
      }
      if (received.length === 0) continue;
      try {
        const added = await fanOut(
          this.#sql,
          received.map((r) => r.event),
          new Date(this.#now()),
        );
        failures = 0;
        this.#stats.events += received.length;
        this.#stats.deliveriesAdded += added;
        this.#metrics?.events.inc(received.length);
        // Committed: a lost ack only means a redelivery, which adds nothing.
        await Promise.allSettled(received.map((r) => r.message.ack()));
        if (added > 0) this.wake();
      } catch (error) {
        failures++;
        this.#log.error({ err: error, messages: received.length }, 'webhooks: fan-out failed; will retry');
        for (const { message } of received) message.nak(backoffMs(message.deliveryCount));
      }
    }
  }

  #decode(message: BusMessage): ReceivedEvent | null {
    const body = new TextDecoder().decode(message.data);
    let problem: string;
    try {
      const parsed = allotEvent.safeParse(JSON.parse(body));
      if (parsed.success) {
        return { tenant: parsed.data.tenant, id: parsed.data.id, type: parsed.data.type, body };
      }
      problem = parsed.error.message;
    } catch (error) {
      problem = error instanceof Error ? error.message : String(error);
    }
    this.#stats.malformed++;
    this.#log.error(
      { seq: message.seq, subject: message.subject, problem },
      'webhooks: malformed event dropped',
    );
    message.term();
    return null;
  }

  async #deliver(): Promise<void> {
    let failures = 0;
    while (!this.#signal.stopping) {
      const free = this.#concurrency - this.#inFlight.size;
      if (free <= 0) {
        await Promise.race(this.#inFlight);
        continue;
      }
      this.#signal.clearWake();
      let claimed: ClaimedDelivery[];
      try {
        const now = this.#now();
        claimed = await claimDueDeliveries(
          this.#sql,
          new Date(now),
          free,
          new Date(now + this.#timeoutMs + LEASE_MARGIN_MS),
        );
        failures = 0;
        await this.#pruneNow(now);
      } catch (error) {
        this.#log.warn({ err: error }, 'webhooks: claiming due deliveries failed');
        await this.#signal.pause(backoffMs(++failures));
        continue;
      }
      for (const claim of claimed) {
        const attempt: Promise<void> = this.#attempt(claim)
          .catch((error: unknown) =>
            this.#log.error({ err: error, eventId: claim.eventId }, 'webhooks: recording an attempt failed'),
          )
          .finally(() => this.#inFlight.delete(attempt));
        this.#inFlight.add(attempt);
      }
      // Fewer were due than there was room for: wait for the fan-out or the next poll.
      if (claimed.length < free && !this.#signal.woken) await this.#signal.pause(this.#pollMs);
    }
    await Promise.allSettled([...this.#inFlight]);
  }

  async #attempt(claim: ClaimedDelivery): Promise<void> {
    if (claim.url === null || claim.secret === null) {
      await dropDelivery(this.#sql, claim);
      return;
    }
    const started = performance.now();
    const result =
      claim.body === null
        ? { ok: false as const, responseCode: null, error: 'the event is no longer stored' }
        : await this.#post(claim.url, claim.secret, claim.body, claim);
    this.#metrics?.attemptSeconds.observe((performance.now() - started) / 1000);
    const at = new Date(this.#now());
    let outcome: AttemptOutcome;
    if (result.ok) {
      outcome = { status: 'delivered', responseCode: result.responseCode, at };
    } else {
      const next =
        claim.body === null
          ? null
          : nextAttemptAt(claim.attempt, claim.receivedAt ?? at, at, this.#policy, this.#random());
      outcome = {
        status: next === null ? 'failed' : 'pending',
        responseCode: result.responseCode,
        error: result.error,
        at,
        nextAttemptAt: next,
      };
    }
    const current = await recordAttempt(this.#sql, claim, outcome);
    if (!current) return;
    const label =
      outcome.status === 'delivered' ? 'delivered' : outcome.status === 'failed' ? 'failed' : 'retried';
    this.#stats[label]++;
    this.#metrics?.attempts.inc({ outcome: label });
    if (outcome.status === 'failed') {
      this.#log.warn(
        {
          eventId: claim.eventId,
          endpointId: claim.endpointId,
          attempts: claim.attempt,
          error: outcome.error,
        },
        'webhooks: delivery given up',
      );
    }
  }

  async #post(
    url: string,
    secret: string,
    body: string,
    claim: ClaimedDelivery,
  ): Promise<{ ok: true; responseCode: number } | { ok: false; responseCode: number | null; error: string }> {
    const timestamp = Math.floor(this.#now() / 1000);
    try {
      const response = await fetch(url, {
        method: 'POST',
        body,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Allot-Webhooks/1',
          [EVENT_ID_HEADER]: claim.eventId,
          [EVENT_TYPE_HEADER]: claim.eventType,
          [ATTEMPT_HEADER]: String(claim.attempt),
          [SIGNATURE_HEADER]: signWebhook(secret, timestamp, body),
        },
        // A redirect is a failure, not a hop to somewhere the tenant did not configure.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      const excerpt = await responseExcerpt(response);
      if (response.status >= 200 && response.status < 300) return { ok: true, responseCode: response.status };
      return {
        ok: false,
        responseCode: response.status,
        error: `HTTP ${response.status}${excerpt ? `: ${excerpt}` : ''}`,
      };
    } catch (error) {
      return { ok: false, responseCode: null, error: describeFetchError(error, this.#timeoutMs) };
    }
  }

  async #pruneNow(now: number): Promise<void> {
    if (now - this.#lastPrune < PRUNE_EVERY_MS) return;
    this.#lastPrune = now;
    const pruned = await pruneDeliveries(this.#sql, new Date(now - this.#retentionMs));
    if (pruned > 0) this.#log.info({ pruned }, 'webhooks: old deliveries pruned');
  }
}

/** Applies the webhooks migrations, then starts a dispatcher. */
export async function startWebhookDispatcher(options: WebhookDispatcherOptions): Promise<WebhookDispatcher> {
  await migrateWebhooks(options.sql);
  const dispatcher = new WebhookDispatcher(options);
  await dispatcher.start();
  return dispatcher;
}

function backoffMs(attempt: number): number {
  return Math.min(30_000, 250 * 2 ** Math.max(0, Math.min(attempt - 1, 10)));
}

/** The start of the response body, for the log; the rest is not read. */
async function responseExcerpt(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < ERROR_EXCERPT_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // A body cut short still leaves the status to go by.
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, ERROR_EXCERPT_BYTES).trim();
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `timed out after ${timeoutMs} ms`;
  }
  // undici says "fetch failed" and puts the reason (ECONNREFUSED, a TLS error, ...) in `cause`.
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const message = error instanceof Error ? error.message : String(error);
  if (!cause) return message;
  const reason =
    typeof cause.code === 'string' ? `${cause.code} ${String(cause.message ?? '')}` : String(cause.message);
  return `${message}: ${reason.trim()}`;
}

class DispatcherMetrics {
  readonly events: Counter;
  readonly attempts: Counter<'outcome'>;
  readonly attemptSeconds: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.events = new Counter({
      name: 'allot_webhook_events_total',
      help: 'Events read from the EVENTS stream by the webhook dispatcher',
      registers,
    });
    this.attempts = new Counter({
      name: 'allot_webhook_attempts_total',
      help: 'Webhook attempts by outcome: delivered, retried (failed, tried again later), failed (given up)',
      labelNames: ['outcome'],
      registers,
    });
    this.attemptSeconds = new Histogram({
      name: 'allot_webhook_attempt_seconds',
      help: 'Time of one webhook attempt, response included',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }
}

const silentLog: DispatcherLog = { info() {}, warn() {}, error() {} };
