import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import {
  nodeRefusal,
  pinnedNode,
  pinnedNodeOf,
  startRecordedRun,
  summariseLoad,
} from '../../lab/record.js';
import { repositoryRoot } from '../../src/paths.js';

describe('the header every lab record carries', () => {
  test('names the commit that ran, the tree, the Node and the pinned one, the machine and its load', async () => {
    const run = await startRecordedRun();
    const header = run.finish();
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repositoryRoot() })
      .toString()
      .trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: repositoryRoot() })
      .toString()
      .trim();
    expect(header.commit).toBe(head);
    expect(header.cleanTree).toBe(dirty === '');
    expect(header.node).toBe(process.version);
    expect(header.pinnedNode).toBe(pinnedNode());
    expect(header.cpus).toBeGreaterThan(0);
    // Sampled at the start and at the end at least.
    expect(header.load.samples).toBeGreaterThanOrEqual(2);
    expect(header.load.max).toBeGreaterThanOrEqual(header.load.mean);
    expect(Date.parse(header.finishedAt)).toBeGreaterThanOrEqual(Date.parse(header.startedAt));
  });

  test('the load summary is start, end, mean and max of the samples', () => {
    expect(summariseLoad([1, 3.333, 2])).toEqual({
      sampledEverySeconds: 5,
      samples: 3,
      start: 1,
      end: 2,
      mean: 2.11,
      max: 3.33,
    });
  });

  test('the pinned Node is the exact version in devDependencies, as process.version spells it', () => {
    expect(pinnedNodeOf({ devDependencies: { node: '24.21.0' } })).toBe('v24.21.0');
    expect(() => pinnedNodeOf({ devDependencies: { node: '^24.0.0' } })).toThrow(/no exact Node/);
    expect(() => pinnedNodeOf({})).toThrow(/no exact Node/);
  });
});

describe('a record is refused from a Node other than the pinned one', () => {
  test('the pinned version records', () => {
    expect(nodeRefusal('v24.21.0', 'v24.21.0', 'bench/results/latest.json')).toBeUndefined();
  });

  test.each(['v20.19.0', 'v24.21.1', 'v24.20.0', 'v25.21.0'])(
    '%s is refused, saying which Node ran, which is pinned and what to do',
    (running) => {
      const why = nodeRefusal(running, 'v24.21.0', 'bench/results/chaos.json');
      expect(why).toContain(`this is Node ${running}`);
      expect(why).toContain('pins v24.21.0');
      expect(why).toContain('bench/results/chaos.json');
      expect(why).toMatch(/npm run/);
    },
  );
});
