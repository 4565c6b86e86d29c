/** How the worker cuts what one fetch brought into transactions. */
import { describe, expect, it } from 'vitest';
import { groupByEvents } from '../src/worker/worker.ts';

const message = (name: string, events: number) => ({ name, events: Array.from({ length: events }) });

describe('groupByEvents', () => {
  it('keeps messages whole and in order, at most maxEvents events a group', () => {
    const groups = groupByEvents(
      [message('a', 3), message('b', 4), message('c', 2), message('d', 10), message('e', 1)],
      6,
    );
    expect(groups.map((group) => group.map((m) => m.name))).toEqual([['a'], ['b', 'c'], ['d'], ['e']]);
  });

  it('puts everything in one group when it fits, and nothing in none', () => {
    expect(groupByEvents([message('a', 1), message('b', 0), message('c', 2)], 100)).toHaveLength(1);
    expect(groupByEvents([], 100)).toEqual([]);
  });
});
