/**
 * Meters: what an event type adds up to. A meter reads its value and its group-by properties
 * from the event's data by JSONPath and aggregates per subject (the customer), minute and
 * group; queries roll the minutes up into the windows asked for.
 */
import type { config } from '@allot/contracts';
import { compileJsonPath, type PathStep, readPath } from './jsonpath.ts';

export type Aggregation = (typeof config.meterAggregations)[number];

export interface Meter {
  slug: string;
  /** The configuration version of its definition: a redefined meter starts counting afresh. */
  version: number;
  eventType: string;
  aggregation: Aggregation;
  valueProperty: string | null;
  value: PathStep[] | null;
  groupBy: { name: string; path: string; steps: PathStep[] }[];
}

export function compileMeter(slug: string, version: number, body: config.MeterBody): Meter {
  return {
    slug,
    version,
    eventType: body.eventType,
    aggregation: body.aggregation,
    valueProperty: body.valueProperty ?? null,
    value: body.valueProperty ? compileJsonPath(body.valueProperty) : null,
    groupBy: Object.entries(body.groupBy ?? {}).map(([name, path]) => ({
      name,
      path,
      steps: compileJsonPath(path),
    })),
  };
}

/** What one event adds to one meter. */
export interface Reading {
  /** The value as exact decimal text (UNIQUE_COUNT: any text); '1' for COUNT. */
  value: string;
  /** Group-by values, null where the event has none. */
  groups: Record<string, string | null>;
  /** The groups, canonical: the aggregate row's key. */
  groupKey: string;
}

const NUMERIC = /^-?\d{1,30}(\.\d{1,20})?([eE][+-]?\d{1,3})?$/;
const MAX_GROUP_VALUE = 256;

/** Reads an event for a meter; a string says why it cannot count (no or no numeric value). */
export function readMeter(meter: Meter, data: unknown): Reading | string {
  let value = '1';
  if (meter.value) {
    const raw = readPath(data, meter.value);
    if (raw === undefined || raw === null)
      return `data: ${meter.valueProperty} is missing (meter ${meter.slug})`;
    if (meter.aggregation === 'UNIQUE_COUNT') {
      if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
        return `data: ${meter.valueProperty} must be a string or a number (meter ${meter.slug})`;
      }
      value = String(raw);
    } else if (typeof raw === 'number') {
      if (!Number.isFinite(raw))
        return `data: ${meter.valueProperty} must be a finite number (meter ${meter.slug})`;
      value = String(raw);
    } else if (typeof raw === 'string' && NUMERIC.test(raw)) {
      value = raw;
    } else {
      return `data: ${meter.valueProperty} must be a number (meter ${meter.slug})`;
    }
  }
  const groups: Record<string, string | null> = {};
  const key: (string | null)[] = [];
  for (const g of meter.groupBy) {
    const raw = readPath(data, g.steps);
    const text =
      typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean'
        ? String(raw).slice(0, MAX_GROUP_VALUE)
        : null;
    groups[g.name] = text;
    key.push(text);
  }
  return { value, groups, groupKey: key.length === 0 ? '' : JSON.stringify(key) };
}

export function meterNames(meter: Meter): string[] {
  return meter.groupBy.map((g) => g.name);
}
