// The chart, run as a cluster runs it: `helm install` (CRDs from the chart)
// into a cluster with a controller-manager, a scheduler, and real kubelets
// with containerd (lab/kubelet); the Pods are the built image, imported into
// each node's containerd, and the operator's processes hold nothing but their
// Pods' service-account tokens. Then what an administrator
// does and sees: a rollout, a rollback, each agent held to its own node,
// Pod Security, `helm upgrade`, `helm uninstall`. Needs root (see
// support/cluster-host.ts); skipped elsewhere, unless required.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import type { LivePatch, LivePatchNode } from '../../src/api/generated/types.js';
import { repositoryRoot } from '../../src/paths.js';
import { clusterHostProblem, clusterTestsRequired } from '../support/cluster-host.js';
import { buildTestImage, TEST_IMAGE } from '../support/image.js';
import { startKubeletCluster, type KubeletCluster } from '../../lab/kubelet/cluster.js';
import type { Pod } from '../support/pods.js';
import type { KubectlResult } from '../support/kubectl.js';
import { writeSimModule } from '../../lab/sim-modules.js';
import { waitUntil } from '../../lab/wait.js';

// What each real kubelet reports for its node, and so the simulator's kernel.
const KERNEL = release();
const NODES = ['node-a', 'node-b', 'node-c'];
const NS = 'livepatch-system';
const RELEASE = 'lp';
const CHART = join(repositoryRoot(), 'charts', 'livepatch-operator');
const AGENT_SA = `system:serviceaccount:${NS}:${RELEASE}-livepatch-operator-agent`;
const CONTROLLER = `${RELEASE}-livepatch-operator-controller`;
// ServiceAccounts bound to the built-in edit: cluster-wide, and in NS only.
const EDITOR = 'editor';
const NAMESPACE_EDITOR = 'ns-editor';
const [repository, tag] = TEST_IMAGE.split(/:(?=[^:]+$)/);
const IMAGE_VALUES = [
  '--set',
  `image.repository=${repository ?? ''}`,
  '--set',
  `image.tag=${tag ?? ''}`,
];
const SIMULATOR = ['--set', 'agent.backend=simulator', ...IMAGE_VALUES];

const skipReason = await clusterHostProblem();
if (skipReason) process.stderr.write(`chart test skipped: ${skipReason}\n`);
if (skipReason && clusterTestsRequired()) {
  test('the chart test is required on this machine (LIVEPATCH_CLUSTER_TESTS=require)', () => {
    throw new Error(`the chart test cannot run: ${skipReason}`);
  });
}
const suite = skipReason ? describe.skip : describe;

let cluster: KubeletCluster;
let dir: string;

beforeAll(async () => {
  if (skipReason) return;
  dir = await mkdtemp(join(tmpdir(), 'chart-test-'));
  const image = await buildTestImage(join(dir, 'image.oci.tar'));
  cluster = await startKubeletCluster({
    nodes: NODES.map((name) => ({ name })),
    images: [image.archive],
  });
}, 1_800_000);

