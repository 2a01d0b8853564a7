// Bad input the controller meets mid-rollout, on the real API server with the
// real controller and simulated agents: a module ConfigMap that vanishes or
// changes, a LivePatchNode spec edited by hand, and names at their limits.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Agent } from '../../agent/agent.js';
import { createAgent } from '../../agent/setup.js';
import type { LivePatch, LivePatchNode, ObservedPatch } from '../../src/api/generated/types.js';
import { nodeName, type NodeName } from '../../src/api/names.js';
import { systemClock } from '../../src/clock.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { rawJson } from '../../src/kube/raw.js';
import { PATHS } from '../../src/kube/resources.js';
import { registerNode } from '../../lab/controlplane/nodes.js';
import { createLogger } from '../../src/log.js';
import { kubectlJson, kubectlOk } from '../support/kubectl.js';
import {
  applyLivePatchSpec,
  eventsFor,
  getLivePatch,
  nodeReports,
} from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { writeSimModule, type ModuleOnDisk } from '../../lab/sim-modules.js';
import { waitUntil } from '../../lab/wait.js';

const KERNEL = '6.1.0-26-amd64';
const cluster = useOwnCluster({ nodes: 4, kernels: [KERNEL], prefix: 'bad-input' });
const SIMULATED = { matchLabels: { 'livepatch.io/simulated': 'true' } };

beforeAll(async () => {
  await cluster().startController('bad-input-controller');
});

async function mergePatch(kind: string, name: string, patch: object): Promise<void> {
  await kubectlOk(['patch', kind, name, '--type=merge', '-p', JSON.stringify(patch)]);
}

function waitForLivePatch(
  name: string,
  ok: (lp: LivePatch) => boolean,
  what: string,
): Promise<LivePatch> {
  return waitUntil(`${name} ${what}`, () => getLivePatch(name), ok, 60_000);
}

/** Nodes by what they report on one LivePatch. */
async function byPhase(livePatch: string): Promise<Map<ObservedPatch['phase'] | 'none', string[]>> {
  const out = new Map<ObservedPatch['phase'] | 'none', string[]>();
  for (const [node, report] of await nodeReports(livePatch)) {
    const phase = report?.phase ?? 'none';
    out.set(phase, [...(out.get(phase) ?? []), node]);
  }
  return out;
}

async function configMap(name: string, file: ModuleOnDisk): Promise<void> {
  const yaml = await kubectlOk([
    'create',
    'configmap',
    name,
    '-n',
    'default',
    `--from-file=module.ko=${file.hostPath}`,
    '--dry-run=client',
    '-o',
    'json',
  ]);
  await kubectlOk(['apply', '-f', '-'], yaml);
}

/**
 * A rollout over a module ConfigMap that stops after its first node (an empty
 * pause), lets `meddle` act on the ConfigMap, and goes on: the next node must
 * find the ConfigMap as `meddle` left it.
 */
async function rolloutAroundConfigMap(
  name: string,
  meddle: () => Promise<void>,
): Promise<LivePatch> {
  const patchName = `livepatch_${name.replaceAll('-', '_')}`;
  const file = await writeSimModule(patchName, KERNEL);
  await configMap(name, file);
  await applyLivePatchSpec(name, {
    patchName,
    nodeSelector: SIMULATED,
    kernels: [
      {
        release: KERNEL,
        module: {
          configMap: { namespace: 'default', name, key: 'module.ko' },
          sha256: file.sha256,
        },
      },
    ],
    rollout: { steps: [{ nodes: 1 }, { pause: {} }] },
    stall: { action: 'Halt' },
  });
  await waitForLivePatch(
    name,
    (lp) => lp.status?.phase === 'Paused' && lp.status.nodes?.patched === 1,
    'to hold after one node',
  );
  await meddle();
  // An empty pause holds until spec.rollout.paused changes: there and back.
  await mergePatch('lp', name, { spec: { rollout: { paused: true } } });
  await mergePatch('lp', name, { spec: { rollout: { paused: false } } });
  return waitForLivePatch(
    name,
    (lp) => lp.status?.phase === 'Failed',
    'to halt on the failed node',
  );
}

