// An agent restarted on a node whose kernel is in the middle of reversing a
// stall (the agent before it was killed there). What the fault suite found:
// - with its watch answering before its node-local memory was read, a watch
//   event ran a pass knowing nothing: it reported no patches, saved that as
//   the node's memory, and the pass after took the reversal for a transition
//   heading the wrong way;
// - killed between writing `enabled=0` and saving that it had, the next agent
//   found only the transition in its memory and enabled the patch again.
// Either way the node guard's reversal of a stall was undone.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../agent/agent.js';
import { DEFAULT_SIM_KNOBS } from '../../agent/kernel/sim/sim-knobs.js';
import { SimulatedKernel } from '../../agent/kernel/sim/simulator.js';
import { createModuleFetcher } from '../../agent/module/module-source.js';
import { NodeStateFile, type NodeState } from '../../agent/memory/node-state.js';
import type { DesiredPatch, LivePatchNode, ObservedPatch } from '../../src/api/generated/types.js';
import {
  kernelRelease,
  nodeName,
  patchName,
  type NodeName,
  type PatchName,
} from '../../src/api/names.js';
import { systemClock } from '../../src/clock.js';
import { loadKubeConfig, type KubeConfig } from '../../src/kube/config.js';
import { EventRecorder } from '../../src/kube/events.js';
import { Reflector } from '../../src/kube/reflector.js';
import { PATHS } from '../../src/kube/resources.js';
import { registerNode } from '../../lab/controlplane/nodes.js';
import { createLogger } from '../../src/log.js';
import { kubectl, kubectlJson, kubectlOk, kubeconfigPath } from '../support/kubectl.js';
import { writeSimModule } from '../../lab/sim-modules.js';
import { waitUntil } from '../../lab/wait.js';

const KERNEL = kernelRelease('6.1.0-26-amd64');
const NODE = nodeName('agent-restart-race');
const PATCH = patchName('livepatch_restart_race');
const NODE2 = nodeName('agent-restart-unsaved');
const PATCH2 = patchName('livepatch_restart_unsaved');
const log = createLogger({ component: 'agent', level: 'error', format: 'text' });
let kc: KubeConfig;
beforeAll(() => {
  kc = loadKubeConfig(kubeconfigPath());
});

async function nodeWithEntry(node: NodeName, entry: DesiredPatch): Promise<void> {
  await registerNode(kc, {
    name: node,
    release: KERNEL,
    labels: {},
    providerID: `livepatch-sim://${node}`,
    osImage: 'Simulated Linux',
  });
  await kubectlOk(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'livepatch.io/v1alpha1',
      kind: 'LivePatchNode',
      metadata: { name: node },
      spec: { patches: [entry] },
    }),
  );
}

function agentOn(
  node: NodeName,
  kernel: SimulatedKernel,
  dir: string,
  state: NodeStateFile,
): Agent {
  return new Agent({
    nodeName: node,
    kubeConfig: kc,
    backend: kernel,
    fetchModule: createModuleFetcher({ kubeConfig: kc, moduleDir: dir, hostRoot: '/' }),
    clock: systemClock,
    log,
    events: new EventRecorder(kc, 'livepatch-agent', node, log),
    version: 'test',
    state,
  });
}

/** Whether the patch is ever enabled again in the kernel from now on: polled every 50 ms. */
function watchEnabled(
  kernel: SimulatedKernel,
  patch: PatchName,
): { seen: () => boolean; stop: () => void } {
  let enabled = false;
  const poll = setInterval(() => {
    void kernel.patches().then((ps) => {
      if (ps.some((p) => p.name === patch && p.enabled)) enabled = true;
    });
  }, 50);
  return {
    seen: () => enabled,
    stop: () => {
      clearInterval(poll);
    },
  };
}

/** The node's memory, read only after the watch has answered: the order a busy node may see. */
class SlowStateFile extends NodeStateFile {
  override async load(): Promise<NodeState | undefined> {
    await new Promise((r) => setTimeout(r, 1500));
    return super.load();
  }
}

afterAll(async () => {
  await kubectl(['delete', 'lpn', NODE, NODE2, '--ignore-not-found']);
  await kubectl(['delete', 'node', NODE, NODE2, '--ignore-not-found']);
});

