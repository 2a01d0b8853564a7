// Several real-kernel nodes at once, alternating the pinned kernel lines,
// for the demo (`--vm-nodes N`) and the tests: boots them, as many at once as
// the host has cores, waits until each one's agent reports, and writes
// LivePatch kernel entries for their builds.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LivePatchNode } from '../../src/api/generated/types.js';
import { nodeName } from '../../src/api/names.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { getOrUndefined, PATHS } from '../../src/kube/resources.js';
import type { Logger } from '../../src/log.js';
import { prepareHost } from './host.js';
import { ensureKernelAssets, type KernelAssets, type TEST_MODULES } from './kernel-assets.js';
import { KERNEL_LINES } from './kernels.js';
import { mapLimited, vmSlots } from '../parallel.js';
import { poll } from '../wait.js';
import { startVmNode, type VmNode } from './vm-node.js';

/** Booting, then Node 24 and the API client on an emulated CPU: tens of seconds. */
const REPORT_TIMEOUT_MS = 5 * 60_000;

export interface KernelEntry {
  readonly release: string;
  readonly module: { readonly hostPath: string; readonly sha256: string };
}

export interface VmFleet {
  readonly nodes: readonly VmNode[];
  /** Each kernel line's build, as booted: the pin, or the newest of its line when Debian dropped the pin. */
  readonly kernels: readonly KernelAssets[];
  /** One `spec.kernels` entry per kernel line in the fleet, for a test module's real build. */
  kernelEntries(module: (typeof TEST_MODULES)[number]): Promise<KernelEntry[]>;
  stop(): Promise<void>;
}

export interface VmFleetOptions {
  readonly count: number;
  readonly kubeconfig: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly log: Logger;
}

async function waitForReport(o: VmFleetOptions, node: VmNode): Promise<void> {
  const kc = loadKubeConfig(o.kubeconfig);
  const reported = await poll(
    () => getOrUndefined<LivePatchNode>(kc, `${PATHS.livePatchNodes}/${node.name}`),
    (lpn) => lpn?.status?.backend === 'sysfs',
    REPORT_TIMEOUT_MS,
    { intervalMs: 1000 },
  );
  if (!reported.ok)
    throw new Error(
      `the agent on ${node.name} did not report within ${REPORT_TIMEOUT_MS / 1000}s:\n${node.vm.console().slice(-4000)}`,
    );
}

export async function startVmFleet(o: VmFleetOptions): Promise<VmFleet> {
  const problem = await prepareHost(o.log);
  if (problem) throw new Error(`cannot boot real-kernel nodes: ${problem}`);
  const lines = KERNEL_LINES.slice(0, Math.max(1, Math.min(o.count, KERNEL_LINES.length)));
  const assets: KernelAssets[] = [];
  for (const line of lines) assets.push(await ensureKernelAssets(line, o.log));
  // One vCPU each: booting more at once than the host has cores slows every boot.
  const nodes: VmNode[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.filter(Boolean).map((n) => n.stop()));
  };
  try {
    await mapLimited(
      Array.from({ length: o.count }, (_, i) => i),
      vmSlots(),
      async (i) => {
        const a = assets[i % assets.length] as KernelAssets;
        const node = await startVmNode({
          name: nodeName(`vm-${a.line.line.replace('.', '-')}-${Math.floor(i / assets.length)}`),
          assets: a,
          kubeconfig: o.kubeconfig,
          labels: o.labels ?? {},
          log: o.log,
        });
        nodes[i] = node;
        await waitForReport(o, node);
      },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    nodes,
    kernels: assets,
    stop,
    kernelEntries: (module) =>
      Promise.all(
        assets.map(async (a) => {
          const hostPath = join(a.modules, `${module}.ko`);
          const sha256 = createHash('sha256')
            .update(await readFile(hostPath))
            .digest('hex');
          return { release: a.line.release, module: { hostPath, sha256 } };
        }),
      ),
  };
}
