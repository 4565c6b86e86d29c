import { generateApiKey, loadConfig, runMain, StaticApiKeyStore, serve } from '@allot/kit';
import { openStores } from '@allot/kit/stores';
import { buildAllot } from './app.ts';
import { allotEnv } from './config.ts';
import { demoCurl, loadDemo } from './demo.ts';

/** `npm start`: every Allot service in one process, on embedded stores unless URLs say otherwise. */
async function main(): Promise<void> {
  const env = loadConfig(allotEnv);
  const apiKey = env.ALLOT_API_KEY ?? generateApiKey();
  const keys = new StaticApiKeyStore([
    { key: apiKey, principal: { keyId: 'env', tenant: env.ALLOT_TENANT, scopes: ['admin'] } },
  ]);
  const stores = await openStores(env, { dataDir: env.ALLOT_DATA_DIR, name: 'allot' });
  const app = await buildAllot(env, stores, keys);
  await serve(app, { host: env.HOST, port: env.PORT, graceMs: env.SHUTDOWN_GRACE_MS });

  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : env.PORT;
  const url = `http://localhost:${port}`;
  // The demo only on embedded stores: a real database is somebody's data.
  const embedded = stores.sql.kind === 'pglite';
  let demo = false;
  let demoProblem: string | null = null;
  if (embedded && env.ALLOT_DEMO) {
    // A demo that cannot load (a store unreachable) is a line in the banner, not a failed start.
    demo = await loadDemo(app, apiKey).catch((error: unknown) => {
      demoProblem = error instanceof Error ? error.message : String(error);
      return false;
    });
  }
  const kinds = [stores.sql.kind, stores.hot.kind, stores.bus.kind].join(', ');
  process.stdout.write(
    `${[
      '',
      `Allot is running at ${url}  (stores: ${kinds})`,
      env.ALLOT_API_KEY
        ? 'API key: from ALLOT_API_KEY'
        : `API key: ${apiKey}  (generated; set ALLOT_API_KEY to keep one)`,
      `UI:      ${url}/  (sign in with the API key)`,
      `Try:     curl -s ${url}/readyz`,
      ...(demo || (embedded && env.ALLOT_DEMO)
        ? [
            demo ? 'Demo:    loaded (a plan, customers acme and globex with credits, a team budget)' : '',
            demoProblem ? `Demo:    not loaded: ${demoProblem}` : '',
            `Decide:  ${demoCurl(url, env.ALLOT_API_KEY ? '$ALLOT_API_KEY' : apiKey)}`,
          ].filter(Boolean)
        : []),
      '',
    ].join('\n')}\n`,
  );
}

runMain('allot', main);
