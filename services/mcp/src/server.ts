/**
 * The MCP server as a deployment of its own: Streamable HTTP at `/mcp`, each tool calling the
 * data plane's API over HTTP with the agent's own key (the gate, and credits and metering where
 * they run apart). It holds no state and needs no store.
 *
 * `ALLOT_GATE_URL=http://gate:8080 node --import tsx services/mcp/src/server.ts`
 */
import { baseEnv, createApp, loadConfig, runMain, StaticApiKeyStore, serve, urlVariable } from '@allot/kit';
import { mcpPlugin } from './app.ts';

const mcpEnv = baseEnv.extend({
  /** The gate: decisions, settle, release, entitlements, budget status, whoami. */
  ALLOT_GATE_URL: urlVariable(['http:', 'https:'], 'HTTP'),
  /** Balances, when credits runs apart from the gate. Default ALLOT_GATE_URL. */
  ALLOT_CREDITS_URL: urlVariable(['http:', 'https:'], 'HTTP').optional(),
  /** Usage events, when metering runs apart. Default ALLOT_GATE_URL. */
  ALLOT_METERING_URL: urlVariable(['http:', 'https:'], 'HTTP').optional(),
});

runMain('mcp', async () => {
  const env = loadConfig(mcpEnv);
  const gateReady = async (): Promise<void> => {
    const res = await fetch(new URL('/readyz', env.ALLOT_GATE_URL), { signal: AbortSignal.timeout(1000) });
    if (!res.ok) throw new Error(`the gate answers /readyz with HTTP ${res.status}`);
  };
  const app = await createApp({
    service: 'mcp',
    logLevel: env.LOG_LEVEL,
    // Keys are checked by the API each tool calls; this process holds none.
    apiKeys: new StaticApiKeyStore([]),
    readiness: [{ name: 'gate', check: gateReady, timeoutMs: 1500 }],
  });
  await app.register(mcpPlugin, {
    upstream: {
      gate: env.ALLOT_GATE_URL,
      credits: env.ALLOT_CREDITS_URL,
      metering: env.ALLOT_METERING_URL,
    },
  });
  await serve(app, { host: env.HOST, port: env.PORT, graceMs: env.SHUTDOWN_GRACE_MS });
});
