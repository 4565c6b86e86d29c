import { z } from 'zod';

/** Caller-chosen ids: 1-128 of [A-Za-z0-9._:-]. */
export const id = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'expected 1-128 characters of A-Z a-z 0-9 . _ : -')
  .describe('an id: 1-128 characters of A-Z a-z 0-9 . _ : -');

export const idempotencyKey = z
  .string()
  .min(1)
  .max(256)
  .describe('reuse the same key when retrying; the retry applies nothing twice');

const decimal = /^-?\d{1,16}(\.\d{1,6})?$/;

/**
 * An exact amount: a JSON number or a decimal string, at most 6 fractional digits. It comes out
 * as the canonical decimal string; callers turn it into micro-units. No binary float survives:
 * a JSON number is read back through its shortest decimal text.
 */
export const amount = z
  .codec(z.union([z.string(), z.number()]), z.string(), {
    decode: (value, payload) => {
      const text = typeof value === 'number' ? String(value) : value.trim();
      if (!decimal.test(text)) {
        payload.issues.push({
          code: 'custom',
          message: 'expected a decimal with at most 6 fractional digits, like 12.5 or "0.000001"',
          input: value,
        });
      }
      return text;
    },
    // Answers carry the canonical text as it is: a codec (not a transform) so responses can
    // be encoded with the same schema.
    encode: (text) => text,
  })
  .describe('an exact decimal: a number or a string with at most 6 fractional digits');

export const positiveAmount = amount.refine(
  (text) => !text.startsWith('-') && /[1-9]/.test(text),
  'must be greater than 0',
);
export const nonNegativeAmount = amount.refine((text) => !text.startsWith('-'), 'must not be negative');

export const timestamp = z.iso.datetime({
  offset: true,
  message: 'expected an RFC 3339 time, like 2026-01-31T12:00:00Z',
});

export const metadata = z
  .record(z.string().max(128), z.unknown())
  .describe('free-form key-value data kept with the record');
