// `livepatch-operator agent`: the DaemonSet's process, one per node.
import { durationFlag } from './duration-flag.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { API_UNREACHABLE_MS, type Agent } from '../../agent/agent.js';
import {
  createAgent,
  RefusedBackendError,
  type AgentSetup,
  type BackendChoice,
} from '../../agent/setup.js';
import { reportAgentRefusal } from '../../agent/report/livepatchnode.js';
import { SIM_KERNEL_FILE } from '../../agent/kernel/sim/sim-state-file.js';
import { redirectHostList } from '../../agent/module/module-policy.js';
import { DEFAULT_RETRY_POLICY } from '../../agent/module/fetch-retry.js';
import { AgentMetrics, serveAgentEndpoints } from '../../agent/server.js';
import type { AgentPod } from '../api/generated/types.js';
import { AGENT_HEARTBEAT_MS } from '../api/heartbeat.js';
import { nodeName } from '../api/names.js';
import { formatDuration } from '../api/quantities.js';
import { systemClock } from '../clock.js';
import { loadKubeConfig } from '../kube/config.js';
import { createLogger } from '../log.js';
import { untilSignal } from './signals.js';

/** Flag defaults, as flags take them, from their homes. */
const MODULE_RETRY_FOR = formatDuration(DEFAULT_RETRY_POLICY.giveUpAfterMs);
const UNREADY_AFTER = formatDuration(API_UNREACHABLE_MS);

const HELP = `Usage: livepatch-operator agent [flags]

Runs the node agent for NODE_NAME (or --node): watches the node's
LivePatchNode, loads, enables, reverses and unloads livepatches as its spec
asks, and reports the kernel's state in its status. It remembers what it was
asked for in --state-dir, so that, restarted while the API server is
unreachable, it still reverses a stalled transition and reports once the
server answers.

  --node NAME              node to manage (default: $NODE_NAME)
  --kubeconfig FILE        kubeconfig (default: in-cluster, else $KUBECONFIG)
  --backend KIND           sysfs (default) or simulator
  --kernel-release REL     simulator only: the simulated \`uname -r\` (default: the Node's kernelVersion)
                           (the simulated kernel is kept in --state-dir/${SIM_KERNEL_FILE}, so it
                           outlives the agent process as a real kernel does)
  --sysfs-root DIR         where sysfs is mounted (default /sys)
  --proc-root DIR          where procfs is mounted (default /proc)
  --host-root DIR          the host's / for hostPath modules (default /)
  --module-dir DIR         where verified modules are kept (default /var/lib/livepatch-operator/modules)
  --module-namespace NS    the only namespace module ConfigMaps are read from (default: any)
  --module-redirect-hosts H1,H2
                           hosts a module URL may redirect to besides its own (default: none)
  --module-ca-file FILE    CA certificates (PEM) trusted for module URLs beside the system's
  --module-retry-for DUR   how long a module fetch that may work later (HTTP 5xx, 408, 429, a
                           timeout, a dropped connection) is retried, the node Loading, before it
                           fails: waits of ${formatDuration(DEFAULT_RETRY_POLICY.firstDelayMs)} doubling to ${formatDuration(DEFAULT_RETRY_POLICY.maxDelayMs)} (default ${MODULE_RETRY_FOR})
  --state-dir DIR          where the node-local state is kept (default /var/lib/livepatch-operator)
  --metrics-port PORT      /healthz, /readyz and /metrics (default 8081; 0 disables)
  --allow-sysfs-on-kind    drive the real sysfs even on a kind node (it shares the host kernel)
  --unready-after DUR      /readyz fails once the kernel loop has not run, or (in a Pod) the API
                           server has not answered, for this long (default ${UNREADY_AFTER})

Run by a kubelet (POD_NAME, POD_NAMESPACE and POD_UID set from the downward
API), the agent names its Pod in its LivePatchNode's status and writes status
only when it changed: the controller reads the Pod's readiness for liveness.
Without them it writes a heartbeat every ${AGENT_HEARTBEAT_MS / 1000}s.
`;

const OPTIONS = {
  node: { type: 'string' },
  kubeconfig: { type: 'string' },
  backend: { type: 'string', default: 'sysfs' },
  'kernel-release': { type: 'string' },
  'sysfs-root': { type: 'string', default: '/sys' },
  'proc-root': { type: 'string', default: '/proc' },
  'host-root': { type: 'string', default: '/' },
  'module-dir': { type: 'string', default: '/var/lib/livepatch-operator/modules' },
  'module-namespace': { type: 'string' },
  'module-redirect-hosts': { type: 'string', default: '' },
  'module-ca-file': { type: 'string' },
  'module-retry-for': { type: 'string', default: MODULE_RETRY_FOR },
  'state-dir': { type: 'string', default: '/var/lib/livepatch-operator' },
  'metrics-port': { type: 'string', default: '8081' },
  'allow-sysfs-on-kind': { type: 'boolean', default: false },
  'unready-after': { type: 'string', default: UNREADY_AFTER },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS }>>['values'];

