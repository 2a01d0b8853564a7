// The node agent on the real API server, without a controller: a person (or
// this test) writes a LivePatchNode spec by hand with kubectl, and the node's
// status says what the simulated kernel did.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import { mkdtemp, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFleet, type Fleet } from '../../lab/fleet/fleet.js';
import type { Agent } from '../../agent/agent.js';
import { SimulatedKernel } from '../../agent/kernel/sim/simulator.js';
import { createAgent } from '../../agent/setup.js';
import { kernelRelease, type NodeName } from '../../src/api/names.js';
import type { LivePatchNode, ObservedPatch } from '../../src/api/generated/types.js';
import { systemClock } from '../../src/clock.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { createLogger } from '../../src/log.js';
import { kubectlJson, kubectlOk, kubeconfigPath } from '../support/kubectl.js';
import { eventsFor } from '../support/livepatches.js';
import { writeSimModule, type ModuleOnDisk } from '../../lab/sim-modules.js';
import { waitUntil } from '../../lab/wait.js';

const KERNEL = '6.1.0-26-amd64';
let fleet: Fleet;

beforeAll(async () => {
  fleet = await startFleet({
    kubeConfig: loadKubeConfig(kubeconfigPath()),
    nodes: 8,
    kernels: [KERNEL],
    namePrefix: 'agent-it',
    clock: systemClock,
    log: createLogger({
      component: 'fleet',
      level: process.env['LOG_LEVEL'] ?? 'error',
      format: 'text',
    }),
    heartbeatMs: 5000,
  });
});

afterAll(async () => {
  await fleet.stop();
});

interface EntryOptions {
  state?: 'Enabled' | 'Disabled';
  module: ModuleOnDisk | { url: string; sha256: string };
  stallTimeout?: string;
  generation?: number;
  sha256?: string;
}

function node(i: number): string {
  return fleet.nodes[i] ?? '';
}

async function setSpec(nodeName: string, patchName: string, o: EntryOptions): Promise<void> {
  const entry = {
    livePatch: `lp-${patchName}`,
    patchName,
    state: o.state ?? 'Enabled',
    module:
      'url' in o.module
        ? { url: o.module.url, sha256: o.sha256 ?? o.module.sha256 }
        : { hostPath: o.module.hostPath, sha256: o.sha256 ?? o.module.sha256 },
    generation: o.generation ?? 1,
    stallTimeout: o.stallTimeout ?? '60s',
  };
  await kubectlOk([
    'patch',
    'lpn',
    nodeName,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { patches: [entry] } }),
  ]);
}

async function lpn(nodeName: string): Promise<LivePatchNode> {
  return kubectlJson<LivePatchNode>(['get', 'lpn', nodeName]);
}

async function waitForPhase(
  nodeName: string,
  phase: ObservedPatch['phase'],
  timeoutMs = 30_000,
): Promise<ObservedPatch> {
  const seen = await waitUntil(
    `${nodeName} to report ${phase}`,
    () => lpn(nodeName),
    (o) => o.status?.patches?.[0]?.phase === phase,
    timeoutMs,
  );
  return seen.status?.patches?.[0] as ObservedPatch;
}

async function annotate(nodeName: string, annotations: Record<string, string>): Promise<void> {
  await kubectlOk([
    'annotate',
    'node',
    nodeName,
    '--overwrite',
    ...Object.entries(annotations).map(([k, v]) => `${k}=${v}`),
  ]);
}

