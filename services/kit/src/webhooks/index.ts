/**
 * Webhooks for every service: events published to the EVENTS stream are delivered to the
 * tenant's endpoints, signed (HMAC-SHA256 over timestamp and body) and retried with backoff,
 * with a delivery log in PostgreSQL. See docs/webhooks.md.
 */
export { type WebhooksPluginOptions, webhookBody, webhooksPlugin } from './app.ts';
export {
  ATTEMPT_HEADER,
  type DispatcherLog,
  type DispatcherStats,
  startWebhookDispatcher,
  WEBHOOKS_DURABLE,
  WebhookDispatcher,
  type WebhookDispatcherOptions,
} from './dispatcher.ts';
export {
  type AllotEvent,
  allotEvent,
  EVENTS_STREAM,
  EVENTS_SUBJECTS,
  eventSubject,
  eventsStreamConfig,
  eventType,
  publishEvent,
} from './events.ts';
export { migrateWebhooks, webhooksMigrations } from './migrations.ts';
export { defaultRetryPolicy, nextAttemptAt, type RetryPolicy, retryDelayMs } from './retry.ts';
export {
  DEFAULT_TOLERANCE_SECONDS,
  EVENT_ID_HEADER,
  EVENT_TYPE_HEADER,
  generateWebhookSecret,
  SIGNATURE_HEADER,
  signWebhook,
  type VerifyWebhookOptions,
  verifyWebhook,
  type WebhookVerification,
  webhookDigest,
} from './signature.ts';
export {
  type DeliveryStatus,
  deliveryPage,
  listEndpoints,
  upsertEndpoint,
  type WebhookDelivery,
  type WebhookEndpoint,
} from './store.ts';
