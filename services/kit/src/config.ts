import { z } from 'zod';

/** Thrown when the environment does not describe a runnable process. Its message is one line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Parses the environment against `schema`, failing fast with one line that names every
 * bad variable: `invalid configuration: REDIS_URL: expected a redis:// or rediss:// URL`.
 */
export function loadConfig<S extends z.ZodType>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): z.output<S> {
  // Empty strings mean "unset", as in most deployment tooling.
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = schema.safeParse(cleaned);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const name = issue.path.map(String).join('.') || 'environment';
    const missing = issue.code === 'invalid_type' && !(String(issue.path[0]) in cleaned);
    const message = missing ? 'is required' : issue.message;
    return `${name}: ${message}`;
  });
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}

/** A URL variable restricted to some protocols; the value never appears in the message (it may hold a password). */
export function urlVariable(protocols: readonly string[], label: string) {
  return z.string().refine(
    (value) => {
      if (!URL.canParse(value)) return false;
      const url = new URL(value);
      return protocols.includes(url.protocol) && url.hostname !== '';
    },
    { message: `expected a ${label} URL (${protocols.map((p) => `${p}//`).join(' or ')})` },
  );
}

/** One URL, or several separated by commas (the servers of a NATS cluster). */
export function urlListVariable(protocols: readonly string[], label: string) {
  const one = urlVariable(protocols, label);
  return z.string().refine((value) => value.split(',').every((part) => one.safeParse(part.trim()).success), {
    message: `expected a ${label} URL (${protocols.map((p) => `${p}//`).join(' or ')}), or several separated by commas`,
  });
}

export const envBoolean = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

/** Variables every Allot process understands. Services extend this object. */
export const baseEnv = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().default('0.0.0.0'),
  PORT: z.coerce.number({ message: 'expected a port number' }).int().min(0).max(65535).default(8080),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  DATABASE_URL: urlVariable(['postgres:', 'postgresql:'], 'PostgreSQL').optional(),
  REDIS_URL: urlVariable(['redis:', 'rediss:'], 'Redis').optional(),
  /** REDIS_URL is a node (or the configuration endpoint) of a Redis Cluster. */
  REDIS_CLUSTER: envBoolean.default(false),
  /** PEM of the CA behind a rediss:// server's certificate (Memorystore's per-instance CA). */
  REDIS_TLS_CA: z.string().optional(),
  NATS_URL: urlListVariable(['nats:', 'tls:', 'ws:', 'wss:'], 'NATS').optional(),
  /** Replicas of every stream and bucket: 3 on a JetStream cluster. */
  NATS_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  ALLOT_API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
});
export type BaseEnv = z.output<typeof baseEnv>;
