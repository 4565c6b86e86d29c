import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';

/** One dependency /readyz waits on, each with its own deadline. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
  timeoutMs?: number;
}

const checkResult = z.object({
  name: z.string(),
  status: z.enum(['ok', 'failed']),
  latencyMs: z.number(),
  error: z.string().optional(),
});

const readyBody = z.object({
  status: z.enum(['ready', 'not_ready', 'draining']),
  checks: z.array(checkResult),
});

async function runCheck({
  name,
  check,
  timeoutMs = 2000,
}: ReadinessCheck): Promise<z.infer<typeof checkResult>> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([check(), deadline]);
    return { name, status: 'ok', latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { name, status: 'failed', latencyMs: Math.round(performance.now() - started), error: message };
  } finally {
    clearTimeout(timer);
  }
}

/** `/healthz`: the process answers. `/readyz`: every critical dependency answers in time, and we are not draining. */
export const healthPlugin = fp(
  async (app: FastifyInstance, opts: { checks: readonly ReadinessCheck[] }) => {
    let draining = false;
    app.addHook('preClose', async () => {
      draining = true;
    });
    app.get(
      '/healthz',
      {
        config: { auth: 'public' },
        schema: { hide: true, response: { 200: z.object({ status: z.literal('ok') }) } },
      },
      async () => ({ status: 'ok' as const }),
    );
    app.get(
      '/readyz',
      { config: { auth: 'public' }, schema: { hide: true, response: { 200: readyBody, 503: readyBody } } },
      async (_request, reply) => {
        const checks = await Promise.all(opts.checks.map(runCheck));
        const failed = checks.some((c) => c.status === 'failed');
        const status = draining ? 'draining' : failed ? 'not_ready' : 'ready';
        return reply.code(status === 'ready' ? 200 : 503).send({ status, checks });
      },
    );
  },
  { name: 'allot-health', fastify: '5.x' },
);
