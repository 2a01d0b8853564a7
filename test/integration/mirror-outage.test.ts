// A module mirror that is down, on the real API server with the real
// controller and agents: for a few requests, the node waits and patches and
// the rollout completes with failureBudget 0 untouched; for good, the node
// fails once the agent's retry bound (--module-retry-for) is over, saying so.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { Agent } from '../../agent/agent.js';
import { createAgent } from '../../agent/setup.js';
import type { LivePatch, LivePatchPhase } from '../../src/api/generated/types.js';
import { nodeName, type NodeName } from '../../src/api/names.js';
import { systemClock } from '../../src/clock.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { registerNode } from '../../lab/controlplane/nodes.js';
import { createLogger } from '../../src/log.js';
import { kubectlOk } from '../support/kubectl.js';
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
const cluster = useOwnCluster({ nodes: 1, kernels: [KERNEL], prefix: 'mirror' });
const kc = (): ReturnType<typeof loadKubeConfig> => loadKubeConfig(cluster().plane.kubeconfig);

/** 503 for the first `failures` requests of each path, then the module. */
class Mirror {
  private server: Server | undefined;
  private readonly files = new Map<string, { bytes: Buffer; failures: number; hits: number }>();
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const file = this.files.get(req.url ?? '');
      if (!file) return void res.writeHead(404).end();
      file.hits++;
      if (file.hits <= file.failures) res.writeHead(503).end();
      else res.writeHead(200, { 'Content-Length': file.bytes.length }).end(file.bytes);
    });
    const server = this.server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    this.base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  async serve(path: string, module: ModuleOnDisk, failures: number): Promise<string> {
    this.files.set(path, { bytes: await readFile(module.hostPath), failures, hits: 0 });
    return `${this.base}${path}`;
  }

  hits(path: string): number {
    return this.files.get(path)?.hits ?? 0;
  }

  stop(): void {
    this.server?.close();
  }
}

const mirror = new Mirror();
const agents: Agent[] = [];

/** A node of its own pool, its agent retrying fetches for `retryForMs` (the default when undefined). */
async function nodeWithAgent(pool: string, retryForMs?: number): Promise<NodeName> {
  const name = nodeName(`mirror-${pool}`);
  await registerNode(kc(), {
    name,
    release: KERNEL,
    labels: { 'livepatch.io/pool': pool },
    providerID: `livepatch-sim://${name}`,
    osImage: 'Simulated Linux',
  });
  await kubectlOk(['annotate', 'node', name, 'sim.livepatch.io/transition-seconds=1']);
  const { agent } = await createAgent({
    kubeConfig: kc(),
    nodeName: name,
    backend: { kind: 'simulator' },
    clock: systemClock,
    log: createLogger({ component: 'agent', level: 'error', format: 'text' }),
    moduleDir: `/tmp/livepatch-mirror-${pool}-${process.pid}`,
    hostRoot: '/',
    ...(retryForMs !== undefined ? { moduleRetryForMs: retryForMs } : {}),
  });
  await agent.start();
  agents.push(agent);
  return name;
}

async function applyFromMirror(
  name: string,
  pool: string,
  module: { url: string; sha256: string },
  action: 'Rollback' | 'Halt',
): Promise<void> {
  await applyLivePatchSpec(name, {
    patchName: `livepatch_${name.replaceAll('-', '_')}`,
    nodeSelector: { matchLabels: { 'livepatch.io/pool': pool } },
    kernels: [{ release: KERNEL, module }],
    failureBudget: 0,
    stall: { action },
  });
}

function waitForPhase(name: string, phase: LivePatchPhase): Promise<LivePatch> {
  return waitUntil(
    `${name} to be ${phase}`,
    () => getLivePatch(name),
    (lp) => lp.status?.phase === phase,
    90_000,
  );
}

beforeAll(async () => {
  await mirror.start();
  await cluster().startController('mirror-controller');
});

describe('a module mirror that is down', () => {
  // Before the cluster's own afterAll stops the API server under them.
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    mirror.stop();
  });

  test('for its first three requests: the node waits, then patches; the rollout completes, nothing failed, failureBudget 0 not fired', async () => {
    const node = await nodeWithAgent('flaky');
    const module = await writeSimModule('livepatch_flaky_mirror', KERNEL);
    const url = await mirror.serve('/flaky.ko', module, 3);
    await applyFromMirror('flaky-mirror', 'flaky', { url, sha256: module.sha256 }, 'Rollback');
    const done = await waitForPhase('flaky-mirror', 'Complete');
    expect(done.status?.nodes).toMatchObject({ patched: 1 });
    expect(done.status?.nodes?.failed ?? 0).toBe(0);
    expect((await nodeReports('flaky-mirror')).get(node)?.phase).toBe('Patched');
    expect(mirror.hits('/flaky.ko')).toBe(4);
    // One Event for the outage, not one per attempt.
    const outage = (await eventsFor('flaky-mirror')).filter(
      (e) => e.reason === 'ModuleUnavailable',
    );
    expect(outage).toHaveLength(1);
    expect(outage[0]?.message).toContain(
      `node ${node}: cannot download ${url}: the server answers HTTP 503 Service Unavailable; attempt 1 failed, retrying at`,
    );
  });

  test('for good: the node fails once the retry bound is over, saying what happened and what to do', async () => {
    const node = await nodeWithAgent('down', 5000);
    const module = await writeSimModule('livepatch_down_mirror', KERNEL);
    const url = await mirror.serve('/down.ko', module, Infinity);
    await applyFromMirror('down-mirror', 'down', { url, sha256: module.sha256 }, 'Halt');
    const halted = await waitForPhase('down-mirror', 'Failed');
    expect(halted.status?.nodes?.failed).toBe(1);
    const report = (await nodeReports('down-mirror')).get(node);
    expect(report?.phase).toBe('Failed');
    // Attempts at 0, 1 and 3 s; the next would start 7 s after the first failure, past the 5 s bound.
    expect(report?.message).toContain(
      `cannot download ${url}: the server answers HTTP 503 Service Unavailable: still failing after 3 attempts over`,
    );
    expect(report?.message).toContain(
      'so the agent stopped trying; nothing was loaded. Make the module reachable from the node',
    );
    expect(report?.message).toContain('kubectl livepatch retry down-mirror');
    expect(mirror.hits('/down.ko')).toBe(3);
    const degraded = halted.status?.conditions?.find((c) => c.type === 'Degraded');
    expect(degraded).toMatchObject({ status: 'True', reason: 'Halted' });
    const messages = (await eventsFor('down-mirror')).map((e) => e.message);
    expect(messages.some((m) => m.includes('so the agent stopped trying'))).toBe(true);
  });
});
