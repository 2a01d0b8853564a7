import { describe, expect, test } from '@jest/globals';
import { mergePatchFrom } from '../../../src/kube/merge-patch.js';

describe('the merge patch from one object to another', () => {
  test('names what went away as null, at any depth, and leaves out what did not change', () => {
    const before = {
      phase: 'Progressing',
      window: { open: true, closesAt: 'then', nextOpen: 'later' },
      supersededBy: [{ livePatch: 'b', nodes: 2 }],
      summary: '1/2',
    };
    const after = { phase: 'Waiting', window: { open: false, nextOpen: 'later' }, summary: '1/2' };
    expect(mergePatchFrom(before, after)).toEqual({
      phase: 'Waiting',
      window: { open: false, closesAt: null },
      supersededBy: null,
    });
  });

  test('arrays and scalars are replaced whole; a new object is sent whole', () => {
    expect(mergePatchFrom({ a: [1, 2], b: 1 }, { a: [2], b: 2, c: { d: 1 } })).toEqual({
      a: [2],
      b: 2,
      c: { d: 1 },
    });
    expect(mergePatchFrom({ a: { x: 1 } }, { a: [1] })).toEqual({ a: [1] });
  });
});
