/**
 * The kit's HTTP app (`createApp`) with the same `POST /echo` as the bare baseline, as a
 * service would run it: request logging at info, API-key auth, metrics, request ids.
 * The key comes from BENCH_API_KEY; logs go to stdout, which the parent discards.
 */
import { createApp, StaticApiKeyStore } from '@allot/kit';
import { announceListening } from '../lib/server.ts';

const key = process.env.BENCH_API_KEY;
if (!key) throw new Error('BENCH_API_KEY is required');

const app = await createApp({
  service: 'bench',
  logLevel: 'info',
  apiKeys: new StaticApiKeyStore([
    { key, principal: { keyId: 'bench', tenant: 'bench', scopes: ['ingest'] } },
  ]),
});
app.post('/echo', { config: { auth: 'ingest' } }, async (request) => request.body);
await app.listen({ host: '127.0.0.1', port: 0 });
announceListening(app.server, () => app.close());
