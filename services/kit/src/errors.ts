import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';

/**
 * The closed set of error codes the public API returns, each with its one HTTP status.
 * A route never invents a status: it throws `new AppError(code, message)`.
 */
export const errorStatus = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  idempotency_conflict: 409,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  requestId: string;
}

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = errorStatus[code];
  }
}

/** fastify's own client errors (bad JSON, wrong content type, body too large) keyed by their code. */
const fastifyClientErrors: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_request',
  FST_ERR_VALIDATION: 'invalid_request',
};

interface ValidationIssue {
  instancePath?: string;
  message?: string;
}

/** `body.amount: Invalid input: expected string`: every issue (up to five), each naming its field. */
function describeValidation(context: string | undefined, issues: readonly ValidationIssue[]): string {
  const parts = issues.slice(0, 5).map((issue) => {
    const path = (issue.instancePath ?? '').split('/').filter(Boolean);
    return `${[context ?? 'request', ...path].join('.')}: ${issue.message ?? 'invalid'}`;
  });
  return parts.join('; ');
}

/** Maps any thrown value to the public error body. 5xx details stay in the log. */
export function toErrorResponse(
  error: unknown,
  requestId: string,
): { status: number; body: ErrorBody; headers: Record<string, string> } {
  if (error instanceof AppError) {
    return {
      status: error.status,
      body: { code: error.code, message: error.message, requestId },
      headers: error.headers,
    };
  }
  if (hasZodFastifySchemaValidationErrors(error)) {
    const message = describeValidation(
      error.validationContext,
      error.validation as readonly ValidationIssue[],
    );
    return { status: 400, body: { code: 'invalid_request', message, requestId }, headers: {} };
  }
  if (isResponseSerializationError(error)) {
    return internal(requestId);
  }
  const fastifyError = error as Partial<FastifyError>;
  const mapped = fastifyError.code ? fastifyClientErrors[fastifyError.code] : undefined;
  if (mapped) {
    return {
      status: errorStatus[mapped],
      body: { code: mapped, message: fastifyError.message ?? mapped, requestId },
      headers: {},
    };
  }
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    const code: ErrorCode =
      status === 404 ? 'not_found' : status === 413 ? 'payload_too_large' : 'invalid_request';
    return {
      status: errorStatus[code],
      body: { code, message: fastifyError.message ?? code, requestId },
      headers: {},
    };
  }
  return internal(requestId);
}

function internal(requestId: string) {
  return {
    status: 500,
    body: {
      code: 'internal' as const,
      message: 'internal error; quote the requestId to the operator',
      requestId,
    },
    headers: {},
  };
}

/** The one error handler and not-found handler of every Allot app. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body, headers } = toErrorResponse(error, request.id);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: body.code, message: body.message }, 'request rejected');
    return reply.code(status).headers(headers).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = {
      code: 'not_found',
      message: `no route ${request.method} ${request.url.split('?')[0]}`,
      requestId: request.id,
    };
    return reply.code(404).send(body);
  });
}
