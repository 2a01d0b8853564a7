// The agent's /metrics: its patches by phase and kernel release, and what its
// kernel loop last did, in a fixed number of series however long it runs.
import { describe, expect, test } from '@jest/globals';
import { kernelProfile } from '../../../agent/kernel/profile.js';
import { decideNode } from '../../../agent/pass/node-machine.js';
import { kernelActionName, type KernelActionDone } from '../../../agent/pass/pass-runner.js';
import { AgentMetrics } from '../../../agent/server.js';
import type { LivePatchNodeStatus } from '../../../src/api/generated/types.js';
import {
  kernelRelease,
  type KernelRelease,
  type LivePatchName,
  type PatchName,
} from '../../../src/api/names.js';
import { desiredPatch } from '../../support/desired-patch.js';

const P = 'livepatch_a' as PatchName;
const LP = 'cve-a' as LivePatchName;
const RELEASE = '6.1.0-26-amd64' as KernelRelease;
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

function status(release: KernelRelease, phases: ('Patched' | 'Stalled')[]): LivePatchNodeStatus {
  return {
    kernelRelease: release,
    patches: phases.map((phase, i) => ({
      livePatch: `${LP}-${i}` as LivePatchName,
      patchName: P,
      phase,
    })),
  };
}

async function lines(metrics: AgentMetrics, name: string): Promise<string[]> {
  return (await metrics.registry.metrics()).split('\n').filter((l) => l.startsWith(`${name}{`));
}

describe('agent metrics', () => {
  test('patches by phase, labelled with the kernel release', async () => {
    const metrics = new AgentMetrics();
    metrics.observe(status(RELEASE, ['Patched', 'Patched', 'Stalled']), [], T0);
    const patches = await lines(metrics, 'livepatch_agent_patches');
    expect(patches).toContain(
      `livepatch_agent_patches{phase="Patched",kernel_release="${RELEASE}"} 2`,
    );
    expect(patches).toContain(
      `livepatch_agent_patches{phase="Stalled",kernel_release="${RELEASE}"} 1`,
    );
    expect(patches).toContain(
      `livepatch_agent_patches{phase="Failed",kernel_release="${RELEASE}"} 0`,
    );
  });

  test('a new kernel release replaces the series of the old one', async () => {
    const metrics = new AgentMetrics();
    metrics.observe(status(RELEASE, ['Patched']), [], T0);
    metrics.observe(status('6.1.0-27-amd64' as KernelRelease, ['Patched']), [], T0 + 1000);
    const patches = await lines(metrics, 'livepatch_agent_patches');
    expect(patches.filter((l) => l.includes(RELEASE))).toEqual([]);
    expect(patches).toHaveLength(10);
  });

  test("the stall guard's reversal is counted as reverse_stall, with when it happened", async () => {
    const desired = desiredPatch();

    const decision = decideNode(
      [desired],
      {
        profile: kernelProfile(kernelRelease(RELEASE)),
        patches: [{ name: P, enabled: true, transition: true }],
        loaded: new Set([P]),
        tasks: { name: P, pending: 1, blocking: [{ pid: 812, comm: 'qemu-kvm' }] },
      },
      [
        {
          livePatch: LP,
          patchName: P,
          phase: 'Transitioning',
          observedGeneration: 1,
          enabled: true,
          transition: true,
          transitionStartTime: new Date(T0).toISOString(),
        },
      ],
      T0 + 61_000,
    );
    if (!decision.action) throw new Error('the stall guard took no action');
    const reversal: KernelActionDone = { action: kernelActionName(decision.action), failed: false };
    expect(reversal.action).toBe('reverse_stall');

    const metrics = new AgentMetrics();
    metrics.observe(status(RELEASE, ['Stalled']), [reversal], T0 + 61_000);
    metrics.observe(
      status(RELEASE, ['Stalled']),
      [{ action: 'unload', failed: true }],
      T0 + 62_000,
    );
    expect(await lines(metrics, 'livepatch_agent_kernel_actions_total')).toEqual([
      'livepatch_agent_kernel_actions_total{action="reverse_stall",result="ok"} 1',
      'livepatch_agent_kernel_actions_total{action="unload",result="failed"} 1',
    ]);
    expect(await lines(metrics, 'livepatch_agent_last_action_timestamp_seconds')).toEqual([
      `livepatch_agent_last_action_timestamp_seconds{action="reverse_stall",result="ok"} ${(T0 + 61_000) / 1000}`,
      `livepatch_agent_last_action_timestamp_seconds{action="unload",result="failed"} ${(T0 + 62_000) / 1000}`,
    ]);
    expect((await metrics.registry.metrics()).split('\n')).toContain(
      `livepatch_agent_last_pass_timestamp_seconds ${(T0 + 62_000) / 1000}`,
    );
  });

  test('a day of passes and actions adds no series', async () => {
    const metrics = new AgentMetrics();
    const names: KernelActionDone['action'][] = ['fetch', 'load', 'enable', 'disable', 'unload'];
    const pass = (i: number): void => {
      const action = names[i % names.length] ?? 'load';
      metrics.observe(status(RELEASE, ['Patched']), [{ action, failed: i % 3 === 0 }], T0 + i);
    };
    for (let i = 0; i < 100; i++) pass(i);
    const before = await metrics.registry.metrics();
    for (let i = 100; i < 86_400; i++) pass(i);
    const after = await metrics.registry.metrics();
    // Counter and timestamp values grow by a few digits; no new line appears.
    expect(after.split('\n').length).toBe(before.split('\n').length);
    expect(after.length).toBeLessThan(before.length + 200);
  });
});
