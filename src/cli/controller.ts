// `livepatch-operator controller`: the Deployment's process.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { durationMs } from '../api/quantities.js';
import { parseDefaultGate } from '../controller/alert-gate.js';
import { Controller, type ControllerOptions } from '../controller/runtime.js';
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

The alert gate (docs/change-management.md): gated LivePatches start no node while matching alerts fire.
  --alert-source-url URL          Prometheus-compatible API; GET URL/api/v1/alerts is asked (default: none,
                                  and a LivePatch that asks for a gate waits, AlertGateNotConfigured)
  --alert-source-interval DUR     how often it is asked, once for every LivePatch (default 15s)
  --alert-source-timeout DUR      how long an answer may take (default 5s)
  --alert-gate-default JSON       the gate of every LivePatch without spec.rollout.alertGate, in its shape,
                                  e.g. '{"matchers":["severity=\\"critical\\""]}' (default: none;
                                  without a source every LivePatch it gates waits, AlertGateNotConfigured)
`;

type AlertOptions = Pick<ControllerOptions, 'alertSource' | 'defaultAlertGate'>;

/** The alert source from its flags, or what is wrong with them. */
function alertSource(
  url: string,
  interval: string,
  timeout: string,
): NonNullable<ControllerOptions['alertSource']> | string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `--alert-source-url ${url} is not a URL`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return `--alert-source-url must be http or https, not ${parsed.protocol}`;
  let intervalMs: number;
  let timeoutMs: number;
  try {
    intervalMs = durationMs(interval);
    timeoutMs = durationMs(timeout);
  } catch (err) {
    return `--alert-source-interval/--alert-source-timeout: ${(err as Error).message}; give a duration such as 15s`;
  }
  if (intervalMs < 1000 || timeoutMs < 100 || timeoutMs > intervalMs)
    return '--alert-source-interval must be at least 1s, and --alert-source-timeout from 100ms up to the interval';
  return { url, intervalMs, timeoutMs };
}

/**
 * The alert gate's flags. A default gate without a source is allowed: every
 * LivePatch it gates then waits, saying so (AlertGateNotConfigured).
 */
function alertOptions(values: {
  url: string | undefined;
  interval: string;
  timeout: string;
  gate: string | undefined;
}): AlertOptions | string {
  const source = values.url ? alertSource(values.url, values.interval, values.timeout) : undefined;
  if (typeof source === 'string') return source;
  const defaultGate = values.gate ? parseDefaultGate(values.gate) : undefined;
  if (typeof defaultGate === 'string') return `--alert-gate-default: ${defaultGate}`;
  return {
    ...(source ? { alertSource: source } : {}),
    ...(defaultGate ? { defaultAlertGate: defaultGate } : {}),
  };
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
      'alert-source-url': { type: 'string' },
      'alert-source-interval': { type: 'string', default: '15s' },
      'alert-source-timeout': { type: 'string', default: '5s' },
      'alert-gate-default': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const alerts = alertOptions({
    url: values['alert-source-url'],
    interval: values['alert-source-interval'],
    timeout: values['alert-source-timeout'],
    gate: values['alert-gate-default'],
  });
  if (typeof alerts === 'string') {
    process.stderr.write(`livepatch-operator controller: ${alerts}\n`);
    return 2;
  }
  const log = createLogger({ component: 'controller' });
  const identity = values.identity ?? `${hostname()}-${process.pid}`;
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
    lease: {
      namespace: values['lease-namespace'] ?? process.env['POD_NAMESPACE'] ?? 'default',
      name: values['lease-name'],
      identity,
    },
    ...alerts,
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
