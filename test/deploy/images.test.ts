/**
 * The container images as the Dockerfile describes them (no container engine runs here to
 * build them; test/deploy/bundles.int.test.ts runs what they hold): multi-stage, a runtime
 * stage that is non-root with a health check, and one bake target per bundled service.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SERVICES } from '../../scripts/bundle.ts';

const ROOT = join(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** Instructions with their continuation lines joined, comments dropped. */
function instructions(dockerfile: string): Array<{ op: string; args: string }> {
  return dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [op = '', ...rest] = line.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

describe('Dockerfile', () => {
  const all = instructions(read('Dockerfile'));
  const stages = all.filter((i) => i.op === 'FROM');
  const runtime = all.slice(all.lastIndexOf(stages.at(-1)!));

  it('builds in one stage and runs the bundle alone in another', () => {
    expect(stages.map((s) => s.args.replace(/^\$\{(\w+)\}/, '$1'))).toEqual([
      'NODE_IMAGE AS build',
      'RUNTIME_IMAGE AS runtime',
    ]);
    expect(read('Dockerfile')).toMatch(/ARG RUNTIME_IMAGE=gcr\.io\/distroless\/nodejs20-debian12:nonroot/);
    const copies = runtime.filter((i) => i.op === 'COPY');
    expect(copies).toHaveLength(1);
    expect(copies[0]!.args).toMatch(/^--from=build .*\/out\/\$\{SERVICE\} \/app$/);
    expect(all.some((i) => i.op === 'ADD')).toBe(false);
  });

  it('runs as a numeric non-root user with a health check on /healthz', () => {
    const user = runtime.find((i) => i.op === 'USER')?.args ?? '';
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    const health = runtime.find((i) => i.op === 'HEALTHCHECK')?.args ?? '';
    expect(health).toContain('/healthz');
    expect(runtime.find((i) => i.op === 'EXPOSE')?.args).toBe('8080');
    expect(runtime.find((i) => i.op === 'CMD')?.args).toBe('["/app"]');
  });

  it('keeps the build context to sources', () => {
    const ignored = read('.dockerignore').split('\n');
    for (const path of ['.git', '**/node_modules', 'dist']) expect(ignored).toContain(path);
  });
});

describe('docker-bake.hcl', () => {
  it('has one image per bundled service', () => {
    const bake = read('docker-bake.hcl');
    const targets = [...bake.matchAll(/target "([^"]+)" \{[^}]*args\s*=\s*\{ SERVICE = "([^"]+)" \}/g)].map(
      (m) => [m[1], m[2]],
    );
    expect(targets.map(([t]) => t).sort()).toEqual(Object.keys(SERVICES).sort());
    for (const [target, service] of targets) {
      expect(service).toBe(target);
      expect(bake).toContain(`"\${REGISTRY}/allot-${service}:\${TAG}"`);
    }
  });
});