describe('the agent on a simulated node', () => {
  test('creates its LivePatchNode, owned by its Node, and reports the node before any patch', async () => {
    const o = await waitUntil(
      'a status',
      () => lpn(node(0)),
      (x) => x.status?.kernelRelease !== undefined,
    );
    expect(o.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'Node', name: node(0) });
    expect(o.status).toMatchObject({
      kernelRelease: KERNEL,
      backend: 'simulator',
      patchedCount: 0,
      unmanaged: [],
    });
    expect(o.status?.agentVersion).toMatch(/^\d+\.\d+\.\d+/);
    const withFields = await kubectlJson<LivePatchNode>([
      'get',
      'lpn',
      node(0),
      '--show-managed-fields',
    ]);
    const statusWriter = withFields.metadata.managedFields?.find((f) => f.subresource === 'status');
    expect(statusWriter?.manager).toBe('livepatch-agent');
    const table = await kubectlOk(['get', 'livepatchnodes', node(0)]);
    expect(table).toMatch(
      new RegExp(`${node(0)}\\s+${KERNEL.replaceAll('.', '\\.')}\\s+simulator\\s+0`),
    );
  });

  test('enable → Patched; disable → Unpatched and the module unloaded', async () => {
    const module = await writeSimModule('livepatch_enable', KERNEL);
    await annotate(node(0), { 'sim.livepatch.io/transition-seconds': '2' });
    await setSpec(node(0), 'livepatch_enable', { module });
    const transitioning = await waitForPhase(node(0), 'Transitioning');
    expect(transitioning.transition).toBe(true);
    expect(transitioning.pendingTasks).toBeGreaterThan(0);
    const patched = await waitForPhase(node(0), 'Patched');
    expect(patched).toMatchObject({ enabled: true, transition: false, observedGeneration: 1 });
    expect((await lpn(node(0))).status?.patchedCount).toBe(1);

    await setSpec(node(0), 'livepatch_enable', { module, state: 'Disabled', generation: 2 });
    const unpatched = await waitForPhase(node(0), 'Unpatched');
    expect(unpatched.observedGeneration).toBe(2);
    expect(unpatched.enabled).toBeUndefined();
    expect((await lpn(node(0))).status?.patchedCount).toBe(0);
  });

  test('a module from a ConfigMap is loaded like any other', async () => {
    const file = await writeSimModule('livepatch_configmap', KERNEL);
    await kubectlOk([
      'create',
      'configmap',
      'cm-module',
      '-n',
      'default',
      `--from-file=module.ko=${file.hostPath}`,
    ]);
    const entry = {
      livePatch: 'lp-configmap',
      patchName: 'livepatch_configmap',
      state: 'Enabled',
      module: {
        configMap: { namespace: 'default', name: 'cm-module', key: 'module.ko' },
        sha256: file.sha256,
      },
      generation: 1,
      stallTimeout: '60s',
    };
    await kubectlOk([
      'patch',
      'lpn',
      node(5),
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { patches: [entry] } }),
    ]);
    const patched = await waitForPhase(node(5), 'Patched');
    expect(patched.livePatch).toBe('lp-configmap');
    await kubectlOk(['delete', 'configmap', 'cm-module', '-n', 'default']);
  });

  test('a wrong checksum fails with a message and loads nothing', async () => {
    const module = await writeSimModule('livepatch_badsum', KERNEL);
    await setSpec(node(1), 'livepatch_badsum', { module, sha256: 'f'.repeat(64) });
    const failed = await waitForPhase(node(1), 'Failed');
    expect(failed.message).toContain('checksum mismatch');
    expect(failed.message).toContain(module.sha256);
    expect(failed.enabled).toBeUndefined();
    expect((await eventsFor('lp-livepatch_badsum')).map((e) => e.reason)).toContain(
      'ModuleUnavailable',
    );
  });

  test('a module file whose own name is not the patchName is refused before insmod', async () => {
    const module = await writeSimModule('livepatch_other_name', KERNEL);
    await setSpec(node(1), 'livepatch_named', { module });
    const failed = await waitForPhase(node(1), 'Failed');
    expect(failed.message).toContain(
      'the module file is named livepatch_other_name but spec.patchName is livepatch_named',
    );
    expect((await lpn(node(1))).status?.unmanaged).toEqual([]);
  });

  test('a module that is not a livepatch is refused before insmod', async () => {
    const module = await writeSimModule('livepatch_driver', KERNEL, false, { livepatch: false });
    await setSpec(node(5), 'livepatch_driver', { module });
    const failed = await waitForPhase(node(5), 'Failed');
    expect(failed.message).toContain('is not a livepatch (modinfo shows no livepatch=Y)');
  });

  test('a module built for another release is refused before insmod, naming both releases', async () => {
    const module = await writeSimModule('livepatch_otherkernel', '6.1.0-27-amd64');
    await setSpec(node(2), 'livepatch_otherkernel', { module });
    const failed = await waitForPhase(node(2), 'Failed');
    expect(failed.message).toContain(
      'the module file was built for kernel 6.1.0-27-amd64 (vermagic "6.1.0-27-amd64 SMP preempt mod_unload modversions"), this node runs 6.1.0-26-amd64',
    );
    expect(
      await fleet.kernel(node(2) as NodeName)?.isLoaded('livepatch_otherkernel' as never),
    ).toBe(false);
  });

  test('stuck tasks: Stalled, then reversed by the node guard, with the blocking tasks', async () => {
    const module = await writeSimModule('livepatch_stuck', KERNEL);
    await annotate(node(3), {
      'sim.livepatch.io/stuck-tasks': '1',
      'sim.livepatch.io/transition-seconds': '1',
    });
    await setSpec(node(3), 'livepatch_stuck', { module, stallTimeout: '3s' });
    await waitForPhase(node(3), 'Transitioning');
    const done = await waitUntil(
      'the stall to be reversed and unloaded',
      () => lpn(node(3)),
      (o) =>
        o.status?.patches?.[0]?.phase === 'Stalled' &&
        /unloaded/.test(o.status.patches[0].message ?? ''),
      30_000,
    );
    const entry = done.status?.patches?.[0];
    expect(entry?.blockingTasks?.map((t) => t.comm)).toEqual(['qemu-kvm']);
    expect(entry?.message).toContain('did not finish within 3s');
    expect(done.status?.transitioning).toBeUndefined();
    expect((await eventsFor('lp-livepatch_stuck')).map((e) => e.reason)).toContain('NodeStalled');
  });

  test('an agent killed mid-transition adopts the transition when it restarts, and loads nothing twice', async () => {
    const module = await writeSimModule('livepatch_restart', KERNEL);
    await annotate(node(4), { 'sim.livepatch.io/transition-seconds': '6' });
    await setSpec(node(4), 'livepatch_restart', { module });
    const before = await waitForPhase(node(4), 'Transitioning');
    await fleet.stopAgent(node(4) as never);
    await new Promise((r) => setTimeout(r, 1500));
    await fleet.restartAgent(node(4) as never);
    const history: string[] = [];
    const patched = await waitUntil(
      'Patched after the restart',
      async () => {
        const p = (await lpn(node(4))).status?.patches?.[0];
        history.push(p?.phase ?? '');
        return p;
      },
      (p) => p?.phase === 'Patched',
    );
    expect(history).not.toContain('Loading');
    expect(history).not.toContain('Failed');
    expect(patched?.transitionStartTime).toBe(before.transitionStartTime);
  });
});

