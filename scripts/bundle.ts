/**
 * `npm run bundle -- [service ...] [--out dist/bundles]`: each service as a self-contained
 * directory, what its container image holds and nothing else: its processes as ES modules
 * (`server.mjs`, `worker.mjs`, `uplink.mjs`, `migrate.mjs`), the files they read at run time
 * (migrations, the web UI's build) under `assets/`, and exactly the npm packages they load under
 * `node_modules/` (traced file by file from this checkout's lock, so nothing is downloaded).
 * It runs with `node server.mjs` from any directory, with only Node.js installed.
 *
 * Our workspace packages (`@allot/*`) export TypeScript source; esbuild compiles them into the
 * bundle. A module that finds a file beside its source, `new URL('../migrations',
 * import.meta.url)`, is rewritten to find the copy under `assets/`.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeFileTrace } from '@vercel/nft';
import { build, type Plugin } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');

interface ServiceBundle {
  /** Output file → entry source (repo-relative), or inline module source for a wrapper. */
  entries: Record<string, string | { contents: string }>;
  /** Before bundling: produce files the assets need (the UI build). */
  prepare?: () => Promise<void>;
}

const MIGRATE = 'services/allot/src/migrate-main.ts';

export const SERVICES: Record<string, ServiceBundle> = {
  gate: { entries: { 'server.mjs': 'services/gate/src/server.ts', 'migrate.mjs': MIGRATE } },
  credits: {
    entries: {
      'server.mjs': 'services/credits/src/server.ts',
      'worker.mjs': 'services/credits/src/worker/main.ts',
      'migrate.mjs': MIGRATE,
    },
  },
  metering: {
    entries: {
      'server.mjs': 'services/metering/src/server.ts',
      'worker.mjs': 'services/metering/src/worker/main.ts',
      'migrate.mjs': MIGRATE,
    },
  },
  governance: { entries: { 'server.mjs': 'services/governance/src/server.ts', 'migrate.mjs': MIGRATE } },
  'control-plane': {
    entries: {
      'server.mjs': 'services/control-plane/src/server.ts',
      // The control plane's own schemas, whatever ALLOT_PLANE the environment carries.
      'migrate.mjs': {
        contents: `process.env.ALLOT_PLANE = 'control-plane';\nawait import('./${MIGRATE}');\n`,
      },
    },
    prepare: async () => {
      const { buildUiIfNeeded } = await import('../services/control-plane/src/ui.ts');
      await buildUiIfNeeded();
    },
  },
  mcp: { entries: { 'server.mjs': 'services/mcp/src/server.ts' } },
  uplink: { entries: { 'uplink.mjs': 'services/allot/src/uplink-main.ts', 'migrate.mjs': MIGRATE } },
};

/** What of a directory a bundle needs at run time; default all of it. */
const ASSET_FILTERS: Record<string, (path: string) => boolean> = {
  // The UI's build only: its sources and tooling stay behind.
  'services/control-plane/ui': (path) => path === '' || path === 'dist' || path.startsWith('dist/'),
};

/** Packages a bundle imports only on a path it never takes (building the UI from source). */
const NEVER_LOADED = ['vite', '@vitejs/plugin-react'];

