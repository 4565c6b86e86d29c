import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { baseEnv, ConfigError, loadConfig } from '../src/config.ts';

describe('loadConfig', () => {
  it('applies defaults to an empty environment', () => {
    const env = loadConfig(baseEnv, {});
    expect(env.PORT).toBe(8080);
    expect(env.REDIS_URL).toBeUndefined();
  });

  it('names the variable of a malformed URL in one line, without echoing its value', () => {
    const run = () => loadConfig(baseEnv, { REDIS_URL: 'localhost:6379:secretpw' });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(
      /^invalid configuration: REDIS_URL: expected a Redis URL \(redis:\/\/ or rediss:\/\/\)$/,
    );
    expect(run).not.toThrow(/secretpw/);
  });

  it('rejects a URL of the wrong protocol', () => {
    expect(() => loadConfig(baseEnv, { DATABASE_URL: 'mysql://db/x' })).toThrow(
      /DATABASE_URL: expected a PostgreSQL URL/,
    );
  });

  it('reports a missing required variable as required', () => {
    const schema = z.object({ SIGNING_SECRET: z.string() });
    expect(() => loadConfig(schema, {})).toThrow('invalid configuration: SIGNING_SECRET: is required');
  });

  it('lists every bad variable at once', () => {
    expect(() => loadConfig(baseEnv, { PORT: 'eighty', NATS_URL: 'http://x' })).toThrow(
      /PORT: .*; NATS_URL: /,
    );
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig(baseEnv, { REDIS_URL: '' }).REDIS_URL).toBeUndefined();
  });
});
