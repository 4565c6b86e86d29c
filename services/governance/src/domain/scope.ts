/**
 * Who a request is about, and which budgets, limits and blocks that makes it subject to.
 *
 * A request names dimensions (`user: u1`, `agent: a7`, `model: gpt-5`). Those that name an
 * entity of the customer's tree bring its ancestors along: an agent's user, that user's team,
 * and so on up to the organisation, so a team budget governs every agent below the team. The
 * tree is configuration and wins over the request: an agent under team t1 counts against t1
 * even if the request says `team: t2`.
 */

export const MAX_DEPTH = 8;

export interface Entity {
  id: string;
  type: string;
  parentId: string | null;
}

/** One customer's entities by id. */
export type EntityTree = ReadonlyMap<string, Entity>;

/** The entity, then its ancestors, nearest first (at most MAX_DEPTH; a cycle stops the walk). */
export function lineage(tree: EntityTree, id: string): Entity[] {
  const out: Entity[] = [];
  let current = tree.get(id);
  while (current && out.length < MAX_DEPTH) {
    if (out.some((e) => e.id === current!.id)) break;
    out.push(current);
    current = current.parentId === null ? undefined : tree.get(current.parentId);
  }
  return out;
}

/** Why an entity cannot go where a change would put it, or null. */
export function entityPlacementProblem(tree: EntityTree, entity: Entity): string | null {
  if (entity.parentId === null) return null;
  if (entity.parentId === entity.id) return 'an entity cannot be its own parent';
  const parent = tree.get(entity.parentId);
  if (!parent) return `parent entity '${entity.parentId}' not found`;
  const above = lineage(tree, entity.parentId);
  if (above.some((e) => e.id === entity.id)) return `parent '${entity.parentId}' is below '${entity.id}'`;
  // The deepest entity that would end up below this one, counted from this one.
  const depthBelow = deepestBelow(tree, entity.id);
  if (above.length + 1 + depthBelow > MAX_DEPTH) {
    return `the tree would be deeper than ${MAX_DEPTH} levels`;
  }
  return null;
}

function deepestBelow(tree: EntityTree, id: string, seen = new Set<string>()): number {
  if (seen.has(id)) return 0;
  seen.add(id);
  let deepest = 0;
  for (const e of tree.values()) {
    if (e.parentId === id) deepest = Math.max(deepest, 1 + deepestBelow(tree, e.id, seen));
  }
  return deepest;
}

/**
 * The request's dimensions as strings, with every entity's ancestors filled in (by their
 * type: `team`, `user`...). Numbers become their decimal text.
 */
export function effectiveDimensions(
  tree: EntityTree | undefined,
  dimensions: Readonly<Record<string, string | number>>,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const key in dimensions) out.set(key, String(dimensions[key]));
  if (!tree || tree.size === 0) return out;
  for (const key in dimensions) {
    const value = String(dimensions[key]);
    const entity = tree.get(value);
    if (!entity || entity.type !== key) continue;
    for (const e of lineage(tree, value).slice(1)) out.set(e.type, e.id);
  }
  return out;
}

/** A budget's scope matches when every dimension it names is there (`*`) or equal. */
export function scopeMatches(
  scope: Readonly<Record<string, string>>,
  dims: ReadonlyMap<string, string>,
): boolean {
  for (const key in scope) {
    const want = scope[key]!;
    const have = dims.get(key);
    if (have === undefined || (want !== '*' && want !== have)) return false;
  }
  return true;
}

/** A block's scope: `customerId` is the customer; every other key a dimension, as for budgets. */
export function blockMatches(
  scope: Readonly<Record<string, string>>,
  customerId: string,
  dims: ReadonlyMap<string, string>,
): boolean {
  for (const key in scope) {
    const want = scope[key]!;
    const have = key === 'customerId' ? customerId : dims.get(key);
    if (have === undefined || (want !== '*' && want !== have)) return false;
  }
  return true;
}

/** The counter a request lands in: the scope with each `*` filled in from the request. */
export function concreteScope(
  scope: Readonly<Record<string, string>>,
  dims: ReadonlyMap<string, string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(scope).sort()) {
    const want = scope[key]!;
    out[key] = want === '*' ? (dims.get(key) ?? '') : want;
  }
  return out;
}

/**
 * The counter's id in the hot state and the usage table: the budget id, then the values its
 * `*` dimensions took, separated by a control character no id contains. A budget without `*`
 * has one counter, named like the budget.
 */
export function counterId(
  budgetId: string,
  scope: Readonly<Record<string, string>>,
  dims: ReadonlyMap<string, string>,
): string {
  let id = budgetId;
  for (const key of Object.keys(scope).sort()) {
    if (scope[key] === '*') id += `\u001f${key}=${dims.get(key) ?? ''}`;
  }
  return id;
}

/** The budget a counter belongs to, and the values of its `*` dimensions. */
export function parseCounterId(id: string): { budgetId: string; values: Record<string, string> } {
  const [budgetId = '', ...parts] = id.split('\u001f');
  const values: Record<string, string> = {};
  for (const part of parts) {
    const eq = part.indexOf('=');
    values[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return { budgetId, values };
}
