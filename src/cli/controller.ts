// `livepatch-operator controller`: the Deployment's process.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { AGENT_POD_SELECTOR } from '../api/constants.js';
import { durationMs } from '../api/quantities.js';
import { DEFAULT_LIVENESS_WINDOWS } from '../controller/liveness.js';
import { Controller } from '../controller/runtime.js';
import { loadKubeConfig } from '../kube/config.js';
import { createLogger } from '../log.js';
import { untilSignal } from './signals.js';

const HELP = `Usage: livepatch-operator controller [flags]

Paces LivePatch rollouts (rolling, maxUnavailable nodes in flight), writes each node's LivePatchNode entries,
aggregates the nodes into LivePatch.status, applies the stall policy, and
records Events. Several replicas may run: one holds the leader Lease and acts;
a standby takes over within 17 s of the leader dying (at once after a clean stop).

  --kubeconfig FILE       kubeconfig (default: in-cluster, else $KUBECONFIG)
  --lease-namespace NS    namespace of the leader Lease (default: $POD_NAMESPACE, else default)
  --lease-name NAME       name of the leader Lease (default livepatch-controller)
  --identity ID           this replica's name in the Lease (default: hostname-pid)
  --metrics-port PORT     /healthz, /readyz and /metrics (default 8080; 0 disables)
  --agent-namespace NS    namespace of the agents' Pods (default: $POD_NAMESPACE, else default)
  --agent-pod-selector S  label selector of the agents' Pods
                          (default ${AGENT_POD_SELECTOR})
  --agent-unready-grace DUR
                          an agent whose Pod is running but not Ready this long is silent (default 15s)
  --agent-down-grace DUR  an agent whose Pod is not running, or gone, this long is silent (default 60s)

An agent that names its Pod is alive while that Pod is Ready on its node; an
agent without a Pod while its heartbeat is younger than 90s. A node whose agent
is silent gets no new patch, and one baking fails its health gate (AgentSilent).
`;

function durationFlag(flag: string, value: string): number {
  try {
    return durationMs(value);
  } catch (err) {
    throw new Error(
      `--${flag} ${JSON.stringify(value)}: ${(err as Error).message}; give a duration such as 15s or 1m`,
      { cause: err },
    );
  }
}

export async function runController(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      kubeconfig: { type: 'string' },
      'lease-namespace': { type: 'string' },
      'lease-name': { type: 'string', default: 'livepatch-controller' },
      identity: { type: 'string' },
      'metrics-port': { type: 'string', default: '8080' },
      'agent-namespace': { type: 'string' },
      'agent-pod-selector': { type: 'string', default: AGENT_POD_SELECTOR },
      'agent-unready-grace': { type: 'string', default: '15s' },
      'agent-down-grace': { type: 'string', default: '60s' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const log = createLogger({ component: 'controller' });
  const identity = values.identity ?? `${hostname()}-${process.pid}`;
  const namespace = process.env['POD_NAMESPACE'] ?? 'default';
  let lostLeadership = (): void => undefined;
  const lost = new Promise<'lost the lease'>((resolve) => {
    lostLeadership = () => {
      resolve('lost the lease');
    };
  });
  const controller = new Controller({
    kc: loadKubeConfig(values.kubeconfig),
    log,
    port: Number(values['metrics-port']),
    agentPods: {
      namespace: values['agent-namespace'] ?? namespace,
      selector: values['agent-pod-selector'],
    },
    livenessWindows: {
      ...DEFAULT_LIVENESS_WINDOWS,
      unreadyMs: durationFlag('agent-unready-grace', values['agent-unready-grace']),
      downMs: durationFlag('agent-down-grace', values['agent-down-grace']),
    },
    lease: {
      namespace: values['lease-namespace'] ?? namespace,
      name: values['lease-name'],
      identity,
    },
    onLostLeadership: () => {
      log.error('lost the leader lease; exiting so a fresh replica can take over', { identity });
      lostLeadership();
    },
  });
  await controller.start();
  log.info('controller running', { identity });
  // A replica that lost the lease exits non-zero: it must never act beside the new leader.
  const reason = await Promise.race([untilSignal(), lost]);
  log.info('stopping', { reason });
  await controller.stop();
  return reason === 'lost the lease' ? 1 : 0;
}
