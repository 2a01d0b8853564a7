import { describe, expect, test } from '@jest/globals';
import { mergeResults } from '../../lab/kernel/results.js';

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
    let kernels = mergeResults([], { line: '6.1', release: 'r61' }, conformance, order);
    kernels = mergeResults(kernels, { line: '5.10', release: 'r510' }, agent, order);
    kernels = mergeResults(kernels, { line: '6.1', release: 'r61' }, agent, order);
    expect(kernels).toEqual([
      { line: '5.10', release: 'r510', agentScenarios: agent.scenarios },
      {
        line: '6.1',
        release: 'r61',
        vmSeconds: 90,
        scenarios: conformance.scenarios,
        agentScenarios: agent.scenarios,
      },
    ]);
  });

  test("a suite's new run replaces its own old results only", () => {
    const first = mergeResults([], { line: '6.12', release: 'r' }, agent, order);
    const both = mergeResults(first, { line: '6.12', release: 'r' }, conformance, order);
    const again = mergeResults(
      both,
      { line: '6.12', release: 'r' },
      { ...conformance, vmSeconds: 80 },
      order,
    );
    expect(again).toEqual([{ ...both[0], vmSeconds: 80 }]);
  });
});
