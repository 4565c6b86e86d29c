/** Worker processes a suite starts beside its servers, and waiting for their work to settle. */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopChild } from './server.ts';

/** `entry` under tsx in a child process (stderr inherited), killed if this process exits. */
export function spawnWorker(entry: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), entry], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, ...env },
  });
  process.once('exit', () => child.kill('SIGKILL'));
  return child;
}

/** SIGTERM, and SIGKILL if it has not finished its batch within 10 s. */
export function stopWorker(child: ChildProcess): Promise<void> {
  return stopChild(child, 10_000);
}

/** Waits until the applied count stops moving for 2 s (or `timeoutMs`): the count, and when it last moved. */
export async function drain(
  applied: () => Promise<number>,
  timeoutMs: number,
): Promise<{ count: number; at: number }> {
  const deadline = Date.now() + timeoutMs;
  let last = await applied();
  let at = performance.now();
  for (;;) {
    await sleep(250);
    const now = await applied();
    if (now !== last) {
      last = now;
      at = performance.now();
    } else if (performance.now() - at > 2000 || Date.now() > deadline) {
      return { count: now, at };
    }
  }
}

let sequence = 0;

/**
 * A batch of `size` CloudEvents of type `llm` (ids unique within this process), spread over
 * 500 customers, with tokens and a model to group by: what the metering suites send.
 */
export function eventBatch(size: number, at = Date.now()) {
  const run = sequence++;
  const time = new Date(at).toISOString();
  return Array.from({ length: size }, (_, i) => ({
    specversion: '1.0',
    id: `b${run}-${i}`,
    source: 'bench',
    type: 'llm',
    subject: `c${(run * 7 + i) % 500}`,
    time,
    data: { tokens: (i % 100) + 1, model: i % 3 === 0 ? 'gpt-5' : 'claude' },
  }));
}
