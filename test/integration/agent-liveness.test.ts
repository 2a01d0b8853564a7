// Liveness without status writes, on the real API server: agents with Pods
// write nothing while idle (heartbeat agents write every 30 s), and an agent
// that stops is taken for silent within the window, whichever way it stops:
// its process gone (its Pod not running, or deleted), its kernel loop stuck,
// or the API server unreachable from it. The last two run a real agent
// process whose /readyz the test probes as a kubelet would, writing the Pod's
// Ready condition only when it changes. The controller's graces are shortened
// by its flags here; their defaults are unit-tested (liveness.test.ts).
import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFleet } from '../../lab/fleet/fleet.js';
import { agentPodName, setAgentPod, type ContainerState } from '../../lab/fleet/agent-pods.js';
import { runOperator, type Running } from '../../lab/operator-process.js';
import { waitUntil } from '../../lab/wait.js';
import type { LivePatchNode } from '../../src/api/generated/types.js';
import type { NodeName } from '../../src/api/names.js';
import { systemClock } from '../../src/clock.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { Reflector } from '../../src/kube/reflector.js';
import { PATHS } from '../../src/kube/resources.js';
import { createLogger } from '../../src/log.js';
import { freePort, httpGet } from '../support/http.js';
import { kubectlJson, kubectlOk } from '../support/kubectl.js';
import { applyLivePatch, getLivePatch, nodeReports } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';

const KERNEL = '6.1.0-26-amd64';
const IDLE = 'idle';
const NODES = 4;
/** The controller's graces, shortened (defaults 15 s and 60 s). */
const UNREADY_GRACE_S = 2;
const DOWN_GRACE_S = 4;
/** The real agents' --unready-after (default 60 s). */
const UNREADY_AFTER_S = 5;
/** The test's kubelet probes every second; the status write and a shared machine's delays on top. */
const SLACK_MS = 6_000;
const quiet = createLogger({ component: 'liveness-test', format: 'text', level: 'error' });
// Registered before the cluster's own: Jest runs afterAll hooks in order, and these need its API server.
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});
const cluster = useOwnCluster({ nodes: NODES, kernels: [KERNEL], prefix: 'live', pods: true });

const nodes = (): readonly NodeName[] => cluster().fleet.nodes;

/** A LivePatch for `node` alone, that bakes for 10 minutes once Patched: the health gate is watching it. */
async function bakingOn(name: string, node: NodeName): Promise<void> {
  await kubectlOk(['label', 'node', node, `${name}=yes`]);
  await applyLivePatch(name, {
    kernel: KERNEL,
    spec: {
      nodeSelector: { matchLabels: { [name]: 'yes' } },
      rollout: { maxUnavailable: 1, bakeTime: '10m' },
    },
  });
  await waitUntil(
    `${node} to be Patched and baking ${name}`,
    () => nodeReports(name),
    (r) => r.get(node)?.phase === 'Patched',
    90_000,
  );
}

/** Waits until the bake of `name` fails on `node` because its agent fell silent for `why`; returns when. */
async function failedSilent(name: string, node: NodeName, why: string): Promise<number> {
  const lp = await waitUntil(
    `${name} to fail ${node} as AgentSilent (${why})`,
    () => getLivePatch(name),
    (l) =>
      (l.status?.unhealthyNodes ?? []).some((u) => u.node === node && u.reason === 'AgentSilent'),
    90_000,
    200,
  );
  const at = Date.now();
  const record = lp.status?.unhealthyNodes?.find((u) => u.node === node);
  expect(record?.message).toContain(
    `its agent's Pod default/${agentPodName(node)} has been ${why} for`,
  );
  return at;
}

/** LivePatchNode writes by node, counted from its watch once the cache has synced. */
async function countWrites(
  kubeconfig: string,
): Promise<{ writes: Map<string, number>; stop: () => void }> {
  const writes = new Map<string, number>();
  let counting = false;
  const reflector = new Reflector<LivePatchNode>(loadKubeConfig(kubeconfig), {
    path: PATHS.livePatchNodes,
    log: quiet,
    onChange: (name) => {
      if (counting) writes.set(name, (writes.get(name) ?? 0) + 1);
    },
  });
  reflector.start();
  await reflector.waitForSync();
  counting = true;
  return {
    writes,
    stop: () => {
      reflector.stop();
    },
  };
}

/**
 * A kubelet's readiness probe for one agent process: /readyz every second,
 * the Pod's status written only when the answer changes.
 */
function probeLikeAKubelet(kubeconfig: string, node: NodeName, port: number): () => void {
  const kc = loadKubeConfig(kubeconfig);
  let reported: ContainerState | undefined;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void httpGet(port, '/readyz')
      .then((r): ContainerState => (r.status === 200 ? 'ready' : 'unready'))
      .catch((): ContainerState => 'exited')
      .then(async (state) => {
        if (state !== reported) await setAgentPod(kc, 'default', node, state);
        reported = state;
      })
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, 1000);
  return () => {
    clearInterval(timer);
  };
}

