// `npm run bench`: the operator's speed and memory figures, printed, never
// asserted. Two parts: the pure planner at fleet sizes no test cluster
// reaches, and a live rollout on a real API server with a simulated fleet.
import { performance } from 'node:perf_hooks';
import { startFleet } from '../../agent/fleet.js';
import { writeSimModuleFile } from '../../agent/kernel/sim-module.js';
import type { LivePatch, LivePatchNode } from '../../src/api/generated/types.js';
import { patchName, type KernelRelease, type NodeName } from '../../src/api/names.js';
import { systemClock } from '../../src/clock.js';
import { aggregateStatus } from '../../src/controller/aggregator.js';
import { planRollout } from '../../src/controller/planner.js';
import { Controller } from '../../src/controller/runtime.js';
import { classifyNodes, type NodeFacts } from '../../src/controller/targets.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { followLivePatch } from '../../src/kube/follow.js';
import { rawJson } from '../../src/kube/raw.js';
import { PATHS } from '../../src/kube/resources.js';
import { startControlPlane } from '../../src/localcluster/controlplane.js';
import { createLogger } from '../../src/log.js';

const KERNEL = '6.1.0-26-amd64' as KernelRelease;
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

function syntheticFleet(
  size: number,
  now: number,
): { lp: LivePatch; nodes: NodeFacts[]; lpns: Map<string, LivePatchNode> } {
  const nodes: NodeFacts[] = [];
  const lpns = new Map<string, LivePatchNode>();
  for (let i = 0; i < size; i++) {
    const name = `node-${i}` as NodeName;
    nodes.push({ name, labels: { pool: 'web' }, kernel: KERNEL, ready: true });
    lpns.set(name, {
      apiVersion: 'livepatch.io/v1alpha1',
      kind: 'LivePatchNode',
      metadata: { name },
      spec: {},
      status: { heartbeatTime: new Date(now).toISOString(), patches: [] },
    });
  }
  const lp = {
    apiVersion: 'livepatch.io/v1alpha1',
    kind: 'LivePatch',
    metadata: { name: 'bench', generation: 1 },
    spec: {
      patchName: patchName('livepatch_bench'),
      state: 'Enabled',
      kernels: [{ release: KERNEL, module: { hostPath: '/m.ko', sha256: 'a'.repeat(64) } }],
      rollout: { maxUnavailable: '10%', bakeTime: '0s', paused: false },
      stall: { timeout: '60s', action: 'Rollback', allowForce: false },
      failureBudget: 0,
    },
  } as LivePatch;
  return { lp, nodes, lpns };
}

function benchPlanner(): void {
  console.log('planner + aggregator, one reconcile pass (pure, no I/O):');
  for (const size of [100, 1000, 5000, 20000]) {
    const now = Date.now();
    const { lp, nodes, lpns } = syntheticFleet(size, now);
    const runs = size >= 5000 ? 5 : 50;
    const start = performance.now();
    for (let i = 0; i < runs; i++) {
      const slots = classifyNodes(lp, nodes, lpns, now);
      aggregateStatus(lp, slots, planRollout(lp, slots, now), now);
    }
    const ms = (performance.now() - start) / runs;
    console.log(`  ${String(size).padStart(6)} nodes: ${ms.toFixed(2)} ms per pass`);
  }
}

async function benchLiveRollout(nodeCount: number): Promise<void> {
  const log = createLogger({ component: 'bench', format: 'text', level: 'error' });
  const plane = await startControlPlane({ log });
  const kc = loadKubeConfig(plane.kubeconfig);
  try {
    const fleetStart = performance.now();
    const fleet = await startFleet({
      kubeConfig: kc,
      nodes: nodeCount,
      kernels: [KERNEL],
      namePrefix: 'bench',
      clock: systemClock,
      log,
    });
    const fleetMs = performance.now() - fleetStart;
    const controller = new Controller({
      kc,
      log,
      port: 0,
      lease: { namespace: 'default', name: 'bench', identity: 'bench' },
      onLostLeadership: () => undefined,
    });
    await controller.start();
    const module = await writeSimModuleFile(plane.dir, { name: 'livepatch_bench', kernel: KERNEL });
    const lp = {
      apiVersion: 'livepatch.io/v1alpha1',
      kind: 'LivePatch',
      metadata: { name: 'bench' },
      spec: {
        patchName: 'livepatch_bench',
        kernels: [{ release: KERNEL, module: { hostPath: module.path, sha256: module.sha256 } }],
        rollout: { maxUnavailable: '20%' },
      },
    };
    const start = performance.now();
    await rawJson(kc, 'POST', PATHS.livePatches, lp);
    await followLivePatch(kc, 'bench', log, (current) => current.status?.phase === 'Complete');
    const rolloutMs = performance.now() - start;
    const rss = process.memoryUsage().rss;
    console.log(
      `live rollout on a real API server, ${nodeCount} simulated nodes, maxUnavailable 20%, 2 s transitions:`,
    );
    console.log(`  fleet start (Nodes + agents): ${(fleetMs / 1000).toFixed(1)} s`);
    console.log(
      `  apply to Complete: ${(rolloutMs / 1000).toFixed(1)} s (5 waves; the floor is 5 x 2 s of simulated transition)`,
    );
    console.log(
      `  process RSS with controller + ${nodeCount} agents: ${mib(rss)} (${mib(rss / nodeCount)} per agent, upper bound)`,
    );
    await controller.stop();
    await fleet.stop();
  } finally {
    await plane.stop();
  }
}

benchPlanner();
await benchLiveRollout(Number(process.env['BENCH_NODES'] ?? 100));
