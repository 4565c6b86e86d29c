/** What the fuzz tests share: arbitrary JSON-ish values, and the answer every route must give them. */
import fc from 'fast-check';
import { expect } from 'vitest';

export const anything = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue(),
  fc.array(fc.string()),
);

/** A 2xx, or a 4xx with the error body naming the problem; never a 5xx. */
export function expectClientError(status: number, body: unknown): void {
  expect(status, JSON.stringify(body)).toBeLessThan(500);
  if (status >= 400) {
    expect(body).toMatchObject({
      code: expect.any(String),
      message: expect.any(String),
      requestId: expect.any(String),
    });
  }
}
