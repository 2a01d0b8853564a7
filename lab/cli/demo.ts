// `livepatch-operator demo` (`npm run demo`): the whole operator on a laptop.
// A real kube-apiserver and etcd, the controller, a simulated fleet of nodes
// on two kernels (and one the patch has no build for), a LivePatch rolled out
// live, 25% of the nodes at a time, then a second one whose node stalls and is rolled back.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { writeSimModuleFile } from '../../agent/kernel/sim/sim-module.js';
import {
  AGENT_POD_SELECTOR,
  API_VERSION,
  FIELD_MANAGER,
  LIVEPATCH,
  SIM_ANNOTATIONS,
} from '../../src/api/constants.js';
import type { LivePatch } from '../../src/api/generated/types.js';
import { systemClock } from '../../src/clock.js';
import { DEFAULT_LIVENESS_WINDOWS } from '../../src/controller/liveness.js';
import { Controller } from '../../src/controller/runtime.js';
import { rolloutOrder } from '../../src/controller/targets.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { followLivePatch } from '../../src/kube/follow.js';
import { rawJson } from '../../src/kube/raw.js';
import { mergePatch, PATHS } from '../../src/kube/resources.js';
import { startControlPlane } from '../controlplane/controlplane.js';
import { createLogger, type Logger } from '../../src/log.js';
import type { VmFleet } from '../kernel/vm-fleet.js';
import { progressLine } from '../../src/cli/progress.js';
import { untilSignal } from '../../src/cli/signals.js';

const HELP = `Usage: livepatch-operator demo [--nodes N] [--vm-nodes N] [--exit]

Starts a local control plane, the controller and a simulated fleet, then
rolls a livepatch out live (25% of the nodes at a time), and rolls a second one back after
one of its nodes stalls. Prints the fleet's progress as it happens, then stays
up (KUBECONFIG printed) until Ctrl-C so you can look around with kubectl.

  --nodes N      simulated nodes (default 12)
  --vm-nodes N   also N real-kernel nodes: VMs running Debian's 5.10, 6.1 and 6.12
                 kernels under qemu, each with the real agent on sysfs (the
                 first use fetches and builds them; a Debian host with qemu)
  --exit         stop after the two rollouts instead of staying up
`;

const KERNELS = ['6.1.0-26-amd64', '6.8.0-45-generic', '5.15.0-1-generic'];
const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Real-kernel nodes, when asked for: their builds of the lab's test modules join the manifests. */
interface RealKernels {
  readonly fleet: VmFleet;
  /** The test module each demo patch uses on a real kernel; the simulated builds take its name. */
  readonly modules: Readonly<Record<string, 'lpt_cmdline' | 'lpt_stall'>>;
}

async function livePatchManifest(
  dir: string,
  name: string,
  stall: Record<string, unknown>,
  real?: RealKernels,
): Promise<object> {
  const realModule = real?.modules[name];
  const patchName = realModule ?? `livepatch_${name.replaceAll('-', '_')}`;
  const kernels: object[] = realModule ? await real.fleet.kernelEntries(realModule) : [];
  // The fleet's third kernel gets no build: those nodes are notApplicable, never failed.
  for (const release of KERNELS.slice(0, 2)) {
    const file = await writeSimModuleFile(dir, { name: patchName, kernel: release });
    kernels.push({ release, module: { hostPath: file.path, sha256: file.sha256 } });
  }
  return {
    apiVersion: API_VERSION,
    kind: LIVEPATCH.kind,
    metadata: { name },
    spec: {
      patchName,
      cves: ['CVE-2024-1086'],
      kernels,
      rollout: { maxUnavailable: '25%' },
      stall,
    },
  };
}

/** Prints every change of the LivePatch's status line, as it is watched, until it reaches one of `phases`. */
function follow(
  kc: ReturnType<typeof loadKubeConfig>,
  name: string,
  phases: string[],
  log: Logger,
): Promise<LivePatch> {
  let last = '';
  return followLivePatch(
    kc,
    name,
    log,
    (lp) => phases.includes(lp.status?.phase ?? ''),
    (lp) => {
      const line = progressLine(lp);
      // The first 9 characters are the time of day: print only real changes.
      if (line.slice(9) !== last.slice(9)) say(line);
      last = line;
    },
  );
}

async function stallOneNode(
  kc: ReturnType<typeof loadKubeConfig>,
  fleet: Fleet,
  livePatch: string,
): Promise<string> {
  const eligible = fleet.nodes.filter((_, i) => i % KERNELS.length !== 2);
  const node = rolloutOrder(livePatch, eligible)[0] ?? '';
  await mergePatch(
    kc,
    `${PATHS.nodes}/${node}`,
    {
      metadata: { annotations: { [SIM_ANNOTATIONS.stuckTasks]: '1' } },
    },
    FIELD_MANAGER.fleet,
  );
  return node;
}

