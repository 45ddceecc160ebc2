import { describe, expect, it } from '@jest/globals';
import { setCondition } from '../../src/runtime/conditions.js';
import { mergePatch } from '../../src/runtime/status.js';

describe('setCondition', () => {
  const t0 = new Date('2026-11-22T10:00:00.123Z');
  const t1 = new Date('2026-11-22T11:00:00Z');

  it('adds a condition with the generation it was computed from', () => {
    expect(
      setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Starting', message: 'booting' }, 3, t0),
    ).toEqual([
      {
        type: 'Ready',
        status: 'False',
        observedGeneration: 3,
        lastTransitionTime: '2026-11-22T10:00:00Z',
        reason: 'Starting',
        message: 'booting',
      },
    ]);
  });

  it('keeps lastTransitionTime while the status stays, and moves it when the status changes', () => {
    const first = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Starting', message: 'a' }, 1, t0);
    const same = setCondition(first, { type: 'Ready', status: 'False', reason: 'StillStarting', message: 'b' }, 2, t1);
    expect(same[0]?.lastTransitionTime).toBe('2026-11-22T10:00:00Z');
    expect(same[0]?.observedGeneration).toBe(2);
    const flipped = setCondition(same, { type: 'Ready', status: 'True', reason: 'Running', message: 'c' }, 2, t1);
    expect(flipped[0]?.lastTransitionTime).toBe('2026-11-22T11:00:00Z');
  });

  it('leaves other condition types alone and in place', () => {
    const two = setCondition(
      setCondition(undefined, { type: 'A', status: 'True', reason: 'r', message: 'm' }, 1, t0),
      { type: 'B', status: 'True', reason: 'r', message: 'm' },
      1,
      t0,
    );
    const updated = setCondition(two, { type: 'A', status: 'False', reason: 'r', message: 'm' }, 1, t1);
    expect(updated.map((c) => [c.type, c.status])).toEqual([
      ['A', 'False'],
      ['B', 'True'],
    ]);
  });
});

describe('mergePatch', () => {
  it('contains only what changed, with null for removed keys, recursing into objects', () => {
    expect(
      mergePatch(
        { phase: 'Running', host: 'a', nested: { x: 1, y: 2 }, list: [1] },
        { phase: 'Running', nested: { x: 1, y: 3 }, list: [1, 2] },
      ),
    ).toEqual({
      host: null,
      nested: { y: 3 },
      list: [1, 2],
    });
  });

  it('is empty when nothing changed', () => {
    expect(mergePatch({ a: { b: [1, { c: 2 }] } }, { a: { b: [1, { c: 2 }] } })).toEqual({});
  });
});
