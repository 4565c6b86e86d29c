import closeWithGrace from 'close-with-grace';
import { type AllotApp, createApp } from './app.ts';
import { StaticApiKeyStore } from './auth.ts';
import type { ReadinessCheck } from './health.ts';

export interface ServeOptions {
  host: string;
  port: number;
  /** How long in-flight requests get to finish on SIGTERM/SIGINT before the process exits anyway. */
  graceMs: number;
}

/**
 * Listens and installs graceful shutdown: on a signal /readyz turns 503, new connections
 * are refused, in-flight requests finish, `onClose` hooks release resources.
 */
export async function serve(app: AllotApp, opts: ServeOptions): Promise<string> {
  closeWithGrace({ delay: opts.graceMs }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an uncaught error');
    else app.log.info({ signal }, 'shutting down');
    await app.close();
  });
  return app.listen({ host: opts.host, port: opts.port });
}

/**
 * Runs a process entry; a start-up failure (bad configuration, unreachable store) ends the
 * process with one line a person can act on, `<name>: <message>`, not a stack trace.
 */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${name}: ${message}\n`);
    process.exit(1);
  });
}

/**
 * A background process (a stream worker) until SIGTERM or SIGINT: then `stop` finishes what
 * is in hand and the process exits 0, or 1 if that takes longer than `graceMs` (what was not
 * acknowledged is redelivered to the next worker either way).
 */
export function stopOnSignal(
  name: string,
  options: {
    graceMs: number;
    log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
    stop: () => Promise<object | undefined>;
  },
): void {
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    options.log.info({ signal }, `${name} stopping`);
    setTimeout(() => {
      options.log.warn({ graceMs: options.graceMs }, `${name} did not stop in time`);
      process.exit(1);
    }, options.graceMs).unref();
    void (async () => {
      const stats = await options.stop();
      options.log.info(stats ?? {}, `${name} stopped`);
      process.exit(0);
    })();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

/**
 * Health, readiness and metrics for a process that serves no API (a stream worker), so an
 * orchestrator can probe it like any service: an app to hand its metrics registry to the
 * worker, listening once the caller says so (after its signal handlers are in place). Only
 * when `PORT` is set in the environment (the images set it): several workers on one machine,
 * as in tests, need no port each.
 */
export async function probesApp(options: {
  service: string;
  logLevel: string;
  readiness: readonly ReadinessCheck[];
  env?: NodeJS.ProcessEnv;
}): Promise<AllotApp | undefined> {
  if (!(options.env ?? process.env).PORT) return undefined;
  return createApp({
    service: options.service,
    logLevel: options.logLevel,
    apiKeys: new StaticApiKeyStore([]),
    readiness: options.readiness,
  });
}
