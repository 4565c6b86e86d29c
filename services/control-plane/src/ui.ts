/**
 * The web UI at `/`: the Vite build of ../ui, served as static files. A checkout has no build
 * yet, so the first start builds it (a few seconds; the log says so) and later starts reuse
 * it, unless its sources are newer. A bundle carries the build alone.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AllotApp } from '@allot/kit';
import fastifyStatic from '@fastify/static';

export const UI_ROOT = fileURLToPath(new URL('../ui', import.meta.url));
const DIST = join(UI_ROOT, 'dist');

function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

/** Builds the UI when there is no build, or its sources changed since. */
export async function buildUiIfNeeded(log?: { info(obj: object, msg: string): void }): Promise<void> {
  const index = join(DIST, 'index.html');
  // A bundle (the container image) ships the build without its sources.
  if (!existsSync(join(UI_ROOT, 'src'))) {
    if (existsSync(index)) return;
    throw new Error(`the web UI has neither a build nor sources under ${UI_ROOT}`);
  }
  const sources = Math.max(newest(join(UI_ROOT, 'src')), statSync(join(UI_ROOT, 'index.html')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  log?.info({ root: UI_ROOT }, 'building the web UI (first start only)');
  const { build } = await import('vite');
  await build({ configFile: join(UI_ROOT, 'vite.config.ts'), logLevel: 'warn' });
}

/** Serves the built UI at `/` (API routes keep their paths). */
export async function serveUi(app: AllotApp, log?: { info(obj: object, msg: string): void }): Promise<void> {
  await buildUiIfNeeded(log);
  await app.register(async (scope) => {
    // The page itself is public; everything it shows comes from the API with the user's key.
    scope.addHook('onRoute', (route) => {
      route.config = { ...(route.config as object), auth: 'public' } as NonNullable<typeof route.config>;
    });
    await scope.register(fastifyStatic, { root: DIST, prefix: '/', wildcard: false, index: ['index.html'] });
  });
}
