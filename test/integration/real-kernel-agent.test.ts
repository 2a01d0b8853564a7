// The whole operator with real kernels in it: one VM per pinned kernel line
// (5.10, 6.1, 6.12) runs the real agent process (sysfs backend) against this
// file's API server, beside a simulated fleet, all driven by the real
// controller. A patch rolls out to Complete on every node; then a patch of the
// function the VMs' helper kthread sleeps in stalls on every VM at once, each
// node's own guard reverses it, the controller rolls the patch back, and the
// user sees each real kthread. Each scenario's outcome is recorded for every
// kernel line in test-results/real-kernel.json, beside the conformance suite's;
// the stall's, line by line.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { LivePatch, LivePatchNode } from '../../src/api/generated/types.js';
import { createLogger } from '../../src/log.js';
import { prepareHost, realKernelsRequired } from '../../lab/kernel/host.js';
import { KERNEL_LINES } from '../../lab/kernel/kernels.js';
import { recordKernelResults, type AgentRecord } from '../../lab/kernel/results.js';
import { startRecordedRun } from '../../lab/record.js';
import { startVmFleet, type VmFleet } from '../../lab/kernel/vm-fleet.js';
import { kubectlJson, kubectlOk } from '../support/kubectl.js';
import { applyLivePatchSpec, eventsFor } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { writeSimModule } from '../../lab/sim-modules.js';
import { poll, waitUntil } from '../../lab/wait.js';

const SIM_KERNEL = '6.1.0-26-amd64';
const SIM_NODES = 3;
const ALL_NODES = SIM_NODES + KERNEL_LINES.length;
const POOL = 'livepatch.io/pool';
const log = createLogger({
  component: 'real-kernel-agent',
  format: 'text',
  level: process.env['LOG_LEVEL'] ?? 'warn',
});
const skipReason = await prepareHost(log);
// The record's header: this run's commit, Node and the load while it ran.
const recorded = await startRecordedRun();
if (skipReason) process.stderr.write(`real-kernel agent test skipped: ${skipReason}\n`);

if (skipReason && realKernelsRequired()) {
  test('real kernels are required on this machine (LIVEPATCH_REAL_KERNELS=require)', () => {
    throw new Error(`the real-kernel agent test cannot run: ${skipReason}`);
  });
}

/** The stalled node's own report: Stalled, the same kthread, reversed and unloaded, nothing in flight. */
async function expectNodeReport(node: string, blocking: readonly object[]): Promise<void> {
  const lpn = await kubectlJson<LivePatchNode>(['get', 'lpn', node]);
  const entry = lpn.status?.patches?.find((p) => p.livePatch === 'stall');
  expect(entry?.phase).toBe('Stalled');
  expect(entry?.blockingTasks).toEqual(blocking);
  expect(entry?.message).toMatch(
    /did not finish within 20s \(blocked by lpt_holder\[\d+\]\); reversed on the node and unloaded/,
  );
  expect(lpn.status?.transitioning).toBeUndefined();
}

/** Each scenario's outcome, per kernel line. */
/** What is wrong with one VM's part in the stall: named in stalledNodes with its kthread, reversed and unloaded. */
async function stallProblem(
  lp: LivePatch | undefined,
  node: string,
): Promise<{ line?: string; message: string } | undefined> {
  const lpn = await kubectlJson<LivePatchNode>(['get', 'lpn', node]);
  const line = KERNEL_LINES.find((l) => lpn.status?.kernelRelease?.startsWith(`${l.line}.`))?.line;
  try {
    const stalled = lp?.status?.stalledNodes?.find((n) => n.node === node);
    expect(stalled?.blockingTasks?.map((t) => t.comm)).toEqual(['lpt_holder']);
    expect(stalled?.blockingTasks?.[0]?.pid).toBeGreaterThan(1);
    await expectNodeReport(node, stalled?.blockingTasks ?? []);
    return undefined;
  } catch (err) {
    return { ...(line ? { line } : {}), message: `${node}: ${(err as Error).message}` };
  }
}

const outcomes = new Map<string, AgentRecord[]>(KERNEL_LINES.map((l) => [l.line, []]));

/** What went wrong on each kernel line's VM, in a scenario that checks every VM on its own. */
type LineProblems = ReadonlyMap<string, string>;

