import { describe, expect, test } from '@jest/globals';
import { mapLimited } from '../../lab/parallel.js';

describe('mapLimited: lab work a few at a time', () => {
  test('never runs more than the limit at once, and keeps the order of the items', async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimited([30, 10, 20, 5, 1], 2, async (ms, i) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, ms));
      running--;
      return `${i}:${ms}`;
    });
    expect(most).toBe(2);
    expect(out).toEqual(['0:30', '1:10', '2:20', '3:5', '4:1']);
  });

  test('a failure rejects and no further item starts', async () => {
    const started: number[] = [];
    const run = mapLimited([1, 2, 3, 4], 1, async (n) => {
      started.push(n);
      if (n === 2) throw new Error('boom');
      return Promise.resolve(n);
    });
    await expect(run).rejects.toThrow('boom');
    expect(started).toEqual([1, 2]);
  });
});