/** What a person reads: the node's own words, the LivePatch's Degraded condition, the Event. */
async function expectFailedNode(name: string, words: string): Promise<void> {
  const phases = await byPhase(name);
  expect(phases.get('Patched')).toHaveLength(1);
  const failed = phases.get('Failed') ?? [];
  expect(failed).toHaveLength(1);
  const report = (await nodeReports(name)).get(failed[0] ?? '');
  expect(report?.message).toContain(words);
  expect(report?.enabled).toBeUndefined();
  const patchName = `livepatch_${name.replaceAll('-', '_')}`;
  const kernel = cluster().fleet.kernel(failed[0] as NodeName);
  expect(await kernel?.isLoaded(patchName as never)).toBe(false);
  const lp = await getLivePatch(name);
  const degraded = lp.status?.conditions?.find((c) => c.type === 'Degraded');
  expect(degraded).toMatchObject({ status: 'True', reason: 'Halted' });
  expect(degraded?.message).toContain(`${failed[0] ?? ''}: ${words}`);
  const events = await eventsFor(name);
  expect(events.find((e) => e.reason === 'ModuleUnavailable')?.message).toContain(words);
}

describe('a module ConfigMap mid-rollout', () => {
  test('deleted: the next node fails saying so, loads nothing, and the patched node keeps its patch', async () => {
    await rolloutAroundConfigMap('cm-vanish', () =>
      kubectlOk(['delete', 'configmap', 'cm-vanish', '-n', 'default']).then(() => undefined),
    );
    await expectFailedNode(
      'cm-vanish',
      'ConfigMap default/cm-vanish does not exist (deleted mid-rollout?)',
    );
  });

  test('changed under the same sha256: the checksum stops the new content on the next node', async () => {
    await rolloutAroundConfigMap('cm-change', async () => {
      const other = await writeSimModule('livepatch_cm_change', KERNEL, true);
      await configMap('cm-change', other);
    });
    await expectFailedNode(
      'cm-change',
      'checksum mismatch: the module file from ConfigMap default/cm-change',
    );
  });
});

describe('a LivePatchNode spec edited by hand', () => {
  test('the controller writes its entry back and removes an entry for no LivePatch, saying so in an Event', async () => {
    const module = await writeSimModule('livepatch_restore', KERNEL);
    await applyLivePatchSpec('restore', {
      patchName: 'livepatch_restore',
      nodeSelector: SIMULATED,
      kernels: [{ release: KERNEL, module: { hostPath: module.hostPath, sha256: module.sha256 } }],
      rollout: { maxUnavailable: '100%' },
    });
    await waitForLivePatch('restore', (lp) => lp.status?.phase === 'Complete', 'to complete');
    const node = cluster().fleet.nodes[0] ?? '';
    const before = await kubectlJson<LivePatchNode>(['get', 'lpn', node]);
    const written = before.spec.patches?.find((p) => p.livePatch === 'restore');
    const others = (before.spec.patches ?? []).filter((p) => p.livePatch !== 'restore');
    const edited = {
      ...written,
      allowForce: true,
      module: { url: 'https://evil.example/x.ko', sha256: 'e'.repeat(64) },
    };
    const ghost = {
      livePatch: 'ghost',
      patchName: 'livepatch_ghost',
      state: 'Enabled',
      module: { hostPath: '/nonexistent/ghost.ko', sha256: 'e'.repeat(64) },
      generation: 1,
      stallTimeout: '60s',
    };
    await mergePatch('lpn', node, { spec: { patches: [...others, edited, ghost] } });
    const restored = await waitUntil(
      'the entry written back and the ghost entry gone',
      () => kubectlJson<LivePatchNode>(['get', 'lpn', node]),
      (o) =>
        JSON.stringify(o.spec.patches?.find((p) => p.livePatch === 'restore')) ===
          JSON.stringify(written) && !o.spec.patches?.some((p) => p.livePatch === 'ghost'),
    );
    expect(restored.status?.patches?.find((p) => p.livePatch === 'restore')?.phase).toBe('Patched');
    type EventList = {
      items: { reason: string; message: string; involvedObject: { kind: string } }[];
    };
    const events = await waitUntil(
      'an EntryRemoved Event on the LivePatch that does not exist',
      () =>
        kubectlJson<EventList>([
          'get',
          'events',
          '-n',
          'default',
          '--field-selector',
          'involvedObject.name=ghost',
        ]),
      (list) => list.items.some((e) => e.reason === 'EntryRemoved'),
      10_000,
    );
    const removed = events.items.find((e) => e.reason === 'EntryRemoved');
    expect(removed?.involvedObject.kind).toBe('LivePatch');
    expect(removed?.message).toContain(
      `spec.patches of node ${node} had an entry for LivePatch ghost, which does not exist`,
    );
    expect((await getLivePatch('restore')).status?.phase).toBe('Complete');
  });
});

