// The node guard when the API server is gone (a control-plane upgrade, a
// partition): a running agent reverses a stalled transition on time, stays
// alive (liveness follows its kernel loop) while not ready (its status cannot
// be written), and reports the truth once the server is back; an agent that
// starts during the outage guards the transition already in the kernel from
// what it saved on the node.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFleet, type Fleet } from '../../lab/fleet/fleet.js';
import type { LivePatchNode, ObservedPatch } from '../../src/api/generated/types.js';
import { nodeName, patchName, type NodeName } from '../../src/api/names.js';
import { systemClock } from '../../src/clock.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { startControlPlane, type LocalControlPlane } from '../../lab/controlplane/controlplane.js';
import { createLogger } from '../../src/log.js';
import { freePort, httpGet } from '../support/http.js';
import { kubectlJson, kubectlOk } from '../support/kubectl.js';
import { runOperator, type Running } from '../../lab/operator-process.js';
import { writeSimModule } from '../../lab/sim-modules.js';
import { waitUntil } from '../../lab/wait.js';

/**
 * "On time": the guard checks the kernel every poll (1 s) and reverses an
 * overdue transition at the first check past its stall timeout; 3 s more are
 * allowed because the test shares two cores with the control plane and fleet.
 */
const GUARD_POLL_MS = 1_000;
const SHARED_MACHINE_TOLERANCE_MS = 3_000;
const KERNEL = '6.1.0-26-amd64';
const quiet = createLogger({ component: 'outage-test', format: 'text', level: 'error' });
let plane: LocalControlPlane;
let fleet: Fleet;
const previousKubeconfig = process.env['KUBECONFIG'];

beforeAll(async () => {
  plane = await startControlPlane({ log: quiet });
  process.env['KUBECONFIG'] = plane.kubeconfig;
  fleet = await startFleet({
    kubeConfig: loadKubeConfig(plane.kubeconfig),
    nodes: 2,
    kernels: [KERNEL],
    namePrefix: 'outage',
    clock: systemClock,
    log: quiet,
    heartbeatMs: 5000,
  });
});

afterAll(async () => {
  await plane.startApiserver();
  await fleet.stop();
  await plane.stop();
  process.env['KUBECONFIG'] = previousKubeconfig;
});

const node = (i: number): NodeName => fleet.nodes[i] ?? nodeName('missing');

/** A patch whose transition never finishes on this node: one task never switches. */
async function stallingPatch(on: NodeName, name: string, stallTimeout: string): Promise<void> {
  await kubectlOk([
    'annotate',
    'node',
    on,
    '--overwrite',
    'sim.livepatch.io/stuck-tasks=1',
    'sim.livepatch.io/transition-seconds=1',
  ]);
  const module = await writeSimModule(name, KERNEL);
  const entry = {
    livePatch: `lp-${name}`,
    patchName: name,
    state: 'Enabled',
    module: { hostPath: module.hostPath, sha256: module.sha256 },
    generation: 1,
    stallTimeout,
  };
  await kubectlOk([
    'patch',
    'lpn',
    on,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { patches: [entry] } }),
  ]);
}

async function reported(on: NodeName): Promise<ObservedPatch | undefined> {
  return (await kubectlJson<LivePatchNode>(['get', 'lpn', on])).status?.patches?.[0];
}

function transitionStart(p: ObservedPatch | undefined): number {
  return Date.parse(p?.transitionStartTime ?? '');
}

/** The time of the agent's `writing enabled=0` for a stall, from its JSON log lines. */
function reversalLogged(agent: Running): number | undefined {
  for (const line of agent.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { message?: string; why?: string; timestamp?: string };
    if (entry.message === 'writing enabled=0' && entry.why === 'stalled')
      return Date.parse(entry.timestamp ?? '');
  }
  return undefined;
}

