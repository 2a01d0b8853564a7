import { describe, expect, test } from '@jest/globals';
import { mergeResults } from '../../lab/kernel/results.js';
import type { RecordHeader } from '../../lab/record.js';

const header = (commit: string): RecordHeader => ({
  commit,
  cleanTree: true,
  node: 'v24.21.0',
  pinnedNode: 'v24.21.0',
  cpus: 2,
  cpuModel: 'cpu',
  memoryGiB: 8,
  kernel: '6.1.0',
  startedAt: '2025-01-01T00:00:00.000Z',
  finishedAt: '2025-01-01T00:01:00.000Z',
  load: { sampledEverySeconds: 5, samples: 2, start: 1, end: 1, mean: 1, max: 1 },
});
const r1 = header('c1');
const r2 = header('c2');

describe('test-results/real-kernel.json: each suite writes its half per kernel line', () => {
  const order = ['5.10', '6.1', '6.12'];
  const conformance = {
    suite: 'conformance' as const,
    vmSeconds: 90,
    scenarios: [
      { name: 'load', passed: true, kernelPassed: true, simulatorMatches: true, durationMs: 5 },
    ],
  };
  const agent = {
    suite: 'agent' as const,
    scenarios: [{ name: 'rollout', passed: false, durationMs: 7 }],
  };

  test("the agent's scenarios join the conformance ones of the same line, lines in pinned order", () => {
    let kernels = mergeResults([], { line: '6.1', release: 'r61' }, conformance, order, r1);
    kernels = mergeResults(kernels, { line: '5.10', release: 'r510' }, agent, order, r2);
    kernels = mergeResults(kernels, { line: '6.1', release: 'r61' }, agent, order, r2);
    expect(kernels).toEqual([
      { line: '5.10', release: 'r510', agentScenarios: agent.scenarios, runs: { agent: r2 } },
      {
        line: '6.1',
        release: 'r61',
        vmSeconds: 90,
        scenarios: conformance.scenarios,
        agentScenarios: agent.scenarios,
        // Each part names the run that wrote it.
        runs: { conformance: r1, agent: r2 },
      },
    ]);
  });

  test('each line says which build of its pin ran, and the entry carries no stray fields', () => {
    const kernel = {
      pinned: '6.1.0-50-amd64 6.1.176-1',
      used: '6.1.0-52-amd64 6.1.192-1',
      reason: 'pin-gone' as const,
    };
    const busybox = {
      pinned: 'busybox-static=1:1.35.0-4+deb12u1+b1',
      used: 'busybox-static=1:1.35.0-4+deb12u1+b1',
      reason: 'cached' as const,
    };
    const entry = { line: '6.1', release: '6.1.0-52-amd64', kernel, busybox, part: conformance };
    const first = mergeResults([], entry, entry.part, order, r1);
    expect(first).toEqual([
      {
        line: '6.1',
        release: '6.1.0-52-amd64',
        kernel,
        busybox,
        vmSeconds: 90,
        scenarios: conformance.scenarios,
        runs: { conformance: r1 },
      },
    ]);
    // A suite that does not know the builds (no VMs came up) keeps what another one recorded.
    const later = mergeResults(first, { line: '6.1', release: '6.1.0-52-amd64' }, agent, order, r2);
    expect(later[0]?.kernel).toEqual(kernel);
  });

  test("a suite's new run replaces its own old results only", () => {
    const first = mergeResults([], { line: '6.12', release: 'r' }, agent, order, r1);
    const both = mergeResults(first, { line: '6.12', release: 'r' }, conformance, order, r1);
    const again = mergeResults(
      both,
      { line: '6.12', release: 'r' },
      { ...conformance, vmSeconds: 80 },
      order,
      r2,
    );
    expect(again).toEqual([{ ...both[0], vmSeconds: 80, runs: { agent: r1, conformance: r2 } }]);
  });
});
