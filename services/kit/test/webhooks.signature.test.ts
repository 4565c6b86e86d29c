import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { defaultRetryPolicy, nextAttemptAt, retryDelayMs } from '../src/webhooks/retry.ts';
import { generateWebhookSecret, signWebhook, verifyWebhook } from '../src/webhooks/signature.ts';

const secret = 'whsec_test_secret_0123456789';
const body = JSON.stringify({ id: 'evt_1', type: 'credits.balance.low', data: { available: '4.5' } });
const t = 1_767_225_600; // 2026-01-01T00:00:00Z
const at = (seconds: number) => seconds * 1000;

describe('webhook signatures', () => {
  it('signs t.body with HMAC-SHA256 in the t=..,v1=.. header', () => {
    const header = signWebhook(secret, t, body);
    const hex = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
    expect(header).toBe(`t=${t},v1=${hex}`);
  });

  it('verifies its own signature, from a string or the raw bytes', () => {
    const header = signWebhook(secret, t, body);
    expect(verifyWebhook(secret, header, body, { now: at(t) })).toEqual({ ok: true, timestamp: t });
    expect(verifyWebhook(secret, header, Buffer.from(body), { now: at(t + 299) }).ok).toBe(true);
  });

  it('rejects a tampered body, a tampered timestamp and another secret', () => {
    const header = signWebhook(secret, t, body);
    const mismatch = { ok: false, reason: 'signature_mismatch' };
    expect(verifyWebhook(secret, header, body.replace('4.5', '450'), { now: at(t) })).toEqual(mismatch);
    expect(verifyWebhook(secret, header.replace(`t=${t}`, `t=${t + 1}`), body, { now: at(t) })).toEqual(
      mismatch,
    );
    expect(verifyWebhook(`${secret}x`, header, body, { now: at(t) })).toEqual(mismatch);
  });

  it('rejects a timestamp outside the tolerance, either way', () => {
    const header = signWebhook(secret, t, body);
    const outside = { ok: false, reason: 'timestamp_outside_tolerance' };
    expect(verifyWebhook(secret, header, body, { now: at(t + 301) })).toEqual(outside);
    expect(verifyWebhook(secret, header, body, { now: at(t - 301) })).toEqual(outside);
    expect(verifyWebhook(secret, header, body, { now: at(t + 3600), toleranceSeconds: 7200 }).ok).toBe(true);
  });

  it('rejects missing and malformed headers', () => {
    expect(verifyWebhook(secret, undefined, body)).toEqual({ ok: false, reason: 'missing_header' });
    for (const header of ['v1=abc', `t=${t}`, `t=soon,v1=${'a'.repeat(64)}`, 'garbage', `t=${t},v1=xyz`]) {
      expect(verifyWebhook(secret, header, body, { now: at(t) })).toEqual({
        ok: false,
        reason: 'malformed_header',
      });
    }
  });

  it('accepts any one of several v1 signatures (a rotation) and ignores unknown schemes', () => {
    const good = signWebhook(secret, t, body).split(',v1=')[1];
    const header = `t=${t},v0=old,v1=${'0'.repeat(64)},v1=${good}`;
    expect(verifyWebhook(secret, header, body, { now: at(t) }).ok).toBe(true);
  });

  it('generates distinct secrets', () => {
    const a = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(generateWebhookSecret()).not.toBe(a);
  });
});

describe('the retry schedule', () => {
  const policy = { ...defaultRetryPolicy, jitter: 0 };

  it('doubles from the initial delay up to the cap', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, policy))).toEqual([10_000, 20_000, 40_000, 80_000]);
    expect(retryDelayMs(20, policy)).toBe(policy.maxDelayMs);
    expect(retryDelayMs(1000, policy)).toBe(policy.maxDelayMs);
  });

  it('spreads each delay by the jitter, either way', () => {
    const jittered = { ...policy, jitter: 0.2 };
    expect(retryDelayMs(1, jittered, 0)).toBe(8000);
    expect(retryDelayMs(1, jittered, 0.5)).toBe(10_000);
    expect(retryDelayMs(1, jittered, 0.999999)).toBeLessThanOrEqual(12_000);
  });

  it('gives up when the next attempt would start past the maximum age', () => {
    const received = new Date('2026-01-01T00:00:00Z');
    const shortly = new Date(received.getTime() + 60_000);
    expect(nextAttemptAt(1, received, shortly, policy)).toEqual(new Date(shortly.getTime() + 10_000));
    const late = new Date(received.getTime() + policy.maxAgeMs - 5_000);
    expect(nextAttemptAt(1, received, late, policy)).toBeNull();
  });
});