describe('bad module input: the node says what is wrong and loads nothing', () => {
  let server: Server;
  let base = '';
  let dir = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agent-bad-input-'));
    server = createServer((req, res) => {
      if (req.url === '/elsewhere')
        res.writeHead(302, { Location: 'http://localhost:1/x.ko' }).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });

  afterAll(() => {
    server.close();
  });

  const SUM = 'a'.repeat(64);

  test('a URL that answers 404: Failed with the words and an Event, and the URL without its token', async () => {
    const url = `${base}/${'deep/'.repeat(300)}missing.ko?token=s3cr3t`;
    await setSpec(node(1), 'livepatch_url_missing', { module: { url, sha256: SUM } });
    const failed = await waitForPhase(node(1), 'Failed');
    expect(failed.message).toContain('the server answers HTTP 404 Not Found: no file there');
    expect(failed.message).not.toContain('s3cr3t');
    expect((await eventsFor('lp-livepatch_url_missing')).map((e) => e.reason)).toContain(
      'ModuleUnavailable',
    );
  });

  test('a URL that redirects to another host: refused, nothing fetched from there', async () => {
    await setSpec(node(5), 'livepatch_url_redirect', {
      module: { url: `${base}/elsewhere`, sha256: SUM },
    });
    const failed = await waitForPhase(node(5), 'Failed');
    expect(failed.message).toContain('it redirects to another host (http://localhost:1/x.ko)');
  });

  test.each([
    ['empty', 0, 'is empty (0 bytes)'],
    ['over the 16 MiB limit', 16 * 1024 * 1024 + 1, "over the agent's module size limit of 16 MiB"],
  ])('a module file %s: Failed, saying so', async (what, size, words) => {
    const path = join(dir, `${what.replaceAll(' ', '-')}.ko`);
    await writeFile(path, '');
    await truncate(path, size);
    const patchName = `livepatch_${size ? 'huge' : 'empty'}`;
    await setSpec(node(6), patchName, { module: { hostPath: path, sha256: SUM } });
    const failed = await waitUntil(
      `${patchName} to fail`,
      () => lpn(node(6)),
      (o) =>
        o.status?.patches?.[0]?.patchName === patchName && o.status.patches[0].phase === 'Failed',
    );
    expect(failed.status?.patches?.[0]?.message).toContain(words);
  });

  test('a truncated module file: Failed on its checksum, nothing loaded', async () => {
    const module = await writeSimModule('livepatch_truncated', KERNEL);
    await truncate(module.hostPath, 40);
    await setSpec(node(1), 'livepatch_truncated', { module });
    const failed = await waitForPhase(node(1), 'Failed');
    expect(failed.message).toContain('(40 bytes) has sha256');
    expect(await fleet.kernel(node(1) as NodeName)?.isLoaded('livepatch_truncated' as never)).toBe(
      false,
    );
  });
});