describe('names at their limits', () => {
  const running: Agent[] = [];
  const kc = (): ReturnType<typeof loadKubeConfig> => loadKubeConfig(cluster().plane.kubeconfig);
  /** 253 characters in DNS labels: the longest node (and LivePatch) name. */
  const longest = (head: string): string =>
    [head.padEnd(63, 'x'), 'y'.repeat(63), 'z'.repeat(63), 'w'.repeat(61)].join('.');
  const NODE = nodeName(longest('lpnode-'));

  afterAll(async () => {
    await Promise.all(running.map((a) => a.stop()));
    await rawJson(kc(), 'DELETE', `${PATHS.livePatchNodes}/${NODE}`).catch(() => undefined);
    await rawJson(kc(), 'DELETE', `${PATHS.nodes}/${NODE}`).catch(() => undefined);
  });

  test('a 55-character patchName on a 253-character node, from a 253-character LivePatch, end to end', async () => {
    expect(NODE).toHaveLength(253);
    await registerNode(kc(), {
      name: NODE,
      release: KERNEL,
      labels: { 'livepatch.io/pool': 'long-names' },
      providerID: `livepatch-sim://${NODE}`,
      osImage: 'Simulated Linux',
    });
    await kubectlOk(['annotate', 'node', NODE, 'sim.livepatch.io/transition-seconds=1']);
    const { agent } = await createAgent({
      kubeConfig: kc(),
      nodeName: NODE,
      backend: { kind: 'simulator' },
      clock: systemClock,
      log: createLogger({ component: 'agent', level: 'error', format: 'text' }),
      moduleDir: `/tmp/livepatch-long-names-${process.pid}`,
      hostRoot: '/',
    });
    await agent.start();
    running.push(agent);
    const patchName = `livepatch_${'l'.repeat(45)}`;
    expect(patchName).toHaveLength(55);
    const name = longest('lp-');
    const module = await writeSimModule(patchName, KERNEL);
    await applyLivePatchSpec(name, {
      patchName,
      nodeSelector: { matchLabels: { 'livepatch.io/pool': 'long-names' } },
      kernels: [{ release: KERNEL, module: { hostPath: module.hostPath, sha256: module.sha256 } }],
    });
    const done = await waitForLivePatch(
      name,
      (lp) => lp.status?.phase === 'Complete',
      'to complete',
    );
    expect(done.status?.summary).toBe('1/1');
    const lpn = await kubectlJson<LivePatchNode>(['get', 'lpn', NODE]);
    expect(lpn.status?.patches?.[0]).toMatchObject({
      livePatch: name,
      patchName,
      phase: 'Patched',
    });
    expect(await kubectlOk(['get', 'lpn', NODE, '--no-headers'])).toContain(NODE);
    const events = await eventsFor(name);
    expect(events.find((e) => e.reason === 'StepStarted')?.message).toContain(NODE);
    expect(events.map((e) => e.reason)).toContain('Completed');
  });
});
