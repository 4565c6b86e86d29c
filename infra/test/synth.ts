import { Testing } from 'cdktf';
import { expect } from 'vitest';
import type { Cloud, Plane } from '../src/config.ts';
import { buildStack } from '../src/stacks/synth.ts';

/** One stack's Terraform JSON, as `Testing.synth` renders it (metadata removed, keys sorted). */
export interface Synth {
  readonly text: string;
  readonly json: {
    resource?: Record<string, Record<string, Record<string, unknown>>>;
    data?: Record<string, Record<string, Record<string, unknown>>>;
    provider?: Record<string, Record<string, unknown>[]>;
    terraform?: Record<string, unknown>;
    variable?: Record<string, Record<string, unknown>>;
    output?: Record<string, Record<string, unknown>>;
  };
}

/** Builds the stack the CLI would build from this JSON config, and synthesizes it. */
export function synth(cloud: Cloud, plane: Plane, input: Record<string, unknown>): Synth {
  const app = Testing.app();
  const { stack } = buildStack(
    app,
    cloud,
    plane,
    cloud === 'gcp' ? { project: 'acme-prod', ...input } : input,
  );
  const text = Testing.synth(stack);
  return { text, json: JSON.parse(text) };
}

/** Every resource of one Terraform type. */
export function resources(synth: Synth, type: string): Record<string, unknown>[] {
  return Object.values(synth.json.resource?.[type] ?? {});
}

/** The single resource of a type (the test fails if there are none or several). */
export function single(synth: Synth, type: string): Record<string, unknown> {
  const found = resources(synth, type);
  expect(found, `one ${type}`).toHaveLength(1);
  return found[0] as Record<string, unknown>;
}

/** Asserts with cdktf's own matcher that some resource of `type` has (at least) these properties. */
export function expectResource(synth: Synth, type: string, properties: Record<string, unknown>): void {
  expect(
    Testing.toHaveResourceWithProperties(synth.text, type, properties),
    `${type} with ${JSON.stringify(properties)}`,
  ).toBe(true);
}

export function expectNoResource(synth: Synth, type: string): void {
  expect(Testing.toHaveResource(synth.text, type), `no ${type}`).toBe(false);
}

/** The umbrella chart's values, parsed back from the helm_release. */
export function chartValues(synth: Synth): Record<string, Record<string, unknown>> {
  const release = single(synth, 'helm_release');
  const values = release.values as string[];
  expect(values).toHaveLength(1);
  return JSON.parse(values[0] as string);
}

/** Which components the chart enables, in the chart's own terms. */
export function enabledInChart(synth: Synth): string[] {
  return Object.entries(chartValues(synth))
    .filter(([key, value]) => key !== 'nats' && key !== 'devBackends' && value.enabled === true)
    .map(([key]) => key)
    .sort();
}

/** The Kubernetes Secret's keys. */
export function secretKeys(synth: Synth): string[] {
  return Object.keys(single(synth, 'kubernetes_secret_v1').data as Record<string, string>).sort();
}

/** A Terraform interpolation as it appears in the JSON: `${expression}`. */
export function interpolation(expression: string): string {
  return `\${${expression}}`;
}
