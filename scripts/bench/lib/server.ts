/**
 * An HTTP server under test runs in its own child process, so the load generator and the
 * server do not share an event loop. The child entry calls `announceListening`; the parent
 * calls `startServer` and later `stop`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Server } from 'node:net';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';
import type { Op } from './load.ts';

const PORT_LINE = 'BENCH_LISTENING_PORT=';
const STDERR_TAIL_CHARS = 4_000;

export interface ServerUnderTest {
  origin: string;
  stop(): Promise<void>;
}

/** Starts `entry` (a TypeScript file) under tsx and resolves once it prints its port. */
export async function startServer(
  entry: string,
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ServerUnderTest> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), entry], {
    // The child exits when its stdin closes, so it never outlives this process.
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL_CHARS);
  });
  const failure = (why: string) => new Error(`${entry}: ${why}${stderr ? `\n${stderr.trimEnd()}` : ''}`);

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(failure(`did not print its port within ${options.timeoutMs ?? 20_000} ms`));
    }, options.timeoutMs ?? 20_000);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (!line.startsWith(PORT_LINE)) return;
      clearTimeout(timer);
      // From here on stdout (the server's logs) is read and discarded, so it never blocks on a full pipe.
      lines.close();
      child.stdout?.resume();
      resolve(Number(line.slice(PORT_LINE.length)));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(failure(`exited before listening (${signal ?? `code ${code}`})`));
    });
  });

  return {
    origin: `http://127.0.0.1:${port}`,
    async stop() {
      process.off('exit', killOnExit);
      await stopChild(child);
    },
  };
}

/** SIGTERM, and SIGKILL if it has not exited within `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * In a child entry, once the server listens: tells `startServer` the port, and closes the
 * server when the parent stops it (SIGTERM) or goes away (stdin closes).
 */
export function announceListening(server: Server, close: () => Promise<unknown>): void {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server is not listening on TCP');
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    void close().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.on('end', stop).resume();
  process.stdout.write(`${PORT_LINE}${address.port}\n`);
}

/**
 * A keep-alive HTTP client posting a JSON body to `origin + path`; each op is one request. A
 * function as `body` gives each request its own (encoded once per call).
 */
export function jsonPoster(
  origin: string,
  path: string,
  body: unknown,
  extraHeaders: Record<string, string> = {},
): { post: Op; close(): Promise<void> } {
  // Connections open lazily, at most one per concurrent request.
  const pool = new Pool(origin, { connections: 256, pipelining: 1 });
  const fixed = typeof body === 'function' ? null : JSON.stringify(body);
  const headers = { 'content-type': 'application/json', ...extraHeaders };
  return {
    async post() {
      const payload = fixed ?? JSON.stringify((body as () => unknown)());
      const response = await pool.request({ method: 'POST', path, headers, body: payload });
      await response.body.text();
      if (response.statusCode !== 200) throw new Error(`POST ${path}: HTTP ${response.statusCode}`);
    },
    close: () => pool.close(),
  };
}