const ASSET_REFERENCE = /new URL\((['"])(\.{1,2}\/[^'"]*)\1,\s*import\.meta\.url\)/g;

/** Rewrites asset references of workspace sources to `./assets/<repo path>` and copies them there. */
function relocateAssets(outDir: string, copied: Set<string>): Plugin {
  return {
    name: 'allot-assets',
    setup(b) {
      b.onLoad({ filter: /\/services\/.*\.ts$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        const contents = source.replace(ASSET_REFERENCE, (_match, _quote, ref: string) => {
          const target = resolve(dirname(args.path), ref);
          const repoPath = relative(ROOT, target);
          if (!copied.has(repoPath)) {
            copied.add(repoPath);
            const keep = ASSET_FILTERS[repoPath];
            cpSync(target, join(outDir, 'assets', repoPath), {
              recursive: true,
              ...(keep ? { filter: (from: string) => keep(relative(target, from)) } : {}),
            });
          }
          return `new URL('./assets/${repoPath}', import.meta.url)`;
        });
        return { contents, loader: 'ts' };
      });
    },
  };
}

/** npm packages stay packages (traced below); workspace packages are compiled in. */
const externalPackages: Plugin = {
  name: 'allot-externals',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path.startsWith('@allot/') || args.path.startsWith('node:') ? undefined : { external: true },
    );
  },
};

export interface BundleResult {
  service: string;
  dir: string;
  files: number;
  bytes: number;
}

function sizeOf(paths: Iterable<string>, base: string): number {
  let bytes = 0;
  for (const path of paths) {
    const full = join(base, path);
    if (existsSync(full) && statSync(full).isFile()) bytes += statSync(full).size;
  }
  return bytes;
}

export async function bundleService(service: string, outRoot: string): Promise<BundleResult> {
  const spec = SERVICES[service];
  if (!spec) throw new Error(`unknown service '${service}' (one of ${Object.keys(SERVICES).join(', ')})`);
  const finalDir = join(outRoot, service);
  // Built inside the checkout, whatever `outRoot` is: the trace resolves packages the way Node
  // does, from the modules' own directory up to this checkout's node_modules.
  const dir = join(ROOT, 'dist', '.staging', `${service}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await spec.prepare?.();

  const copied = new Set<string>();
  for (const [out, entry] of Object.entries(spec.entries)) {
    await build({
      ...(typeof entry === 'string'
        ? { entryPoints: [join(ROOT, entry)] }
        : { stdin: { contents: entry.contents, resolveDir: ROOT, sourcefile: out, loader: 'ts' } }),
      outfile: join(dir, out),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      sourcemap: 'linked',
      legalComments: 'none',
      logLevel: 'warning',
      plugins: [externalPackages, relocateAssets(dir, copied)],
    });
  }
  // `node /app` runs the service's main process; other processes are named (`node worker.mjs`).
  const main = Object.keys(spec.entries).find((out) => out !== 'migrate.mjs' && out !== 'worker.mjs');
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: `@allot/${service}-bundle`, private: true, type: 'module', main }, null, 2)}\n`,
  );

  // The npm packages the modules load, file by file, copied with their paths under node_modules.
  const outputs = Object.keys(spec.entries).map((out) => join(dir, out));
  const trace = await nodeFileTrace(outputs, {
    base: ROOT,
    ignore: (path) => NEVER_LOADED.some((name) => path.startsWith(`node_modules/${name}/`)),
  });
  let files = 0;
  for (const path of trace.fileList) {
    if (!path.startsWith('node_modules/')) continue;
    const from = join(ROOT, path);
    if (!statSync(from).isFile()) continue;
    const to = join(dir, path);
    mkdirSync(dirname(to), { recursive: true });
    cpSync(from, to, { dereference: true });
    files++;
  }
  const packages = [...trace.fileList].filter((p) => p.startsWith('node_modules/'));
  rmSync(finalDir, { recursive: true, force: true });
  mkdirSync(dirname(finalDir), { recursive: true });
  cpSync(dir, finalDir, { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  return { service, dir: finalDir, files, bytes: sizeOf(packages, ROOT) };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { out: { type: 'string', default: 'dist/bundles' } },
  });
  const services = positionals.length > 0 ? positionals : Object.keys(SERVICES);
  const unknown = services.filter((s) => !(s in SERVICES));
  if (unknown.length > 0) {
    process.stderr.write(
      `bundle: unknown service ${unknown.join(', ')} (one of ${Object.keys(SERVICES).join(', ')})\n`,
    );
    process.exit(2);
  }
  const outRoot = resolve(values.out);
  for (const [i, service] of services.entries()) {
    const started = Date.now();
    process.stderr.write(`[${i + 1}/${services.length}] ${service} ...`);
    const result = await bundleService(service, outRoot);
    process.stderr.write(
      ` ${relative(process.cwd(), result.dir)}: ${result.files} package files, ${(result.bytes / 1e6).toFixed(1)} MB, ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) await main();
