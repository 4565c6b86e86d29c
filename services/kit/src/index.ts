export { type AllotApp, type AppOptions, createApp } from './app.ts';
export {
  type ApiKeyStore,
  actorOf,
  authenticate,
  bearerToken,
  generateApiKey,
  hashApiKey,
  hasScope,
  type Principal,
  type Scope,
  StaticApiKeyStore,
  scopes,
  tenantOf,
} from './auth.ts';
export {
  type BaseEnv,
  baseEnv,
  ConfigError,
  envBoolean,
  loadConfig,
  urlListVariable,
  urlVariable,
} from './config.ts';
export {
  AppError,
  type ErrorBody,
  type ErrorCode,
  errorStatus,
  installErrorHandling,
  toErrorResponse,
} from './errors.ts';
export { type CommitGroup, GroupCommit, type GroupCommitOptions } from './group-commit.ts';
export type { ReadinessCheck } from './health.ts';
export { loggerOptions, redactedPaths, redactUrl } from './logger.ts';
export { LoopSignal } from './loop-signal.ts';
export { probesApp, runMain, type ServeOptions, serve, stopOnSignal } from './server.ts';