/** One node's agent as a process of its own in its Pod (the fleet's in-process one stopped). */
async function agentProcess(
  node: NodeName,
  kubeconfig: string,
): Promise<{ agent: Running; port: number }> {
  await cluster().fleet.stopAgent(node);
  const pod = await kubectlJson<{ metadata: { uid: string } }>(['get', 'pod', agentPodName(node)]);
  const dir = await mkdtemp(join(tmpdir(), 'liveness-agent-'));
  const port = await freePort();
  const agent = runOperator(
    [
      'agent',
      '--backend=simulator',
      `--kubeconfig=${kubeconfig}`,
      `--node=${node}`,
      `--state-dir=${dir}`,
      `--module-dir=${join(dir, 'modules')}`,
      `--metrics-port=${port}`,
      `--unready-after=${UNREADY_AFTER_S}s`,
    ],
    { POD_NAME: agentPodName(node), POD_NAMESPACE: 'default', POD_UID: pod.metadata.uid },
  );
  cleanups.push(() => agent.stop('SIGKILL').then(() => undefined));
  await agent.waitFor(/agent running/);
  expect(agent.output()).toContain(`readiness of pod ${agentPodName(node)}`);
  const stopProbe = probeLikeAKubelet(cluster().plane.kubeconfig, node, port);
  cleanups.push(() => {
    stopProbe();
    return Promise.resolve();
  });
  return { agent, port };
}

