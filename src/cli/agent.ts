// `livepatch-operator agent`: the DaemonSet's process, one per node.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { createAgent, RefusedBackendError, type BackendChoice } from '../../agent/setup.js';
import { reportAgentRefusal } from '../../agent/livepatchnode.js';
import { AgentMetrics, serveAgentEndpoints } from '../../agent/server.js';
import { nodeName } from '../api/names.js';
import { systemClock } from '../clock.js';
import { loadKubeConfig } from '../kube/config.js';
import { createLogger } from '../log.js';
import { untilSignal } from './signals.js';

const HELP = `Usage: livepatch-operator agent [flags]

Runs the node agent for NODE_NAME (or --node): watches the node's
LivePatchNode, loads, enables, reverses and unloads livepatches as its spec
asks, and reports the kernel's state in its status.

  --node NAME            node to manage (default: $NODE_NAME)
  --kubeconfig FILE      kubeconfig (default: in-cluster, else $KUBECONFIG)
  --backend KIND         sysfs (default) or simulator
  --kernel-release REL   simulator only: the simulated \`uname -r\` (default: the Node's kernelVersion)
  --sysfs-root DIR       where sysfs is mounted (default /sys)
  --proc-root DIR        where procfs is mounted (default /proc)
  --host-root DIR        the host's / for hostPath modules (default /)
  --module-dir DIR       where verified modules are kept (default /var/lib/livepatch-operator/modules)
  --metrics-port PORT    /healthz and /metrics (default 8081; 0 disables)
  --allow-sysfs-on-kind  drive the real sysfs even on a kind node (it shares the host kernel)
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
  'metrics-port': { type: 'string', default: '8081' },
  'allow-sysfs-on-kind': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h' },
} as const;

function backendChoice(
  values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS }>>['values'],
): BackendChoice {
  if (values.backend === 'simulator') {
    return {
      kind: 'simulator',
      ...(values['kernel-release'] ? { release: values['kernel-release'] } : {}),
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
  const log = createLogger({ component: 'agent' });
  const kubeConfig = loadKubeConfig(values.kubeconfig);
  const metrics = new AgentMetrics();
  let agent;
  try {
    ({ agent } = await createAgent({
      kubeConfig,
      nodeName: nodeName(name),
      backend: backendChoice(values),
      clock: systemClock,
      log,
      moduleDir: resolve(values['module-dir']),
      hostRoot: values['host-root'],
      onReconciled: (status) => {
        metrics.observe(status, Date.now());
      },
      onStatusWritten: (why) => {
        metrics.statusWritten(why);
      },
    }));
  } catch (err) {
    if (err instanceof RefusedBackendError) {
      log.error(err.message, { node: name });
      await reportAgentRefusal(
        kubeConfig,
        nodeName(name),
        'BackendRefused',
        err.message,
        log,
      ).catch((e: unknown) => {
        log.warn('cannot report the refusal on the LivePatchNode', {
          node: name,
          error: (e as Error).message,
        });
      });
      return 3;
    }
    throw err;
  }
  await agent.start();
  const port = Number(values['metrics-port']);
  const server = port > 0 ? serveAgentEndpoints(metrics, port, 120_000) : undefined;
  log.info('agent running', { node: name, backend: values.backend });
  const signal = await untilSignal();
  log.info('stopping', { node: name, signal });
  await agent.stop();
  server?.close();
  return 0;
}
