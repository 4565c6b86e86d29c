/**
 * When a failed webhook is tried again: exponential backoff from `initialDelayMs`, doubling per
 * attempt up to `maxDelayMs`, each delay spread by ±`jitter` so that endpoints failing together
 * are not retried together; given up once the event is older than `maxAgeMs`.
 */
export interface RetryPolicy {
  /** Delay after the first failed attempt. Default 10 s. */
  initialDelayMs: number;
  /** Longest delay between two attempts. Default 4 h. */
  maxDelayMs: number;
  /** No attempt starts later than this after the event was received. Default 72 h. */
  maxAgeMs: number;
  /** Fraction each delay is spread by, either way. Default 0.2. */
  jitter: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  initialDelayMs: 10_000,
  maxDelayMs: 4 * 60 * 60 * 1000,
  maxAgeMs: 72 * 60 * 60 * 1000,
  jitter: 0.2,
};

/** The delay after failed attempt number `attempt` (1-based); `random` in [0, 1). */
export function retryDelayMs(attempt: number, policy: RetryPolicy, random: number = Math.random()): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 40);
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** exponent);
  return Math.max(0, Math.round(base * (1 + policy.jitter * (2 * random - 1))));
}

/**
 * When to try again after failed attempt `attempt`, or null to give up: the next attempt
 * would start after the event's maximum age.
 */
export function nextAttemptAt(
  attempt: number,
  receivedAt: Date,
  now: Date,
  policy: RetryPolicy,
  random: number = Math.random(),
): Date | null {
  const next = now.getTime() + retryDelayMs(attempt, policy, random);
  return next > receivedAt.getTime() + policy.maxAgeMs ? null : new Date(next);
}