/** A TCP relay to the API server that can be cut: the API server unreachable from one node only. */
async function cuttableRoute(server: string): Promise<{ port: number; cut: () => Promise<void> }> {
  const target = new URL(server);
  const sockets = new Set<Socket>();
  const relay: Server = createServer((inbound) => {
    const outbound = connect(Number(target.port), target.hostname);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => relay.listen(port, target.hostname, resolve));
  const cut = (): Promise<void> =>
    new Promise((resolve) => {
      relay.close(() => {
        resolve();
      });
      for (const s of sockets) s.destroy();
    });
  cleanups.push(cut);
  return { port, cut };
}

describe('agents with Pods', () => {
  test('an idle fleet with Pods writes no LivePatchNode status in a minute; agents without write one per 30 s each', async () => {
    const c = cluster();
    await c.startController('live-controller', 0, [
      `--agent-unready-grace=${UNREADY_GRACE_S}s`,
      `--agent-down-grace=${DOWN_GRACE_S}s`,
    ]);
    const beat = await startFleet({
      kubeConfig: loadKubeConfig(c.plane.kubeconfig),
      nodes: NODES,
      kernels: [KERNEL],
      namePrefix: 'beat',
      labels: { pool: 'heartbeat' },
      clock: systemClock,
      log: quiet,
    });
    cleanups.push(() => beat.stop());
    await applyLivePatch(IDLE, {
      kernel: KERNEL,
      spec: {
        rollout: { maxUnavailable: NODES },
        nodeSelector: { matchExpressions: [{ key: 'pool', operator: 'DoesNotExist' }] },
      },
    });
    await waitUntil(
      `${IDLE} to be Complete`,
      () => getLivePatch(IDLE),
      (l) => l.status?.phase === 'Complete',
      90_000,
    );
    const counted = await countWrites(c.plane.kubeconfig);
    const minute = 60_000;
    await new Promise((resolve) => setTimeout(resolve, minute));
    counted.stop();
    const sum = (prefix: string): number =>
      [...counted.writes].filter(([n]) => n.startsWith(prefix)).reduce((a, [, w]) => a + w, 0);
    const withPods = sum('live-');
    const withHeartbeats = sum('beat-');
    process.stdout.write(
      `idle LivePatchNode writes in 60 s: ${withPods} by ${NODES} agents with Pods, ${withHeartbeats} by ${NODES} with heartbeats (${((withHeartbeats / NODES / 60) * 1000).toFixed(1)} per second per 1,000 nodes)\n`,
    );
    expect(withPods).toBe(0);
    // N/30 a second: two writes per agent per minute, give or take one at either end.
    expect(withHeartbeats).toBeGreaterThanOrEqual(NODES);
    expect(withHeartbeats).toBeLessThanOrEqual(3 * NODES);
    // Each agent with a Pod names it once, in its status.
    const lpn = await kubectlJson<LivePatchNode>(['get', 'lpn', nodes()[0] ?? '']);
    expect(lpn.status?.agentPod?.name).toBe(agentPodName(nodes()[0] as NodeName));
  });

  test('a process gone fails its bake as AgentSilent once its Pod has not run, or been gone, for the grace', async () => {
    const [exited, deleted] = nodes();
    if (!exited || !deleted) throw new Error('too few nodes');
    const { fleet } = cluster();
    await bakingOn('gone-exited', exited);
    await bakingOn('gone-deleted', deleted);
    const stoppedAt = Date.now();
    await fleet.stopAgent(exited);
    const exitedSeen = (await failedSilent('gone-exited', exited, 'not running')) - stoppedAt;
    const deletedAt = Date.now();
    await fleet.setAgentPod(deleted, 'deleted');
    const deletedSeen = (await failedSilent('gone-deleted', deleted, 'gone')) - deletedAt;
    process.stdout.write(
      `agent process gone: silent after ${exitedSeen} ms (Pod not running), ${deletedSeen} ms (Pod deleted); grace ${DOWN_GRACE_S} s\n`,
    );
    for (const seen of [exitedSeen, deletedSeen]) {
      expect(seen).toBeGreaterThanOrEqual(DOWN_GRACE_S * 1000);
      expect(seen).toBeLessThan(DOWN_GRACE_S * 1000 + SLACK_MS);
    }
    // Back: the same Pod running again, and a new Pod whose agent names it.
    await fleet.restartAgent(exited);
    await fleet.stopAgent(deleted);
    await fleet.restartAgent(deleted);
    const named = await waitUntil(
      `${deleted}'s new agent to name its new Pod`,
      () => kubectlJson<LivePatchNode>(['get', 'lpn', deleted]),
      (l) => l.status?.agentPod !== undefined,
      30_000,
    );
    const pod = await kubectlJson<{ metadata: { uid: string } }>([
      'get',
      'pod',
      agentPodName(deleted),
    ]);
    expect(named.status?.agentPod?.uid).toBe(pod.metadata.uid);
  });

  test('a kernel loop stuck turns its /readyz false, its Pod NotReady, and fails its bake as AgentSilent', async () => {
    const node = nodes()[2];
    if (!node) throw new Error('too few nodes');
    const { port } = await agentProcess(node, cluster().plane.kubeconfig);
    await waitUntil(
      '/readyz to pass',
      () => httpGet(port, '/readyz'),
      (r) => r.status === 200,
      60_000,
    );
    await bakingOn('stuck-bake', node);
    // Another patch for this node, whose load never returns: the pass that loads it never ends.
    await kubectlOk(['annotate', 'node', node, 'sim.livepatch.io/load-hang=true']);
    await kubectlOk(['label', 'node', node, 'stuck-load=yes']);
    await applyLivePatch('stuck-load', {
      kernel: KERNEL,
      spec: { nodeSelector: { matchLabels: { 'stuck-load': 'yes' } } },
    });
    const hungAt = await waitUntil(
      'the agent to be asked for the load that hangs',
      async () => {
        const lpn = await kubectlJson<LivePatchNode>(['get', 'lpn', node]);
        return lpn.spec.patches?.some((p) => p.livePatch === 'stuck-load') ? Date.now() : undefined;
      },
      (t) => t !== undefined,
      60_000,
      200,
    );
    const ready = await waitUntil(
      '/readyz to fail',
      () => httpGet(port, '/readyz'),
      (r) => r.status === 503,
      30_000,
      200,
    );
    expect(ready.body).toMatch(/the kernel loop has been in one pass for \d+s/);
    // Liveness waits 2 minutes: readiness says it first; the kubelet would not restart it yet.
    expect((await httpGet(port, '/healthz')).status).toBe(200);
    const seen = (await failedSilent('stuck-bake', node, 'not Ready')) - (hungAt ?? 0);
    process.stdout.write(
      `kernel loop stuck: silent ${seen} ms after the hanging load was asked for (--unready-after ${UNREADY_AFTER_S} s, grace ${UNREADY_GRACE_S} s)\n`,
    );
    expect(seen).toBeLessThan((UNREADY_AFTER_S + UNREADY_GRACE_S) * 1000 + SLACK_MS);
  });

  test('an agent that cannot reach the API server turns its /readyz false, its Pod NotReady, and fails its bake as AgentSilent', async () => {
    const node = nodes()[3];
    if (!node) throw new Error('too few nodes');
    const { plane } = cluster();
    const route = await cuttableRoute(plane.server);
    const config = JSON.parse(await readFile(plane.kubeconfig, 'utf8')) as {
      clusters: { cluster: { server: string } }[];
    };
    const url = new URL(plane.server);
    for (const c of config.clusters) c.cluster.server = `https://${url.hostname}:${route.port}`;
    const routed = join(await mkdtemp(join(tmpdir(), 'liveness-route-')), 'kubeconfig');
    await writeFile(routed, JSON.stringify(config), { mode: 0o600 });
    const { port } = await agentProcess(node, routed);
    await waitUntil(
      '/readyz to pass',
      () => httpGet(port, '/readyz'),
      (r) => r.status === 200,
      60_000,
    );
    await bakingOn('cut-bake', node);
    const cutAt = Date.now();
    await route.cut();
    const ready = await waitUntil(
      '/readyz to fail',
      () => httpGet(port, '/readyz'),
      (r) => r.status === 503,
      30_000,
      200,
    );
    expect(ready.body).toMatch(/cannot reach the API server for \d+s/);
    expect(Date.now() - cutAt).toBeGreaterThanOrEqual(UNREADY_AFTER_S * 1000);
    const seen = (await failedSilent('cut-bake', node, 'not Ready')) - cutAt;
    process.stdout.write(
      `API server unreachable from the agent: silent ${seen} ms after the cut (--unready-after ${UNREADY_AFTER_S} s, grace ${UNREADY_GRACE_S} s)\n`,
    );
    expect(seen).toBeLessThan((UNREADY_AFTER_S + UNREADY_GRACE_S) * 1000 + SLACK_MS);
  });
});
