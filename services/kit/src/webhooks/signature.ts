/**
 * Webhook signatures, in Stripe's scheme: an HMAC-SHA256 over `<timestamp>.<body>` with the
 * endpoint's secret, sent as `allot-signature: t=<unix seconds>,v1=<hex>`. The timestamp is
 * signed, so a captured request cannot be replayed outside the tolerance window; receivers
 * dedupe on `allot-event-id` within it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'allot-signature';
export const EVENT_ID_HEADER = 'allot-event-id';
export const EVENT_TYPE_HEADER = 'allot-event-type';

/** Stripe's default: five minutes either way. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** A new endpoint secret: `whsec_` and 32 random bytes. The whole string is the HMAC key. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** The hex HMAC-SHA256 of `<timestamp>.<body>`; `body` exactly as sent, byte for byte. */
export function webhookDigest(secret: string, timestamp: number, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The `allot-signature` header value: `t=<unix seconds>,v1=<hex>`. */
export function signWebhook(secret: string, timestamp: number, body: string | Uint8Array): string {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new RangeError(`timestamp must be whole unix seconds, got ${timestamp}`);
  }
  return `t=${timestamp},v1=${webhookDigest(secret, timestamp, body)}`;
}

export type WebhookVerification =
  | { ok: true; timestamp: number }
  | {
      ok: false;
      reason: 'missing_header' | 'malformed_header' | 'timestamp_outside_tolerance' | 'signature_mismatch';
    };

export interface VerifyWebhookOptions {
  /** How far the signed time may be from now, either way. Default 300 s. */
  toleranceSeconds?: number;
  /** The receiver's clock, epoch ms (tests). Default `Date.now()`. */
  now?: number;
}

/**
 * Checks a received webhook: the header parses, its time is within the tolerance of now, and one
 * of its `v1` signatures is the HMAC of `<t>.<body>` (compared in constant time). `body` must be
 * the raw request body, not a re-serialised parse of it.
 */
export function verifyWebhook(
  secret: string,
  header: string | undefined | null,
  body: string | Uint8Array,
  options: VerifyWebhookOptions = {},
): WebhookVerification {
  if (!header) return { ok: false, reason: 'missing_header' };
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (eq < 0) return { ok: false, reason: 'malformed_header' };
    if (key === 't') {
      if (!/^\d{1,12}$/.test(value)) return { ok: false, reason: 'malformed_header' };
      timestamp = Number(value);
    } else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) {
      signatures.push(Buffer.from(value, 'hex'));
    }
    // Other schemes (a future v2) are ignored, as Stripe's receivers do.
  }
  if (timestamp === undefined || signatures.length === 0) return { ok: false, reason: 'malformed_header' };
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(nowSeconds - timestamp) > tolerance)
    return { ok: false, reason: 'timestamp_outside_tolerance' };
  const expected = Buffer.from(webhookDigest(secret, timestamp, body), 'hex');
  // Every candidate is compared, so the time taken does not say which one matched.
  let matched = false;
  for (const signature of signatures) matched = timingSafeEqual(signature, expected) || matched;
  return matched ? { ok: true, timestamp } : { ok: false, reason: 'signature_mismatch' };
}
