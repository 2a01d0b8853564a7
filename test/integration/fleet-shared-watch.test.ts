// The fleet simulator's agents share one watch of the LivePatchNodes: each
// agent must still see its own object only, be woken by its own changes only,
// and write its own status, as an agent with a watch of its own does.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startFleet, type Fleet } from '../../lab/fleet/fleet.js';
import { agentPodName } from '../../lab/fleet/agent-pods.js';
import { SharedNodeWatch } from '../../lab/fleet/shared-node-watch.js';
import { writeSimModule } from '../../lab/sim-modules.js';
import { waitUntil } from '../../lab/wait.js';
import type { LivePatchNode } from '../../src/api/generated/types.js';
import type { NodeName } from '../../src/api/names.js';
import { systemClock } from '../../src/clock.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { createLogger } from '../../src/log.js';
import { kubectlJson, kubectlOk, kubeconfigPath } from '../support/kubectl.js';

const KERNEL = '6.1.0-26-amd64';
const log = createLogger({ component: 'fleet', level: 'error', format: 'text' });
let fleet: Fleet;
let a: NodeName;
let b: NodeName;

beforeAll(async () => {
  // With Pods the agents write no heartbeat: once started, a LivePatchNode changes only when asked to.
  fleet = await startFleet({
    kubeConfig: loadKubeConfig(kubeconfigPath()),
    nodes: 2,
    kernels: [KERNEL],
    namePrefix: 'shared-watch',
    clock: systemClock,
    log,
    pods: { namespace: 'default' },
  });
  [a, b] = fleet.nodes as [NodeName, NodeName];
});

afterAll(async () => {
  await fleet.stop();
});

const lpn = (node: NodeName): Promise<LivePatchNode> =>
  kubectlJson<LivePatchNode>(['get', 'lpn', node]);

describe('agents sharing one LivePatchNode watch', () => {
  test("each writes its own node's status, and only the agent whose spec changed acts on it", async () => {
    for (const node of [a, b]) {
      const own = await waitUntil(
        `${node}'s own report`,
        () => lpn(node),
        (o) => o.status?.agentPod !== undefined,
      );
      expect(own.status).toMatchObject({
        kernelRelease: KERNEL,
        agentPod: { name: agentPodName(node) },
      });
    }
    const module = await writeSimModule('livepatch_shared_watch', KERNEL);
    const entry = {
      livePatch: 'lp-shared-watch',
      patchName: 'livepatch_shared_watch',
      state: 'Enabled',
      module: { hostPath: module.hostPath, sha256: module.sha256 },
      generation: 1,
      stallTimeout: '60s',
    };
    await kubectlOk([
      'patch',
      'lpn',
      a,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { patches: [entry] } }),
    ]);
    // A third of the idle agent's 30 s pass: only the watch's wake-up gets it there in time
    // (a periodic pass could land in a longer wait and hide a broken wake-up).
    const patched = await waitUntil(
      `${a} to report the patch`,
      () => lpn(a),
      (o) => o.status?.patches?.[0]?.phase === 'Patched',
      10_000,
    );
    expect(patched.status?.agentPod?.name).toBe(agentPodName(a));
    expect(await fleet.kernel(a)?.isLoaded('livepatch_shared_watch' as never)).toBe(true);
    expect(await fleet.kernel(b)?.isLoaded('livepatch_shared_watch' as never)).toBe(false);
    expect((await lpn(b)).status?.patches ?? []).toEqual([]);
  });

  test("a view holds its own node's object only, and wakes only for it", async () => {
    const watch = new SharedNodeWatch(loadKubeConfig(kubeconfigPath()), log);
    const wakes = { a: 0, b: 0 };
    const viewA = watch.view(a, () => wakes.a++);
    const viewB = watch.view(b, () => wakes.b++);
    viewA.start();
    viewB.start();
    watch.start();
    try {
      await viewA.waitForSync();
      expect(viewA.get(a)?.metadata.name).toBe(a);
      expect(viewA.get(b)).toBeUndefined();
      expect(viewB.get(a)).toBeUndefined();
      const listed = { ...wakes };
      await kubectlOk(['annotate', 'lpn', b, '--overwrite', 'test.livepatch.io/poke=1']);
      await waitUntil(
        `${b}'s view to see the annotation`,
        () => Promise.resolve(viewB.get(b)?.metadata.annotations?.['test.livepatch.io/poke']),
        (v) => v === '1',
      );
      // One event, one wake-up, and for its node's agent alone.
      expect(wakes).toEqual({ a: listed.a, b: listed.b + 1 });
      viewB.stop();
      await kubectlOk(['annotate', 'lpn', b, '--overwrite', 'test.livepatch.io/poke=2']);
      await kubectlOk(['annotate', 'lpn', a, '--overwrite', 'test.livepatch.io/poke=2']);
      await waitUntil(
        `${a}'s view to see the annotation`,
        () => Promise.resolve(viewA.get(a)?.metadata.annotations?.['test.livepatch.io/poke']),
        (v) => v === '2',
      );
      // A stopped agent is woken no more.
      expect(wakes).toEqual({ a: listed.a + 1, b: listed.b + 1 });
    } finally {
      watch.stop();
    }
  });
});
