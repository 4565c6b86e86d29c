import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  LogController,
  type RawServerDefault,
} from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { type ApiKeyStore, authenticate, authPlugin } from './auth.ts';
import { installErrorHandling } from './errors.ts';
import { healthPlugin, type ReadinessCheck } from './health.ts';
import { loggerOptions } from './logger.ts';
import { metricsPlugin } from './metrics.ts';

/** The fastify instance every Allot service builds on: zod schemas give validation, types and OpenAPI. */
export type AllotApp = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>;

export interface AppOptions {
  /** Service name, in logs and metrics. */
  service: string;
  version?: string;
  /** `false` silences logs (tests); otherwise a pino level. */
  logLevel?: string | false;
  apiKeys: ApiKeyStore;
  readiness?: readonly ReadinessCheck[];
  /** Largest accepted body in bytes. */
  bodyLimit?: number;
}

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Builds the app shell of every service: logging with request ids, one error handler,
 * health and readiness, metrics, API-key auth and the OpenAPI document. The service's own
 * routes are registered on the result as a plugin; `serve` runs it.
 */
export async function createApp(opts: AppOptions): Promise<AllotApp> {
  const app = Fastify({
    logger:
      opts.logLevel === false
        ? false
        : loggerOptions({ service: opts.service, level: opts.logLevel ?? 'info' }),
    bodyLimit: opts.bodyLimit ?? 5 * 1024 * 1024,
    // Ids are up to 128 characters; longer ones must reach validation and get a 400 naming the field.
    routerOptions: { maxParamLength: 512 },
    // A caller's request id is kept when it is well formed, so one id follows a request across services.
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && requestIdPattern.test(given) ? given : randomUUID();
    },
    // One line per request, written in onResponse below, instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
      },
      'request',
    );
  });

  await app.register(swagger, {
    openapi: {
      info: { title: `Allot ${opts.service}`, version: opts.version ?? '0.1.0' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(authPlugin, { keys: opts.apiKeys });
  await app.register(metricsPlugin, { service: opts.service });
  await app.register(healthPlugin, { checks: opts.readiness ?? [] });
  // Every service tells a client which key it holds (whatever its scopes): the MCP servers ask.
  app.get(
    '/v1/whoami',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['keys'],
        summary: 'The key this request carries: its tenant and scopes',
        response: { 200: z.object({ keyId: z.string(), tenant: z.string(), scopes: z.array(z.string()) }) },
      },
    },
    async (request) => {
      const { principal } = await authenticate(opts.apiKeys, request);
      return { keyId: principal.keyId, tenant: principal.tenant, scopes: [...principal.scopes] };
    },
  );
  app.get('/openapi.json', { config: { auth: 'public' }, schema: { hide: true } }, async () => app.swagger());
  // Readable docs of the same document at /docs (public, like the document itself).
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route) => {
      route.config = { ...(route.config as object), auth: 'public' } as NonNullable<typeof route.config>;
    });
    await scope.register(swaggerUi, { routePrefix: '/docs' });
  });
  return app;
}