describe('an agent restarted mid-reversal', () => {
  test('takes up its node-local memory before acting: it never reports nothing, and the stalled patch stays reversed', async () => {
    const module = await writeSimModule(PATCH, KERNEL);
    const entry = {
      livePatch: 'lp-restart-race',
      patchName: PATCH,
      state: 'Enabled',
      module: { hostPath: module.hostPath, sha256: module.sha256 },
      generation: 1,
      stallTimeout: '5s',
    } as DesiredPatch;
    await nodeWithEntry(NODE, entry);

    // The kernel the killed agent left: the stalled patch, its reversal under way.
    const kernel = new SimulatedKernel({
      release: KERNEL,
      clock: systemClock,
      knobs: () => ({ ...DEFAULT_SIM_KNOBS, stuckTasks: 1, transitionSeconds: 4 }),
    });
    await kernel.load(module.hostPath);
    const startedAt = new Date().toISOString();
    await kernel.setEnabled(PATCH, false);
    const dir = await mkdtemp(join(tmpdir(), 'agent-restart-'));
    const reversing: ObservedPatch = {
      livePatch: entry.livePatch,
      patchName: PATCH,
      phase: 'Reversing',
      observedGeneration: 1,
      enabled: false,
      transition: true,
      transitionStartTime: startedAt,
      blockingTasks: [{ pid: 1040, comm: 'qemu-kvm' }],
    };
    await new NodeStateFile(join(dir, 'agent-state.json'), NODE, log).save([entry], [reversing]);

    // Every status the node writes.
    const written: string[][] = [];
    const watch: Reflector<LivePatchNode> = new Reflector<LivePatchNode>(kc, {
      path: PATHS.livePatchNodes,
      fieldSelector: `metadata.name=${NODE}`,
      log,
      onChange: () => {
        const status = watch.get(NODE)?.status;
        if (status?.heartbeatTime) written.push((status.patches ?? []).map((p) => p.phase));
      },
    });
    watch.start();
    await watch.waitForSync();
    const enabled = watchEnabled(kernel, PATCH);
    const agent = agentOn(
      NODE,
      kernel,
      dir,
      new SlowStateFile(join(dir, 'agent-state.json'), NODE, log),
    );
    try {
      await agent.start();
      await waitUntil(
        'the node to report the reversal done',
        () => Promise.resolve(written.at(-1)),
        (phases) => phases?.[0] === 'Stalled',
        30_000,
      );
      expect(written.filter((phases) => phases.length === 0)).toEqual([]);
      expect(enabled.seen()).toBe(false);
      expect(kernel.state().loads).toEqual({ [PATCH]: 1 });
      expect(await kernel.isLoaded(PATCH)).toBe(false);
    } finally {
      enabled.stop();
      watch.stop();
      await agent.stop();
    }
  });

  test('killed between reversing a stall and saving that it did, the next agent finishes the reversal rather than enabling the patch again', async () => {
    const module = await writeSimModule(PATCH2, KERNEL);
    await nodeWithEntry(NODE2, {
      livePatch: 'lp-restart-unsaved',
      patchName: PATCH2,
      state: 'Enabled',
      module: { hostPath: module.hostPath, sha256: module.sha256 },
      generation: 1,
      stallTimeout: '3s',
    } as DesiredPatch);
    const kernel = new SimulatedKernel({
      release: KERNEL,
      clock: systemClock,
      knobs: () => ({ ...DEFAULT_SIM_KNOBS, stuckTasks: 1, transitionSeconds: 3 }),
    });
    const dir = await mkdtemp(join(tmpdir(), 'agent-unsaved-'));
    const path = join(dir, 'agent-state.json');
    // The first agent "dies" at its first save once the kernel is reversing: that save never lands.
    let release = (): void => undefined;
    class DiesOnceReversing extends NodeStateFile {
      override save(
        desired: readonly DesiredPatch[],
        patches: readonly ObservedPatch[],
      ): Promise<void> {
        if (kernel.sysfsEntry(PATCH2)?.enabled !== false) return super.save(desired, patches);
        return new Promise((resolve) => (release = resolve));
      }
    }
    const first = agentOn(NODE2, kernel, dir, new DiesOnceReversing(path, NODE2, log));
    await first.start();
    await waitUntil(
      'the first agent to reverse the stall',
      () => Promise.resolve(kernel.sysfsEntry(PATCH2)?.enabled),
      (e) => e === false,
      30_000,
      20,
    );
    const enabled = watchEnabled(kernel, PATCH2);
    const second = agentOn(NODE2, kernel, dir, new NodeStateFile(path, NODE2, log));
    try {
      await second.start();
      await waitUntil(
        'the second agent to report the stall reversed and unloaded',
        async () => (await kubectlJson<LivePatchNode>(['get', 'lpn', NODE2])).status?.patches?.[0],
        (p) => p?.phase === 'Stalled' && /unloaded/.test(p.message ?? ''),
        30_000,
      );
      expect(enabled.seen()).toBe(false);
      expect(kernel.state().loads).toEqual({ [PATCH2]: 1 });
    } finally {
      enabled.stop();
      await second.stop();
      release();
      await first.stop();
    }
  });
});
