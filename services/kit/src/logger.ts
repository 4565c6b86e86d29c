import type { LoggerOptions } from 'pino';

/** Paths whose values never reach a log line. */
export const redactedPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'headers.authorization',
  '*.apiKey',
  '*.password',
  '*.secret',
  '*.token',
  'apiKey',
  'password',
  'secret',
];

/** pino options shared by every service: JSON lines, ISO times, secrets redacted. */
export function loggerOptions(opts: { service: string; level: string }): LoggerOptions {
  return {
    level: opts.level,
    base: { service: opts.service },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    redact: { paths: redactedPaths, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  };
}

/** `postgres://user:secret@host/db` -> `postgres://user:***@host/db`, for start-up messages. */
export function redactUrl(value: string): string {
  if (!URL.canParse(value)) return '[unparseable url]';
  const url = new URL(value);
  if (url.password) url.password = '***';
  return url.toString();
}
