/** Worker processes a suite starts beside its servers, and waiting for their work to settle. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

/** `entry` under tsx in a child process (stderr inherited), killed if this process exits. */
export function spawnWorker(entry: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), entry], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, ...env },
  });
  process.once('exit', () => child.kill('SIGKILL'));
  return child;
}

/** SIGTERM, and SIGKILL if it has not finished within 10 s. */
export async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
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