describe('an API server outage during a stalling transition', () => {
  test('the running agent reverses it on time, stays live but not ready, and reports the truth after', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outage-agent-'));
    const port = await freePort();
    // This node's agent is a process of its own, with its endpoints, like a DaemonSet pod.
    await fleet.stopAgent(node(0));
    const agent = runOperator([
      'agent',
      '--backend=simulator',
      `--kubeconfig=${plane.kubeconfig}`,
      `--node=${node(0)}`,
      `--state-dir=${dir}`,
      `--module-dir=${join(dir, 'modules')}`,
      `--metrics-port=${port}`,
    ]);
    try {
      await agent.waitFor(/agent running/);
      await stallingPatch(node(0), 'livepatch_outage_running', '8s');
      const started = await waitUntil(
        'Transitioning',
        () => reported(node(0)),
        (p) => p?.phase === 'Transitioning',
      );
      await plane.stopApiserver();
      const reversedAt = await waitUntil(
        'the node guard to reverse the transition with the API server gone',
        () => Promise.resolve(reversalLogged(agent)),
        (t) => t !== undefined,
        60_000,
      );
      const metrics = await waitUntil(
        'the reversal to finish',
        () => httpGet(port, '/metrics'),
        (m) =>
          /livepatch_agent_transition_in_progress 0/.test(m.body) &&
          /phase="Stalled",kernel_release="[^"]+"} 1/.test(m.body),
      );
      expect(metrics.body).toContain(
        'livepatch_agent_kernel_actions_total{action="reverse_stall",result="ok"} 1',
      );
      expect(metrics.status).toBe(200);
      expect((await httpGet(port, '/healthz')).status).toBe(200);
      const ready = await waitUntil(
        'not ready',
        () => httpGet(port, '/readyz'),
        (r) => r.status === 503,
      );
      expect(ready.body).toContain('cannot report to the API server');
      const late = (reversedAt ?? 0) - transitionStart(started) - 8000;
      expect(late).toBeGreaterThanOrEqual(0);
      expect(late).toBeLessThan(GUARD_POLL_MS + SHARED_MACHINE_TOLERANCE_MS);
      process.stdout.write(
        `outage guard (running agent): reversed ${late} ms after the 8 s stall timeout\n`,
      );

      await plane.startApiserver();
      const truth = await waitUntil(
        'the node to report the reversal',
        () => reported(node(0)),
        (p) => p?.phase === 'Stalled' && /reversed on the node/.test(p.message ?? ''),
        60_000,
      );
      expect(truth?.message).toContain('did not finish within 8s');
      expect(
        (
          await waitUntil(
            'ready again',
            () => httpGet(port, '/readyz'),
            (r) => r.status === 200,
          )
        ).body,
      ).toBe('ok\n');
    } finally {
      await plane.startApiserver();
      await agent.stop();
    }
  });

  test('an agent that starts while the API server is gone still reverses the transition in the kernel, then reports', async () => {
    const name = 'livepatch_outage_restart';
    await stallingPatch(node(1), name, '10s');
    const started = await waitUntil(
      'Transitioning',
      () => reported(node(1)),
      (p) => p?.phase === 'Transitioning',
    );
    await fleet.stopAgent(node(1));
    await plane.stopApiserver();
    await fleet.restartAgent(node(1));
    const kernel = fleet.kernel(node(1));
    const reversedAt = await waitUntil(
      'the restarted agent to reverse the transition',
      async () => {
        const inKernel = (await kernel?.patches())?.find((p) => p.name === patchName(name));
        return inKernel?.transition === true ? undefined : Date.now();
      },
      (t) => t !== undefined,
      60_000,
      100,
    );
    const late = (reversedAt ?? 0) - transitionStart(started) - 10_000;
    expect(late).toBeGreaterThanOrEqual(0);
    // Measured when the kernel's reversal has finished: its 1 s transition on top of the poll.
    expect(late).toBeLessThan(GUARD_POLL_MS + 1_000 + SHARED_MACHINE_TOLERANCE_MS);
    process.stdout.write(
      `outage guard (agent started without the API): reversed within ${late} ms after the 10 s stall timeout\n`,
    );

    await plane.startApiserver();
    const truth = await waitUntil(
      'the node to report the reversal',
      () => reported(node(1)),
      (p) => p?.phase === 'Stalled' && /reversed on the node/.test(p.message ?? ''),
      60_000,
    );
    expect(truth?.message).toContain('did not finish within 10s');
    // The last transition it reports is the reversal, begun once the stall timeout had passed.
    expect(transitionStart(truth) - transitionStart(started)).toBeGreaterThanOrEqual(10_000);
  });
});