afterAll(async () => {
  if (skipReason) return;
  try {
    // Undefined when the image or the cluster did not start: the folder still goes.
    await (cluster as KubeletCluster | undefined)?.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

async function diagnosed<T>(what: Promise<T>): Promise<T> {
  try {
    return await what;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n\n${await cluster.diagnostics()}`, { cause: err });
  }
}

async function helmOk(args: readonly string[]): Promise<string> {
  const r = await cluster.helm(args);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function pods(component: 'agent' | 'controller'): Promise<Pod[]> {
  const list = await cluster.kubectlJson<{ items: Pod[] }>([
    'get',
    'pods',
    '-n',
    NS,
    '-l',
    `app.kubernetes.io/component=${component}`,
  ]);
  return list.items.filter((p) => !p.metadata.deletionTimestamp);
}

async function agentOn(node: string): Promise<Pod> {
  const pod = (await pods('agent')).find((p) => p.spec.nodeName === node);
  if (!pod) throw new Error(`no agent pod on ${node}`);
  return pod;
}

function livePatch(
  name: string,
  module: { configMap: object; sha256: string },
  spec: object = {},
): string {
  return JSON.stringify({
    apiVersion: 'livepatch.io/v1alpha1',
    kind: 'LivePatch',
    metadata: { name },
    spec: {
      patchName: `livepatch_${name.replaceAll('-', '_')}`,
      kernels: [{ release: KERNEL, module }],
      rollout: { maxUnavailable: 1 },
      ...spec,
    },
  });
}

/** A simulated module in a ConfigMap of the module namespace, where the agents read them. */
async function moduleConfigMap(
  name: string,
  namespace = NS,
): Promise<{ configMap: object; sha256: string }> {
  const file = await writeSimModule(`livepatch_${name.replaceAll('-', '_')}`, KERNEL);
  await cluster.kubectlOk([
    'create',
    'configmap',
    `module-${name}`,
    '-n',
    namespace,
    `--from-file=module.ko=${file.hostPath}`,
  ]);
  return {
    configMap: { namespace, name: `module-${name}`, key: 'module.ko' },
    sha256: file.sha256,
  };
}

const getLp = (name: string): Promise<LivePatch> =>
  cluster.kubectlJson<LivePatch>(['get', 'lp', name]);

/** A memory quantity in Mi or Gi, in bytes. */
function bytes(quantity: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (!m) throw new Error(`unexpected memory quantity ${quantity}`);
  return Number(m[1]) * 1024 ** (m[2] === 'Gi' ? 3 : 2);
}

/** When the agent of `pod` logged `writing enabled=0` for a stall (its JSON log lines). */
async function reversalLogged(node: string, pod: Pod): Promise<number | undefined> {
  const ref = { namespace: NS, name: pod.metadata.name, uid: pod.metadata.uid };
  for (const line of await cluster.containerLog(node, ref, 'agent')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { message?: string; why?: string; timestamp?: string };
    if (entry.message === 'writing enabled=0' && entry.why === 'stalled')
      return Date.parse(entry.timestamp ?? '');
  }
  return undefined;
}

/** Sends one merge PATCH with `token` from inside the cluster's network; prints status and message. */
const PATCH_SCRIPT = `
const [url, ca, token, body] = process.argv.slice(1);
const req = require('node:https').request(url, {
  method: 'PATCH', ca,
  headers: { authorization: 'Bearer ' + token, 'content-type': 'application/merge-patch+json' },
}, (res) => {
  let text = '';
  res.on('data', (d) => (text += d));
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, message: JSON.parse(text).message ?? '' })));
});
req.end(body);
`;

/** A PATCH to the API server with a token, from inside the cluster, never applied (dryRun). */
async function patchAs(
  token: string,
  path: string,
  body: object,
): Promise<{ status: number; message: string }> {
  // The admin kubeconfig is JSON (which is YAML too).
  const kubeconfig = parse(await readFile(cluster.kubeconfig, 'utf8')) as {
    clusters: { cluster: Record<string, string> }[];
  };
  const caData = kubeconfig.clusters[0]?.cluster['certificate-authority-data'] ?? '';
  const ca = Buffer.from(caData, 'base64');
  const r = await cluster.exec(process.execPath, [
    '-e',
    PATCH_SCRIPT,
    `https://10.0.0.1${path}?dryRun=All`,
    ca.toString(),
    token,
    JSON.stringify(body),
  ]);
  if (r.code !== 0) throw new Error(`the request failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { status: number; message: string };
}

/** `kubectl auth can-i` for `user`: 'yes' or 'no'. */
async function canI(
  user: string,
  verb: string,
  resource: string,
  ...more: string[]
): Promise<string> {
  const r = await cluster.kubectl(['auth', 'can-i', verb, resource, `--as=${user}`, ...more]);
  return r.stdout.trim();
}

/** A ServiceAccount in NS bound cluster-wide (or, with `namespaced`, in NS only) to a built-in role. */
async function boundTo(role: string, name: string, namespaced = false): Promise<string> {
  await cluster.kubectlOk(['create', 'serviceaccount', '-n', NS, name]);
  const binding = namespaced
    ? ['rolebinding', name, '-n', NS]
    : ['clusterrolebinding', `${NS}-${name}`];
  await cluster.kubectlOk([
    'create',
    ...binding,
    `--clusterrole=${role}`,
    `--serviceaccount=${NS}:${name}`,
  ]);
  return `system:serviceaccount:${NS}:${name}`;
}

/** `kubectl create --dry-run=server` of a LivePatch as `user`: checked and authorized, never stored. */
async function createLivePatchAs(user: string, ...more: string[]): Promise<KubectlResult> {
  const module = {
    configMap: { namespace: NS, name: 'any', key: 'module.ko' },
    sha256: 'a'.repeat(64),
  };
  return cluster.kubectl(
    ['create', '--dry-run=server', '-f', '-', `--as=${user}`, ...more],
    livePatch('lp-by-hand', module),
  );
}

async function tokenFor(serviceAccount: string, pod?: string): Promise<string> {
  const bound = pod ? ['--bound-object-kind', 'Pod', '--bound-object-name', pod] : [];
  return (await cluster.kubectlOk(['create', 'token', serviceAccount, '-n', NS, ...bound])).trim();
}

suite('the chart, installed with helm into a cluster', () => {
  test('helm install brings up the CRDs, the controller and one agent per node, under restricted Pod Security', async () => {
    await cluster.kubectlOk(['create', 'namespace', NS]);
    await cluster.kubectlOk([
      'label',
      'namespace',
      NS,
      'pod-security.kubernetes.io/enforce=restricted',
    ]);
    await diagnosed(
      helmOk(['install', RELEASE, CHART, '-n', NS, ...SIMULATOR, '--wait', '--timeout', '5m']),
    );
    expect(
      await cluster.kubectlOk([
        'get',
        'crd',
        'livepatches.livepatch.io',
        'livepatchnodes.livepatch.io',
        '-o',
        'name',
      ]),
    ).toContain('livepatches');
    const agents = await pods('agent');
    expect(agents.map((p) => p.spec.nodeName).sort()).toEqual(NODES);
    expect(await pods('controller')).toHaveLength(2);
    const lpns = await waitUntil(
      'every agent to report its node',
      () => cluster.kubectlJson<{ items: LivePatchNode[] }>(['get', 'lpn']),
      (l) =>
        l.items.length === NODES.length && l.items.every((n) => n.status?.backend === 'simulator'),
    );
    expect(lpns.items.map((n) => n.status?.kernelRelease)).toEqual(NODES.map(() => KERNEL));
    // Each agent names its Pod: the controller reads that Pod's readiness, and no heartbeat is written.
    for (const lpn of lpns.items) {
      const pod = agents.find((p) => p.spec.nodeName === lpn.metadata.name);
      expect(lpn.status?.agentPod).toEqual({
        name: pod?.metadata.name,
        namespace: NS,
        uid: pod?.metadata.uid,
      });
    }
    // The processes hold their Pods' tokens, nothing else: no kubeconfig in any container's environment.
    for (const pod of [...agents, ...(await pods('controller'))])
      expect(pod.spec.containers[0]?.env?.map((e) => e.name)).not.toContain('KUBECONFIG');
    const lease = await cluster.kubectlJson<{ spec: { holderIdentity: string } }>([
      'get',
      'lease',
      '-n',
      NS,
      'livepatch-controller',
    ]);
    expect((await pods('controller')).map((p) => p.metadata.name)).toContain(
      lease.spec.holderIdentity.replace(/-\d+$/, ''),
    );
  });

  test('the two controller replicas sit on two nodes, and their budget lets a drain evict one at a time', async () => {
    const nodes = (await pods('controller')).map((p) => p.spec.nodeName);
    expect(new Set(nodes).size).toBe(2);
    // The status the cluster's disruption controller computes, which an eviction obeys.
    const pdb = await waitUntil(
      'the disruption controller to count the controller Pods',
      () =>
        cluster.kubectlJson<{ status?: Record<string, number> }>([
          'get',
          'pdb',
          '-n',
          NS,
          CONTROLLER,
        ]),
      (b) => b.status?.['expectedPods'] === 2 && b.status['currentHealthy'] === 2,
    );
    expect(pdb.status).toMatchObject({ desiredHealthy: 1, disruptionsAllowed: 1 });
    expect(
      (await cluster.kubectlJson<{ items: unknown[] }>(['get', 'pdb', '-n', NS])).items,
    ).toHaveLength(1);
  });

  test("the kernel holds every operator container to its chart's memory limit", async () => {
    for (const pod of [...(await pods('agent')), ...(await pods('controller'))]) {
      for (const status of pod.status?.containerStatuses ?? []) {
        const spec = pod.spec.containers.find((c) => c.name === status.name);
        const limit = spec?.resources?.limits?.['memory'] ?? '';
        const enforced = await cluster.containerMemoryLimit(
          pod.spec.nodeName ?? '',
          pod.metadata.uid,
          (pod.status?.qosClass ?? '').toLowerCase(),
          (status.containerID ?? '').replace(/^containerd:\/\//, ''),
        );
        expect({ pod: pod.metadata.name, enforced }).toEqual({
          pod: pod.metadata.name,
          enforced: bytes(limit),
        });
      }
    }
  });

  test('a LivePatch from a ConfigMap in the module namespace rolls out to Complete', async () => {
    const module = await moduleConfigMap('lp-one');
    await cluster.kubectlOk(['apply', '-f', '-'], livePatch('lp-one', module));
    await diagnosed(
      cluster.kubectlOk(['wait', '--for=condition=Complete', 'lp/lp-one', '--timeout=120s']),
    );
    expect((await getLp('lp-one')).status?.summary).toBe(`${NODES.length}/${NODES.length}`);
  });

  test('a stall rolls the patch back on every node, under the chart identities', async () => {
    await cluster.kubectlOk([
      'annotate',
      'node',
      'node-b',
      'sim.livepatch.io/stuck-tasks=1',
      'sim.livepatch.io/transition-seconds=1',
    ]);
    const module = await moduleConfigMap('lp-stall');
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      livePatch('lp-stall', module, { stall: { timeout: '5s', action: 'Rollback' } }),
    );
    const rolledBack = await diagnosed(
      waitUntil(
        'RolledBack',
        () => getLp('lp-stall'),
        (lp) => lp.status?.phase === 'RolledBack',
        120_000,
      ),
    );
    expect(rolledBack.status?.stalledNodes?.map((s) => s.node)).toContain('node-b');
    const events = await cluster.kubectlJson<{
      items: { reason: string; involvedObject: { name: string } }[];
    }>(['get', 'events', '-n', 'default']);
    expect(
      events.items.filter((e) => e.involvedObject.name === 'lp-stall').map((e) => e.reason),
    ).toContain('NodeStalled');
    await cluster.kubectlOk(['annotate', 'node', 'node-b', 'sim.livepatch.io/stuck-tasks-']);
  });
});

suite('an API server outage', () => {
  test("node-c's agent reverses a stalling transition on time with the API server gone, and its kubelet keeps it running", async () => {
    await cluster.kubectlOk([
      'annotate',
      'node',
      'node-c',
      '--overwrite',
      'sim.livepatch.io/stuck-tasks=1',
      'sim.livepatch.io/transition-seconds=1',
    ]);
    const module = await moduleConfigMap('lp-outage');
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      livePatch('lp-outage', module, { stall: { timeout: '8s', action: 'Rollback' } }),
    );
    const agent = await agentOn('node-c');
    const started = await diagnosed(
      waitUntil(
        'node-c to start the transition',
        async () =>
          (
            await cluster.kubectlJson<LivePatchNode>(['get', 'lpn', 'node-c'])
          ).status?.patches?.find((p) => p.livePatch === 'lp-outage'),
        (p) => p?.phase === 'Transitioning',
        120_000,
      ),
    );
    await cluster.control('stop-apiserver');
    try {
      const reversedAt = await waitUntil(
        'the node guard to reverse the transition with the API server gone',
        () => reversalLogged('node-c', agent),
        (t) => t !== undefined,
        60_000,
      );
      const late = (reversedAt ?? 0) - Date.parse(started?.transitionStartTime ?? '') - 8000;
      expect(late).toBeGreaterThanOrEqual(0);
      expect(late).toBeLessThan(10_000);
      process.stdout.write(
        `outage guard in a real Pod: reversed ${late} ms after the 8 s stall timeout\n`,
      );
    } finally {
      await cluster.control('start-apiserver');
    }
    const truth = await diagnosed(
      waitUntil(
        'node-c to report the reversal',
        async () =>
          (
            await cluster.kubectlJson<LivePatchNode>(['get', 'lpn', 'node-c'])
          ).status?.patches?.find((p) => p.livePatch === 'lp-outage'),
        (p) => p?.phase === 'Stalled' && /reversed on the node/.test(p.message ?? ''),
        90_000,
      ),
    );
    expect(truth?.message).toContain('did not finish within 8s');
    // The liveness probe held through the outage: the same container, never restarted.
    const after = await agentOn('node-c');
    expect(after.metadata.uid).toBe(agent.metadata.uid);
    expect(after.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    await cluster.kubectlOk(['annotate', 'node', 'node-c', 'sim.livepatch.io/stuck-tasks-']);
    await diagnosed(cluster.kubectlOk(['delete', 'lp', 'lp-outage', '--timeout=120s']));
  }, 300_000);
});

suite('least privilege', () => {
  test("node-a's agent token is refused on node-b's LivePatchNode, status included, and allowed on its own", async () => {
    const token = await tokenFor(
      `${RELEASE}-livepatch-operator-agent`,
      (await agentOn('node-a')).metadata.name,
    );
    const status = { status: { patchedCount: 3 } };
    const other = await patchAs(
      token,
      '/apis/livepatch.io/v1alpha1/livepatchnodes/node-b/status',
      status,
    );
    expect(other.status).toBe(403);
    expect(other.message).toContain(
      'the livepatch agent of node node-a may write only its own LivePatchNode, not node-b',
    );
    expect(
      (await patchAs(token, '/apis/livepatch.io/v1alpha1/livepatchnodes/node-a/status', status))
        .status,
    ).toBe(200);
    const unbound = await patchAs(
      await tokenFor(`${RELEASE}-livepatch-operator-agent`),
      '/apis/livepatch.io/v1alpha1/livepatchnodes/node-a/status',
      status,
    );
    expect(unbound.status).toBe(403);
    expect(unbound.message).toContain('names no node');
  });

  test("the controller's token is not confined to a node", async () => {
    const controller = (await pods('controller'))[0]?.metadata.name ?? '';
    const token = await tokenFor(`${RELEASE}-livepatch-operator-controller`, controller);
    const r = await patchAs(token, '/apis/livepatch.io/v1alpha1/livepatchnodes/node-b', {
      metadata: { annotations: { checked: 'yes' } },
    });
    expect(r).toEqual({ status: 200, message: '' });
  });

  test.each([
    ['get', 'configmaps', NS, 'yes'],
    ['get', 'configmaps', 'kube-system', 'no'],
    ['list', 'configmaps', NS, 'no'],
    ['create', 'events', 'default', 'yes'],
    ['create', 'events', NS, 'no'],
    ['get', 'secrets', NS, 'no'],
  ])('the agent may %s %s in %s: %s', async (verb, resource, namespace, answer) => {
    const r = await cluster.kubectl([
      'auth',
      'can-i',
      verb,
      resource,
      '-n',
      namespace,
      `--as=${AGENT_SA}`,
    ]);
    expect(r.stdout.trim()).toBe(answer);
  });
});

suite('ClusterRoles for people, through the built-in view and edit', () => {
  test('view, bound cluster-wide, reads LivePatches and LivePatchNodes and writes nothing', async () => {
    const viewer = await boundTo('view', 'viewer');
    // The cluster's aggregation controller adds the chart's roles to view and edit.
    await waitUntil(
      'view to aggregate the LivePatch reader',
      () => canI(viewer, 'get', 'livepatches'),
      (answer) => answer === 'yes',
    );
    expect(await canI(viewer, 'watch', 'livepatchnodes')).toBe('yes');
    expect(await canI(viewer, 'create', 'livepatches')).toBe('no');
  });

  test('edit reads LivePatches, and by default may not create them', async () => {
    const editor = await boundTo('edit', EDITOR);
    await boundTo('edit', NAMESPACE_EDITOR, true);
    expect(await canI(editor, 'list', 'livepatches')).toBe('yes');
    const refused = await createLivePatchAs(editor);
    expect(refused.stderr).toContain('cannot create resource "livepatches"');
  });
});

suite('helm upgrade and uninstall, as the README says', () => {
  test('CRDs are applied first; an upgrade with new values replaces each agent without a second one on its node', async () => {
    await cluster.kubectlOk([
      'apply',
      '--server-side',
      '--force-conflicts',
      '-f',
      join(CHART, 'crds'),
    ]);
    const before = new Set((await pods('agent')).map((p) => p.metadata.name));
    // Agent processes running on each node (in its kubelet's cgroups), sampled through the upgrade.
    const most = new Map<string, number>();
    const upgrade = { running: true };
    const sampling = (async () => {
      while (upgrade.running) {
        for (const node of NODES) {
          const agents = (await cluster.nodeProcesses(node)).filter((argv) =>
            argv.includes('agent'),
          ).length;
          most.set(node, Math.max(most.get(node) ?? 0, agents));
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await diagnosed(
      helmOk([
        'upgrade',
        RELEASE,
        CHART,
        '-n',
        NS,
        ...SIMULATOR,
        '--set',
        'agent.logLevel=debug',
        '--set',
        'controller.replicas=1',
        '--set',
        'rbac.aggregateToDefaultRoles.edit=true',
        '--wait',
        '--timeout',
        '5m',
      ]),
    );
    upgrade.running = false;
    await sampling;
    expect(Object.fromEntries(most)).toEqual(Object.fromEntries(NODES.map((n) => [n, 1])));
    const after = await pods('agent');
    expect(after.map((p) => p.spec.nodeName).sort()).toEqual(NODES);
    expect(after.some((p) => before.has(p.metadata.name))).toBe(false);
    for (const p of after)
      expect(p.spec.containers[0]?.env?.find((e) => e.name === 'LOG_LEVEL')?.value).toBe('debug');
    expect(await pods('controller')).toHaveLength(1);
    // One replica has no budget: evicting it is the only way to drain its node.
    expect(
      (await cluster.kubectlJson<{ items: unknown[] }>(['get', 'pdb', '-n', NS])).items,
    ).toEqual([]);
    // A simulated kernel lives in its agent: each new agent loads the patch again.
    await diagnosed(
      cluster.kubectlOk(['wait', '--for=condition=Complete', 'lp/lp-one', '--timeout=180s']),
    );
  }, 600_000);

  test('with aggregateToDefaultRoles.edit, edit bound cluster-wide writes LivePatches, never LivePatchNodes nor a status', async () => {
    const editor = `system:serviceaccount:${NS}:${EDITOR}`;
    await waitUntil(
      'edit to aggregate the LivePatch editor',
      () => canI(editor, 'create', 'livepatches'),
      (answer) => answer === 'yes',
    );
    for (const verb of ['patch', 'update', 'delete'])
      expect(await canI(editor, verb, 'livepatches')).toBe('yes');
    expect(await canI(editor, 'patch', 'livepatches', '--subresource=status')).toBe('no');
    expect(await canI(editor, 'patch', 'livepatchnodes')).toBe('no');
    expect(await canI(editor, 'patch', 'livepatchnodes', '--subresource=status')).toBe('no');
    expect(await createLivePatchAs(editor)).toMatchObject({ code: 0, stderr: '' });
    // LivePatches are cluster-scoped: edit bound in one namespace grants nothing on them
    // (a real request: `kubectl auth can-i -n` would ask about the namespace).
    const namespaced = await createLivePatchAs(
      `system:serviceaccount:${NS}:${NAMESPACE_EDITOR}`,
      '-n',
      NS,
    );
    expect(namespaced.stderr).toContain('cannot create resource "livepatches"');
  });

  test('uninstall removes the operator and keeps the CRDs and LivePatches; a LivePatch deleted afterwards waits on its finalizer', async () => {
    await diagnosed(cluster.kubectlOk(['delete', 'lp', 'lp-one', '--timeout=120s']));
    const lpns = await cluster.kubectlJson<{ items: LivePatchNode[] }>(['get', 'lpn']);
    expect(lpns.items.flatMap((n) => n.spec.patches ?? []).map((p) => p.livePatch)).not.toContain(
      'lp-one',
    );
    await helmOk(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '3m']);
    await waitUntil(
      'the operator pods to go',
      async () => [...(await pods('agent')), ...(await pods('controller'))],
      (p) => p.length === 0,
    );
    expect(
      (
        await cluster.kubectl([
          'get',
          'validatingadmissionpolicy',
          `${RELEASE}-livepatch-operator-agent-own-node`,
        ])
      ).code,
    ).not.toBe(0);
    expect((await getLp('lp-stall')).metadata.finalizers).toEqual(['livepatch.io/unpatch-nodes']);
    await cluster.kubectlOk(['delete', 'lp', 'lp-stall', '--wait=false']);
    const held = await getLp('lp-stall');
    expect(held.metadata.deletionTimestamp).toBeDefined();
    await cluster.kubectlOk([
      'patch',
      'lp',
      'lp-stall',
      '--type=merge',
      '-p',
      '{"metadata":{"finalizers":null}}',
    ]);
    await waitUntil(
      'the LivePatch to go',
      () => cluster.kubectl(['get', 'lp', 'lp-stall']),
      (r) => r.code !== 0,
    );
  });
});

// Last: a second release (even a dry run) would collide with the first one's cluster-wide objects.
suite('Pod Security, by the API server itself', () => {
  /** The chart's Pod template of `kind`, as the API server would get it from its controller. */
  async function podFrom(
    kind: 'DaemonSet' | 'Deployment',
    values: readonly string[],
    namespace: string,
  ): Promise<string> {
    const rendered = await helmOk([
      'template',
      RELEASE,
      CHART,
      '-n',
      namespace,
      ...IMAGE_VALUES,
      ...values,
    ]);
    const workload = parseAllDocuments(rendered)
      .map(
        (d) =>
          d.toJS() as { kind?: string; spec?: { template: { metadata: object; spec: object } } },
      )
      .find((o) => o.kind === kind);
    if (!workload?.spec) throw new Error(`no ${kind} rendered`);
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        ...workload.spec.template.metadata,
        name: `psa-${kind.toLowerCase()}`,
        namespace,
      },
      spec: workload.spec.template.spec,
    });
  }

  async function namespace(name: string, level: string): Promise<void> {
    await cluster.kubectlOk(['create', 'namespace', name]);
    await cluster.kubectlOk([
      'label',
      'namespace',
      name,
      `pod-security.kubernetes.io/enforce=${level}`,
    ]);
    await cluster.kubectlOk([
      'create',
      'serviceaccount',
      '-n',
      name,
      `${RELEASE}-livepatch-operator-agent`,
    ]);
    await cluster.kubectlOk([
      'create',
      'serviceaccount',
      '-n',
      name,
      `${RELEASE}-livepatch-operator-controller`,
    ]);
  }

  test('a baseline namespace refuses the sysfs agent; restricted admits the controller and the simulator agent', async () => {
    await namespace('psa-baseline', 'baseline');
    await namespace('psa-restricted', 'restricted');
    const sysfs = await cluster.kubectl(
      ['create', '--dry-run=server', '-f', '-'],
      await podFrom('DaemonSet', [], 'psa-baseline'),
    );
    expect(sysfs.code).not.toBe(0);
    expect(sysfs.stderr).toContain('violates PodSecurity "baseline:latest"');
    expect(sysfs.stderr).toMatch(/host namespaces \(hostPID=true\)/);
    expect(sysfs.stderr).toMatch(/privileged/);
    for (const [kind, values] of [
      ['Deployment', []],
      ['DaemonSet', ['--set', 'agent.backend=simulator']],
    ] as const) {
      const r = await cluster.kubectl(
        ['create', '--dry-run=server', '-f', '-'],
        await podFrom(kind, values, 'psa-restricted'),
      );
      expect({ kind, code: r.code, stderr: r.stderr }).toEqual({ kind, code: 0, stderr: '' });
    }
  });

  test('helm install into a namespace enforcing baseline fails with the fix, before anything is created', async () => {
    const r = await cluster.helm([
      'install',
      'lp-baseline',
      CHART,
      '-n',
      'psa-baseline',
      ...IMAGE_VALUES,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      'namespace psa-baseline enforces Pod Security "baseline", which refuses the sysfs agent',
    );
    expect(r.stderr).toContain(
      'kubectl label namespace psa-baseline pod-security.kubernetes.io/enforce=privileged',
    );
    expect((await cluster.helm(['list', '-n', 'psa-baseline', '-q'])).stdout.trim()).toBe('');
  });

  test('in a namespace without a Pod Security label, NOTES say how to check and allow the agent', async () => {
    await cluster.kubectlOk(['create', 'namespace', 'psa-unlabelled']);
    const notes = await helmOk([
      'install',
      'lp-notes',
      CHART,
      '-n',
      'psa-unlabelled',
      ...IMAGE_VALUES,
      '--dry-run=server',
    ]);
    expect(notes).toContain('no pod-security.kubernetes.io/enforce');
    expect(notes).toContain(
      'kubectl label namespace psa-unlabelled pod-security.kubernetes.io/enforce=privileged',
    );
    expect(notes).toContain('whoever may create or change a LivePatch loads kernel code, as\nroot');
    expect(notes).toContain('ClusterRole lp-notes-livepatch-operator-edit grants that');
  });
});

// After the first release is gone: the sysfs agent in a real privileged, hostPID container.
suite('the sysfs agent on this kernel', () => {
  test('in a privileged namespace it reports NoLivepatchSupport on every node, and enables a patch for this kernel on none', async () => {
    const ns = 'lp-sysfs';
    await cluster.kubectlOk(['create', 'namespace', ns]);
    await cluster.kubectlOk([
      'label',
      'namespace',
      ns,
      'pod-security.kubernetes.io/enforce=privileged',
    ]);
    await diagnosed(
      helmOk([
        'install',
        ns,
        CHART,
        '-n',
        ns,
        ...IMAGE_VALUES,
        '--set',
        'controller.replicas=1',
        '--wait',
        '--timeout',
        '5m',
      ]),
    );
    const refused = await diagnosed(
      waitUntil(
        'every sysfs agent to report its kernel',
        () => cluster.kubectlJson<{ items: LivePatchNode[] }>(['get', 'lpn']),
        (l) =>
          NODES.every((node) =>
            l.items
              .find((n) => n.metadata.name === node)
              ?.status?.conditions?.some(
                (c) => c.type === 'Ready' && c.reason === 'NoLivepatchSupport',
              ),
          ),
      ),
    );
    for (const lpn of refused.items) {
      expect(lpn.status?.backend).toBe('sysfs');
      expect(lpn.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
        status: 'False',
        message: expect.stringContaining('built without livepatch support') as unknown,
      });
    }
    // A patch for this very kernel: a node may be handed it, never enabled, and its agent
    // answers with the kernel's refusal; no node counts as patched.
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      livePatch('lp-sysfs', await moduleConfigMap('lp-sysfs', ns)),
    );
    const judged = await diagnosed(
      waitUntil(
        'the controller to judge the LivePatch',
        () => getLp('lp-sysfs'),
        (lp) => lp.status?.observedGeneration === 1,
      ),
    );
    expect(judged.status?.summary).toBe(`0/${NODES.length}`);
    const mine = <T extends { livePatch?: string }>(list: readonly T[] | undefined): T[] =>
      (list ?? []).filter((p) => p.livePatch === 'lp-sysfs');
    for (const lpn of (await cluster.kubectlJson<{ items: LivePatchNode[] }>(['get', 'lpn']))
      .items) {
      expect(mine(lpn.spec.patches).map((p) => p.state)).not.toContain('Enabled');
      for (const observed of mine(lpn.status?.patches)) {
        expect(observed.phase).toBe('Failed');
        expect(observed.message).toContain('built without livepatch support (CONFIG_LIVEPATCH)');
      }
    }
    await diagnosed(cluster.kubectlOk(['delete', 'lp', 'lp-sysfs', '--timeout=120s']));
    await helmOk(['uninstall', ns, '-n', ns, '--wait', '--timeout', '3m']);
  }, 600_000);
});