/** Liveness: the kernel loop ran within this long (it runs at least every 30 s). */
const KERNEL_LOOP_STALE_MS = 120_000;

/** The Pod the kubelet runs this agent in, from the downward API; none outside a Pod. */
function podFromEnv(env: NodeJS.ProcessEnv): AgentPod | undefined {
  const name = env['POD_NAME'];
  const namespace = env['POD_NAMESPACE'];
  const uid = env['POD_UID'];
  return name && namespace && uid ? { name, namespace, uid } : undefined;
}

function backendChoice(values: Values): BackendChoice {
  if (values.backend === 'simulator') {
    return {
      kind: 'simulator',
      ...(values['kernel-release'] ? { release: values['kernel-release'] } : {}),
      // The simulated kernel lives beside the agent's state: a killed agent restarts onto it.
      kernelFile: join(resolve(values['state-dir']), SIM_KERNEL_FILE),
    };
  }
  if (values.backend !== 'sysfs')
    throw new Error(`--backend must be sysfs or simulator, not ${values.backend}`);
  return {
    kind: 'sysfs',
    allowOnKind: values['allow-sysfs-on-kind'],
    options: { sysfsRoot: values['sysfs-root'], procRoot: values['proc-root'] },
  };
}

function setupFrom(
  values: Values,
  name: string,
  metrics: AgentMetrics,
  unreadyAfterMs: number,
): AgentSetup {
  const log = createLogger({ component: 'agent' });
  const pod = podFromEnv(process.env);
  return {
    kubeConfig: loadKubeConfig(values.kubeconfig),
    nodeName: nodeName(name),
    backend: backendChoice(values),
    clock: systemClock,
    log,
    moduleDir: resolve(values['module-dir']),
    hostRoot: values['host-root'],
    stateDir: resolve(values['state-dir']),
    ...(values['module-namespace'] ? { moduleNamespace: values['module-namespace'] } : {}),
    moduleRetryForMs: durationFlag('module-retry-for', values['module-retry-for']),
    moduleDownload: {
      redirectHosts: redirectHostList(values['module-redirect-hosts']),
      ...(values['module-ca-file']
        ? { extraCa: readFileSync(values['module-ca-file'], 'utf8') }
        : {}),
    },
    onReconciled: (status, actions) => {
      metrics.observe(status, actions, Date.now());
    },
    onStatusWritten: (why) => {
      metrics.statusWritten(why);
    },
    ...(pod ? { pod } : {}),
    apiUnreachableMs: unreadyAfterMs,
  };
}

/** The agent, or undefined when the node's backend refuses to run (reported on its LivePatchNode). */
async function create(setup: AgentSetup): Promise<Agent | undefined> {
  const { log, nodeName: name } = setup;
  try {
    return (await createAgent(setup)).agent;
  } catch (err) {
    if (!(err instanceof RefusedBackendError)) throw err;
    log.error(err.message, { node: name });
    await reportAgentRefusal(setup.kubeConfig, name, 'BackendRefused', err.message, log).catch(
      (e: unknown) => {
        log.warn('cannot report the refusal on the LivePatchNode', {
          node: name,
          error: (e as Error).message,
        });
      },
    );
    return undefined;
  }
}

export async function runAgent(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: OPTIONS });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const name = values.node ?? process.env['NODE_NAME'];
  if (!name)
    throw new Error(
      'no node: set NODE_NAME (the DaemonSet does, from spec.nodeName) or pass --node',
    );
  const metrics = new AgentMetrics();
  const unreadyAfterMs = durationFlag('unready-after', values['unready-after']);
  const setup = setupFrom(values, name, metrics, unreadyAfterMs);
  const started: { agent?: Agent } = {};
  const port = Number(values['metrics-port']);
  // Served from the start: the probes get an answer while the agent waits for its Node.
  const server =
    port > 0
      ? serveAgentEndpoints(metrics, port, KERNEL_LOOP_STALE_MS, () =>
          started.agent ? started.agent.readinessProblem(unreadyAfterMs) : 'starting',
        )
      : undefined;
  const agent = await create(setup);
  if (!agent) {
    server?.close();
    return 3;
  }
  started.agent = agent;
  await agent.start();
  setup.log.info('agent running', {
    node: name,
    backend: values.backend,
    liveness: setup.pod ? `readiness of pod ${setup.pod.name}` : 'heartbeat',
  });
  const signal = await untilSignal();
  setup.log.info('stopping', { node: name, signal });
  await agent.stop();
  server?.close();
  return 0;
}