describe('the agent on a node that cannot take livepatches', () => {
  const running: Agent[] = [];

  afterAll(async () => {
    await Promise.all(running.map((a) => a.stop()));
  });

  /** Replaces a fleet node's agent by one driving the given kernel, as the DaemonSet would on such a node. */
  async function agentOn(i: number, kernel: SimulatedKernel): Promise<void> {
    await fleet.stopAgent(node(i) as NodeName);
    const { agent } = await createAgent(
      {
        kubeConfig: loadKubeConfig(kubeconfigPath()),
        nodeName: node(i) as NodeName,
        backend: { kind: 'simulator' },
        clock: systemClock,
        log: createLogger({ component: 'agent', level: 'error', format: 'text' }),
        moduleDir: '/tmp',
        hostRoot: '/',
      },
      kernel,
    );
    await agent.start();
    running.push(agent);
  }

  test('a kernel without livepatch support: Ready=False says so, and a patch fails with the same words', async () => {
    await agentOn(
      6,
      new SimulatedKernel({ release: kernelRelease(KERNEL), clock: systemClock, livepatch: false }),
    );
    const module = await writeSimModule('livepatch_nolp', KERNEL);
    await setSpec(node(6), 'livepatch_nolp', { module });
    const failed = await waitForPhase(node(6), 'Failed');
    expect(failed.message).toContain('built without livepatch support (CONFIG_LIVEPATCH)');
    const ready = (await lpn(node(6))).status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'NoLivepatchSupport' });
  });

  test('a kernel older than 5.1: Ready=False names the supported range, and nothing is loaded', async () => {
    const old = '4.18.0-513.el8.x86_64';
    const kernel = new SimulatedKernel({ release: kernelRelease(old), clock: systemClock });
    await agentOn(7, kernel);
    const module = await writeSimModule('livepatch_old', old);
    await setSpec(node(7), 'livepatch_old', { module });
    const failed = await waitForPhase(node(7), 'Failed');
    expect(failed.message).toContain('kernel 4.18.0-513.el8.x86_64 is older than 5.1');
    expect(failed.message).toContain('5.1 and later');
    expect(await kernel.isLoaded('livepatch_old' as never)).toBe(false);
    const ready = (await lpn(node(7))).status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'UnsupportedKernel' });
  });
});