/**
 * A test whose outcome goes to test-results/real-kernel.json under every
 * kernel line. A scenario that checks each VM on its own returns what failed
 * where, and each line records its own outcome; otherwise it asserts on all
 * the VMs together and its outcome is every line's.
 */
function scenario(
  name: string,
  title: string,
  fn: () => Promise<LineProblems | undefined>,
  timeoutMs: number,
): void {
  test(
    title,
    async () => {
      const started = Date.now();
      let problems: LineProblems | undefined;
      let passed = false;
      try {
        problems = await fn();
        passed = true;
      } finally {
        const durationMs = Date.now() - started;
        for (const [line, records] of outcomes)
          records.push({ name, passed: passed && !problems?.has(line), durationMs });
      }
      expect(Object.fromEntries(problems ?? [])).toEqual({});
    },
    timeoutMs,
  );
}

(skipReason ? describe.skip : describe)('the agent on real kernels, in a cluster', () => {
  let vms: VmFleet | undefined;
  const fleet = (): VmFleet => {
    if (!vms) throw new Error('the VMs are not up');
    return vms;
  };
  // Before the cluster's own hooks: the VMs go while the API server is still there to tidy up.
  afterAll(async () => {
    if (outcomes.get(KERNEL_LINES[0]?.line ?? '')?.length)
      await recordKernelResults(
        // The builds booted (the pins, or their lines' newest); the pins if the VMs never came up.
        (
          vms?.kernels.map((k) => ({ line: k.line.line, release: k.line.release, ...k.pins })) ??
          KERNEL_LINES.map((l) => ({ line: l.line, release: l.release }))
        ).map((l) => ({
          ...l,
          part: { suite: 'agent' as const, scenarios: outcomes.get(l.line) ?? [] },
        })),
        KERNEL_LINES.map((l) => l.line),
        recorded.finish(),
        log,
      );
    await vms?.stop();
  });
  const cluster = useOwnCluster({ nodes: SIM_NODES, kernels: [SIM_KERNEL], prefix: 'beside-vm' });

  beforeAll(async () => {
    await cluster().startController('real-kernel-controller');
    vms = await startVmFleet({
      count: KERNEL_LINES.length,
      kubeconfig: cluster().plane.kubeconfig,
      labels: { [POOL]: 'vm' },
      log,
    });
  }, 20 * 60_000);

  scenario(
    'reports-pinned-kernel',
    'every VM node reports the pinned kernel it booted, through the sysfs backend',
    async () => {
      const releases = [];
      for (const vm of fleet().nodes) {
        const lpn = await kubectlJson<LivePatchNode>(['get', 'lpn', vm.name]);
        expect(lpn.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
        expect(lpn.status?.backend).toBe('sysfs');
        releases.push(lpn.status?.kernelRelease);
      }
      expect(releases.sort()).toEqual(
        fleet()
          .kernels.map((k) => k.line.release)
          .sort(),
      );
    },
    60_000,
  );

  scenario(
    'rollout-complete',
    'a LivePatch rolls out to Complete on the real kernels and the simulated fleet',
    async () => {
      const sim = await writeSimModule('lpt_cmdline', SIM_KERNEL);
      const kernels = [
        ...(await fleet().kernelEntries('lpt_cmdline')),
        { release: SIM_KERNEL, module: { hostPath: sim.hostPath, sha256: sim.sha256 } },
      ];
      await applyLivePatchSpec('cmdline', {
        patchName: 'lpt_cmdline',
        kernels,
        rollout: { maxUnavailable: 2 },
        stall: { timeout: '60s' },
      });
      await kubectlOk(['wait', '--for=condition=Complete', 'lp/cmdline', '--timeout=300s']);
      const lp = await kubectlJson<LivePatch>(['get', 'lp', 'cmdline']);
      expect(lp.status?.summary).toBe(`${ALL_NODES}/${ALL_NODES}`);
      for (const vm of fleet().nodes) {
        const entry = (await kubectlJson<LivePatchNode>(['get', 'lpn', vm.name])).status
          ?.patches?.[0];
        expect(entry).toMatchObject({
          livePatch: 'cmdline',
          phase: 'Patched',
          enabled: true,
          transition: false,
        });
      }
    },
    10 * 60_000,
  );

  scenario(
    'cumulative-replace',
    'a cumulative patch replaces the first on real kernels: Replaced, never loaded again on top',
    async () => {
      const sim = await writeSimModule('lpt_cmdline_v2', SIM_KERNEL, true);
      await applyLivePatchSpec('cmdline-v2', {
        patchName: 'lpt_cmdline_v2',
        kernels: [
          ...(await fleet().kernelEntries('lpt_cmdline_v2')),
          { release: SIM_KERNEL, module: { hostPath: sim.hostPath, sha256: sim.sha256 } },
        ],
        rollout: { maxUnavailable: 2 },
      });
      await kubectlOk(['wait', '--for=condition=Complete', 'lp/cmdline-v2', '--timeout=300s']);
      await waitUntil(
        'every node of the first patch to report it replaced',
        () => kubectlJson<LivePatch>(['get', 'lp', 'cmdline']),
        (lp) => lp.status?.nodes?.replaced === ALL_NODES,
        60_000,
      );
      // 5.10 and 6.1 have no replace file: the agent must still never load the superseded patch again.
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) {
        for (const vm of fleet().nodes) {
          const lpn = await kubectlJson<LivePatchNode>(['get', 'lpn', vm.name]);
          const entry = lpn.status?.patches?.find((p) => p.livePatch === 'cmdline');
          seen.add(`${entry?.phase ?? ''}: ${entry?.message ?? ''}`);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      expect([...seen]).toEqual(['Replaced: replaced by the atomic-replace patch lpt_cmdline_v2']);
    },
    10 * 60_000,
  );

  scenario(
    'unpatch-unload',
    'deleting the replaced patch and disabling the cumulative one unpatch and unload on real kernels',
    async () => {
      await kubectlOk(['delete', 'lp', 'cmdline', '--timeout=120s']);
      await kubectlOk([
        'patch',
        'lp',
        'cmdline-v2',
        '--type=merge',
        '-p',
        '{"spec":{"state":"Disabled"}}',
      ]);
      await waitUntil(
        'the cumulative patch to be disabled everywhere',
        () => kubectlJson<LivePatch>(['get', 'lp', 'cmdline-v2']),
        (lp) => lp.status?.phase === 'Disabled',
        120_000,
      );
      for (const vm of fleet().nodes) {
        const lpn = await kubectlJson<LivePatchNode>(['get', 'lpn', vm.name]);
        expect(lpn.status?.patches?.map((p) => [p.livePatch, p.phase, p.message])).toEqual([
          ['cmdline-v2', 'Unpatched', 'disabled and unloaded'],
        ]);
        expect(lpn.status?.unmanaged).toEqual([]);
      }
    },
    10 * 60_000,
  );

  scenario(
    'stall-rolled-back',
    "a stall on every kernel line is reversed by its node and rolled back by the controller, naming each VM's kthread",
    async () => {
      // Every VM at once, and the rollback only when all of them stalled: each line stalls on its own.
      const vms = fleet().nodes.length;
      await applyLivePatchSpec('stall', {
        patchName: 'lpt_stall',
        nodeSelector: { matchLabels: { [POOL]: 'vm' } },
        kernels: await fleet().kernelEntries('lpt_stall'),
        rollout: { maxUnavailable: vms },
        failureBudget: vms - 1,
        stall: { timeout: '20s', action: 'Rollback' },
      });
      // Without a rollback, the VMs are still judged one by one: which line did not stall.
      const { last: lp } = await poll(
        () => kubectlJson<LivePatch>(['get', 'lp', 'stall']),
        (x) => x.status?.phase === 'RolledBack',
        300_000,
        { intervalMs: 1000 },
      );
      const problems = new Map<string, string>();
      for (const vm of fleet().nodes) {
        const problem = await stallProblem(lp, vm.name);
        if (problem) problems.set(problem.line ?? vm.name, problem.message);
      }
      if (lp?.status?.phase !== 'RolledBack')
        throw new Error(
          `not rolled back (phase ${lp?.status?.phase ?? 'none'}); per kernel line: ${JSON.stringify(Object.fromEntries(problems))}`,
        );
      const table = await kubectlOk(['get', 'lp', 'stall']);
      expect(table).toMatch(
        new RegExp(`stall\\s+Enabled\\s+RolledBack\\s+0/${vms}\\s+0\\s+${vms}\\s+0`),
      );
      expect((await eventsFor('stall')).map((e) => e.reason)).toContain('NodeStalled');
      return problems;
    },
    10 * 60_000,
  );
});
