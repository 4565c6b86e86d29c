/**
 * The JSONPath subset meters read event data with (see `jsonPath` in the contracts): `$` then
 * member names (`.name`, `['name']`, `["name"]`) and array indexes (`[0]`). Compiled once per
 * meter into a list of steps, so reading a value costs a few property lookups per event.
 */
export type PathStep = string | number;

const STEP = /\.([A-Za-z_$][A-Za-z0-9_$-]*)|\[(\d{1,6})\]|\['([^'\\]{1,128})'\]|\["([^"\\]{1,128})"\]/y;

export class JsonPathError extends Error {
  override readonly name = 'JsonPathError';
}

export function compileJsonPath(path: string): PathStep[] {
  if (!path.startsWith('$')) throw new JsonPathError(`${path}: a JSONPath starts with $`);
  const steps: PathStep[] = [];
  STEP.lastIndex = 1;
  while (STEP.lastIndex < path.length) {
    const at = STEP.lastIndex;
    const match = STEP.exec(path);
    if (!match) throw new JsonPathError(`${path}: cannot read it from character ${at + 1}`);
    if (match[2] !== undefined) steps.push(Number(match[2]));
    else steps.push(match[1] ?? match[3] ?? match[4]!);
  }
  if (steps.length === 0) throw new JsonPathError(`${path}: names no property`);
  return steps;
}

/** The value at `steps` in `data`, or undefined when any step is missing. */
export function readPath(data: unknown, steps: readonly PathStep[]): unknown {
  let at = data;
  for (const step of steps) {
    if (at === null || typeof at !== 'object') return undefined;
    if (typeof step === 'number') {
      if (!Array.isArray(at)) return undefined;
      at = at[step];
    } else {
      if (Array.isArray(at) || !Object.hasOwn(at, step)) return undefined;
      at = (at as Record<string, unknown>)[step];
    }
  }
  return at;
}
