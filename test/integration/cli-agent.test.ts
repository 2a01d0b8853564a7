// The agent, fleet and sim-module commands as processes, as a DaemonSet pod or
// a person at a terminal runs them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { kubectl, kubectlJson, kubectlOk, kubeconfigPath } from '../support/kubectl.js';
import { freePort, httpGet } from '../support/http.js';
import { runOperator, type Running } from '../../lab/operator-process.js';
import { waitUntil } from '../../lab/wait.js';

const running: Running[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  await kubectl(['delete', 'node', 'cli-agent-node', 'kind-worker', '--ignore-not-found']);
  await kubectl(['delete', 'lpn', 'cli-agent-node', 'kind-worker', '--ignore-not-found']);
});

async function createNode(name: string, providerID: string): Promise<void> {
  const node = { apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: { providerID } };
  await kubectlOk(['apply', '-f', '-'], JSON.stringify(node));
}

describe('livepatch-operator agent', () => {
  test('runs for one node with the simulator and serves /healthz and /metrics', async () => {
    await createNode('cli-agent-node', 'livepatch-sim://cli-agent-node');
    const port = await freePort();
    // Its own state: the default folder would keep a simulated kernel from one run to the next.
    const stateDir = await mkdtemp(join(tmpdir(), 'livepatch-cli-agent-'));
    dirs.push(stateDir);
    const agent = runOperator(
      [
        'agent',
        `--state-dir=${stateDir}`,
        '--backend=simulator',
        '--kernel-release=6.8.0-45-generic',
        `--metrics-port=${port}`,
        `--kubeconfig=${kubeconfigPath()}`,
        '--module-dir=/tmp/livepatch-cli-agent',
      ],
      { NODE_NAME: 'cli-agent-node' },
    );
    running.push(agent);
    await agent.waitFor(/agent running/);
    const lpn = await waitUntil(
      'the agent to report',
      () =>
        kubectlJson<{ status?: { kernelRelease?: string; backend?: string } }>([
          'get',
          'lpn',
          'cli-agent-node',
        ]),
      (o) => o.status?.kernelRelease === '6.8.0-45-generic',
    );
    expect(lpn.status?.backend).toBe('simulator');
    expect((await httpGet(port, '/healthz')).status).toBe(200);
    const metrics = await httpGet(port, '/metrics');
    expect(metrics.body).toContain(
      'livepatch_agent_patches{phase="Patched",kernel_release="6.8.0-45-generic"} 0',
    );
    expect(metrics.body).toMatch(/^livepatch_agent_last_pass_timestamp_seconds \d+/m);
    expect(metrics.body).toContain('livepatch_agent_reconciles_total');
    expect(agent.output()).toContain('"node":"cli-agent-node"');
    expect(await agent.stop('SIGTERM')).toBe(0);
  });

  test('refuses the sysfs backend on a kind node, which shares the host kernel', async () => {
    await createNode('kind-worker', 'kind://docker/kind/kind-worker');
    const agent = runOperator(
      ['agent', '--backend=sysfs', '--metrics-port=0', `--kubeconfig=${kubeconfigPath()}`],
      {
        NODE_NAME: 'kind-worker',
      },
    );
    running.push(agent);
    const code = await new Promise<number | null>((resolve) => agent.child.on('exit', resolve));
    expect(code).toBe(3);
    expect(agent.output()).toContain("shares the host's kernel");
    expect(agent.output()).toContain('--backend=simulator');
    const lpn = await kubectlJson<{
      status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
    }>(['get', 'lpn', 'kind-worker']);
    expect(lpn.status?.conditions?.[0]).toMatchObject({
      type: 'Ready',
      status: 'False',
      reason: 'BackendRefused',
    });
    expect(lpn.status?.conditions?.[0]?.message).toContain("shares the host's kernel");
  });
});

describe('livepatch-operator fleet', () => {
  test('creates Ready nodes with agents, and Ctrl-C leaves the API clean', async () => {
    const fleet = runOperator([
      'fleet',
      '--nodes=3',
      '--kernel=6.1.0-26-amd64,6.8.0-45-generic',
      '--prefix=cli-fleet',
      '--label=livepatch.io/pool=web',
      `--kubeconfig=${kubeconfigPath()}`,
    ]);
    running.push(fleet);
    await fleet.waitFor(/fleet ready: 3 nodes/);
    const nodes = await kubectlJson<{
      items: {
        metadata: { labels: Record<string, string> };
        status: {
          nodeInfo: { kernelVersion: string };
          conditions: { type: string; status: string }[];
        };
      }[];
    }>(['get', 'nodes', '-l', 'livepatch.io/pool=web,livepatch.io/simulated=true']);
    expect(nodes.items.map((n) => n.status.nodeInfo.kernelVersion)).toEqual([
      '6.1.0-26-amd64',
      '6.8.0-45-generic',
      '6.1.0-26-amd64',
    ]);
    expect(
      nodes.items.every((n) =>
        n.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
      ),
    ).toBe(true);
    await waitUntil(
      'three LivePatchNodes with status',
      async () =>
        (await kubectlOk(['get', 'lpn', '-o', 'name']))
          .split('\n')
          .filter((l) => l.includes('cli-fleet')),
      (names) => names.length === 3,
    );
    expect(await fleet.stop('SIGINT')).toBe(0);
    expect(
      (await kubectlOk(['get', 'nodes', '-l', 'livepatch.io/pool=web', '-o', 'name'])).trim(),
    ).toBe('');
    expect(await kubectlOk(['get', 'lpn', '-o', 'name'])).not.toContain('cli-fleet');
  });
});

describe('livepatch-operator sim-module', () => {
  test('writes a module file naming the patch, its vermagic, replace flag and functions', async () => {
    const tool = runOperator([
      'sim-module',
      '--name=livepatch_x',
      '--kernel=6.1.0-26-amd64',
      '--replace',
      '--function=vmlinux:cmdline_proc_show',
    ]);
    expect(await new Promise((resolve) => tool.child.on('exit', resolve))).toBe(0);
    expect(JSON.parse(tool.output())).toEqual({
      format: 'livepatch-sim-module/v1',
      name: 'livepatch_x',
      vermagic: '6.1.0-26-amd64 SMP preempt mod_unload modversions',
      replace: true,
      objects: [{ name: 'vmlinux', functions: ['cmdline_proc_show'] }],
      // Like a kpatch build: a livepatch, out of tree, unsigned (the kernel taints K, O and E).
      livepatch: true,
      depends: [],
      kthreads: [],
      signed: false,
    });
  });

  test('refuses a patch name that could be a path', async () => {
    const tool = runOperator(['sim-module', '--name=../evil', '--kernel=6.1.0-26-amd64']);
    expect(await new Promise((resolve) => tool.child.on('exit', resolve))).toBe(1);
    expect(tool.output()).toContain('invalid patch name');
  });
});
