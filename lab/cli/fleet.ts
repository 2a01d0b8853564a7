// `livepatch-operator fleet`: a simulated fleet of nodes, each with its agent.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startFleet } from '../fleet/fleet.js';
import { AgentMetrics } from '../../agent/server.js';
import { serveEndpoints } from '../../src/observability/endpoints.js';
import { LABELS } from '../../src/api/constants.js';
import { systemClock } from '../../src/clock.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { createLogger } from '../../src/log.js';
import { untilSignal } from '../../src/cli/signals.js';

const HELP = `Usage: livepatch-operator fleet --nodes N --kernel REL[,REL...] [flags]

Creates N Node objects (kernel version, Ready, labels, providerID
livepatch-sim://NAME) and runs one agent per node with the simulator backend,
all in this process: each makes the requests a real agent makes, but they share
one watch of the LivePatchNodes (each agent sees its own) and the process's
connections. Kernels are assigned round-robin. Ctrl-C stops the
agents and deletes the Nodes and LivePatchNodes it created (--keep leaves them,
labelled ${LABELS.simulatedNode}=true).

  --nodes N            number of nodes (default 3)
  --kernel LIST        comma-separated kernel releases (required)
  --prefix NAME        node name prefix (default sim-node)
  --label KEY=VALUE    extra node label (repeatable), e.g. livepatch.io/pool=web
  --kubeconfig FILE    kubeconfig (default $KUBECONFIG)
  --metrics-port PORT  /metrics of all the agents together, e.g. status writes
                       by why (change or heartbeat) (default 0: none)
  --keep               leave the Nodes and LivePatchNodes when stopping
  --realistic-nodes    give each Node a cloud kubelet's size and shape (labels
                       with three zones, addresses, resources, conditions, 40
                       images, annotations): 10-30 KB each, as in a real fleet
  --state-dir DIR      keep each node's agent state and simulated kernel in
                       DIR/NODE (sim-kernel.json has the kernel's patches and
                       its load counts), kept after stopping; default: a
                       temporary folder, kernels in memory only
  --pods NAMESPACE     give each agent a Pod in NAMESPACE, bound to its node, its
                       readiness written as a kubelet would: the controller
                       reads it for liveness (its --agent-namespace), and the
                       agents write no heartbeat; default: no Pods, heartbeats
`;

function parseLabels(values: readonly string[] | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of values ?? []) {
    const [key, value] = pair.split('=', 2);
    if (!key || value === undefined)
      throw new Error(`--label takes KEY=VALUE, got ${JSON.stringify(pair)}`);
    labels[key] = value;
  }
  return labels;
}

export async function runFleet(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      nodes: { type: 'string', default: '3' },
      kernel: { type: 'string' },
      prefix: { type: 'string', default: 'sim-node' },
      label: { type: 'string', multiple: true },
      kubeconfig: { type: 'string' },
      'metrics-port': { type: 'string', default: '0' },
      keep: { type: 'boolean', default: false },
      'realistic-nodes': { type: 'boolean', default: false },
      'state-dir': { type: 'string' },
      pods: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.kernel) {
    process.stderr.write(`--kernel is required\n\n${HELP}`);
    return 2;
  }
  const count = Number(values.nodes);
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`--nodes must be a positive integer, not ${values.nodes}`);
  const log = createLogger({ component: 'fleet' });
  const metrics = new AgentMetrics();
  const port = Number(values['metrics-port']);
  const server = port > 0 ? serveEndpoints(port, metrics.registry, {}) : undefined;
  const fleet = await startFleet({
    kubeConfig: loadKubeConfig(values.kubeconfig),
    nodes: count,
    kernels: values.kernel.split(',').map((k) => k.trim()),
    namePrefix: values.prefix,
    labels: parseLabels(values.label),
    realisticNodes: values['realistic-nodes'],
    clock: systemClock,
    log,
    ...(values['state-dir'] ? { stateDir: resolve(values['state-dir']) } : {}),
    ...(values.pods ? { pods: { namespace: values.pods } } : {}),
    onStatusWritten: (why) => {
      metrics.statusWritten(why);
    },
  });
  process.stdout.write(`fleet ready: ${fleet.nodes.length} nodes\n`);
  const signal = await untilSignal();
  log.info('stopping the fleet', { signal, keep: values.keep });
  await fleet.stop({ keep: values.keep });
  server?.close();
  return 0;
}