export async function runDemo(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      nodes: { type: 'string', default: '12' },
      'vm-nodes': { type: 'string', default: '0' },
      exit: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    say(HELP);
    return 0;
  }
  const log = createLogger({ component: 'demo', format: 'text', level: 'warn' });
  say('starting a local kube-apiserver and etcd (the first run builds them: several minutes)…');
  const plane = await startControlPlane({ log });
  const kc = loadKubeConfig(plane.kubeconfig);
  const fleet = await startFleet({
    kubeConfig: kc,
    nodes: Number(values.nodes),
    kernels: KERNELS,
    namePrefix: 'node',
    clock: systemClock,
    log,
  });
  const controller = new Controller({
    kc,
    log,
    port: 0,
    // The demo's agents run without Pods: their heartbeats tell that they are alive.
    agentPods: { namespace: 'default', selector: AGENT_POD_SELECTOR },
    livenessWindows: DEFAULT_LIVENESS_WINDOWS,
    lease: { namespace: 'default', name: 'livepatch-controller', identity: 'demo' },
    onLostLeadership: () => undefined,
  });
  await controller.start();
  say(
    `control plane, controller and ${fleet.nodes.length} simulated nodes on kernels ${KERNELS.join(', ')} are up`,
  );
  const real = await startRealKernels(Number(values['vm-nodes']), plane.kubeconfig, log);
  say(`KUBECONFIG=${plane.kubeconfig}\n`);
  const dir = join(plane.dir, 'modules');
  await mkdir(dir, { recursive: true });

  const first = await livePatchManifest(dir, 'cve-2024-1086', { timeout: '20s' }, real);
  say(`kubectl apply -f - <<EOF\n${stringify(first).trimEnd()}\nEOF\n`);
  await rawJson(kc, 'POST', PATHS.livePatches, first);
  await follow(kc, 'cve-2024-1086', ['Complete', 'Failed', 'RolledBack'], log);

  const second = await livePatchManifest(
    dir,
    'cve-2024-0001',
    { timeout: real ? '30s' : '5s', action: 'Rollback' },
    real,
  );
  if (real) {
    say(
      `\nnow a patch of the function a kthread sleeps in on the real-kernel nodes (${real.fleet.nodes.map((n) => n.name).join(', ')}): their transitions stall for real:`,
    );
  } else {
    const stuck = await stallOneNode(kc, fleet, 'cve-2024-0001');
    say(
      `\nnow a patch whose transition stalls on ${stuck} (a vCPU thread that never leaves guest mode):`,
    );
  }
  await rawJson(kc, 'POST', PATHS.livePatches, second);
  const rolledBack = await follow(kc, 'cve-2024-0001', ['RolledBack', 'Complete', 'Failed'], log);
  const degraded = rolledBack.status?.conditions?.find((c) => c.type === 'Degraded');
  say(`\n${rolledBack.metadata.name ?? ''}: ${degraded?.reason ?? ''}: ${degraded?.message ?? ''}`);

  if (!values.exit) {
    say(
      `\nexplore: export KUBECONFIG=${plane.kubeconfig}; kubectl get livepatches,livepatchnodes; kubectl describe lp cve-2024-0001`,
    );
    say('Ctrl-C stops everything.');
    await untilSignal();
  }
  await controller.stop();
  await real?.fleet.stop();
  await fleet.stop();
  await plane.stop();
  return 0;
}

/**
 * Boots `count` real-kernel nodes. The harness lives with the tests
 * (lab/kernel) and is loaded only when asked for, so the default demo stays
 * as it was. On them the first patch is the lab's cmdline livepatch and the
 * second patches the function the lab's kthread sleeps in: it stalls for real.
 */
async function startRealKernels(
  count: number,
  kubeconfig: string,
  log: Logger,
): Promise<RealKernels | undefined> {
  if (!Number.isInteger(count) || count <= 0) return undefined;
  say(
    `booting ${count} real-kernel node(s) under qemu (the first run fetches and builds the kernels)…`,
  );
  const { startVmFleet } = await import('../kernel/vm-fleet.js');
  const vmFleet = await startVmFleet({ count, kubeconfig, log });
  say(`real-kernel nodes up: ${vmFleet.nodes.map((n) => n.name).join(', ')}`);
  return {
    fleet: vmFleet,
    modules: { 'cve-2024-1086': 'lpt_cmdline', 'cve-2024-0001': 'lpt_stall' },
  };
}
