// A test file that runs the controller gets a control plane of its own: the
// controller acts on every LivePatch and Node it sees, so it must not see
// other files' objects. Warm start is a few seconds.
import { afterAll, beforeAll } from '@jest/globals';
import { startFleet, type Fleet } from '../../lab/fleet/fleet.js';
import { systemClock } from '../../src/clock.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { startControlPlane, type LocalControlPlane } from '../../lab/controlplane/controlplane.js';
import { createLogger } from '../../src/log.js';
import { kubectlOk } from './kubectl.js';
import { runOperator, type Running } from '../../lab/operator-process.js';

export interface OwnCluster {
  readonly plane: LocalControlPlane;
  readonly fleet: Fleet;
  /** Controller processes started by this file; stopped after it. */
  readonly controllers: Running[];
  /** `args`: more flags for the controller, e.g. --alert-source-url. */
  startController(
    identity: string,
    metricsPort?: number,
    args?: readonly string[],
  ): Promise<Running>;
}

const quiet = (component: string): ReturnType<typeof createLogger> =>
  createLogger({ component, format: 'text', level: process.env['LOG_LEVEL'] ?? 'error' });

/** Starts a control plane, a simulated fleet and (on demand) controllers for this test file. */
export function useOwnCluster(fleetOptions: {
  nodes: number;
  kernels: string[];
  prefix: string;
  /** Each agent gets a Pod in "default" (the controller's default namespace): liveness by its readiness. */
  pods?: boolean;
}): () => OwnCluster {
  let cluster: OwnCluster | undefined;
  const previousKubeconfig = process.env['KUBECONFIG'];
  beforeAll(async () => {
    const plane = await startControlPlane({ log: quiet('controlplane') });
    process.env['KUBECONFIG'] = plane.kubeconfig;
    const fleet = await startFleet({
      kubeConfig: loadKubeConfig(plane.kubeconfig),
      nodes: fleetOptions.nodes,
      kernels: fleetOptions.kernels,
      namePrefix: fleetOptions.prefix,
      clock: systemClock,
      log: quiet('fleet'),
      ...(fleetOptions.pods ? { pods: { namespace: 'default' } } : {}),
    });
    await kubectlOk([
      'annotate',
      'nodes',
      '-l',
      'livepatch.io/simulated=true',
      'sim.livepatch.io/transition-seconds=1',
    ]);
    const controllers: Running[] = [];
    cluster = {
      plane,
      fleet,
      controllers,
      startController: async (identity, metricsPort = 0, args = []) => {
        const c = runOperator([
          'controller',
          `--kubeconfig=${plane.kubeconfig}`,
          `--identity=${identity}`,
          `--metrics-port=${metricsPort}`,
          ...args,
        ]);
        controllers.push(c);
        await c.waitFor(/controller running/);
        return c;
      },
    };
  });
  afterAll(async () => {
    for (const c of cluster?.controllers ?? []) await c.stop('SIGKILL');
    await cluster?.fleet.stop();
    await cluster?.plane.stop();
    process.env['KUBECONFIG'] = previousKubeconfig;
  });
  return () => {
    if (!cluster) throw new Error('the cluster is not up yet');
    return cluster;
  };
}
