import { openBus } from '@allot/kit/bus';

/**
 * Keeps one stream on the shared NATS server for the whole run. NATS 2.9 removes its
 * streams directory when the last stream is deleted, and a stream created at that moment
 * fails ("mkdir .../streams: no such file or directory"); with this anchor the directory
 * never empties while tests create and delete their own streams in parallel.
 */
export async function setup(): Promise<void> {
  const bus = await openBus({
    url: process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222',
    name: 'allot-test-anchor',
  });
  try {
    await bus.ensureStream({ name: 'ALLOT_TEST_ANCHOR', subjects: ['allot-test-anchor'] });
  } finally {
    await bus.close();
  }
}
