// `livepatch-operator controller`: the Deployment's process.
import { durationFlag } from './duration-flag.js';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { AGENT_POD_SELECTOR } from '../api/constants.js';
import { durationMs } from '../api/quantities.js';
import { parseDefaultGate } from '../controller/alert-gate.js';
import { AGENT_STALE_MS } from '../api/heartbeat.js';
import { DEFAULT_LIVENESS_WINDOWS } from '../controller/liveness.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../controller/notification-outbox.js';
import { Controller, type ControllerOptions } from '../controller/runtime.js';
import { WEBHOOK_FORMATS, type WebhookFormat, type WebhookOptions } from '../controller/webhook.js';
import { loadKubeConfig } from '../kube/config.js';
import { createLogger } from '../log.js';
import { untilSignal } from './signals.js';

/** The liveness graces' defaults, as flags take them (DEFAULT_LIVENESS_WINDOWS is their one home). */
const UNREADY_GRACE = `${DEFAULT_LIVENESS_WINDOWS.unreadyMs / 1000}s`;
const DOWN_GRACE = `${DEFAULT_LIVENESS_WINDOWS.downMs / 1000}s`;

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
                          an agent whose Pod is running but not Ready this long is silent (default ${UNREADY_GRACE})
  --agent-down-grace DUR  an agent whose Pod is not running, or gone, this long is silent (default ${DOWN_GRACE})

An agent that names its Pod is alive while that Pod is Ready on its node; an
agent without a Pod while its heartbeat is younger than ${AGENT_STALE_MS / 1000}s. A node whose agent
is silent gets no new patch, and one baking fails its health gate (AgentSilent).

The alert gate (docs/change-management.md): gated LivePatches start no node while matching alerts fire.
  --alert-source-url URL          Prometheus-compatible API; GET URL/api/v1/alerts is asked (default: none,
                                  and a LivePatch that asks for a gate waits, AlertGateNotConfigured)
  --alert-source-interval DUR     how often it is asked, once for every LivePatch (default 15s)
  --alert-source-timeout DUR      how long an answer may take (default 5s)
  --alert-gate-default JSON       the gate of every LivePatch without spec.rollout.alertGate, in its shape,
                                  e.g. '{"matchers":["severity=\\"critical\\""]}' (default: none;
                                  without a source every LivePatch it gates waits, AlertGateNotConfigured)

Notifications (off unless --notify-url-file is given; README, Notifications):
  --notify-url-file FILE  a file holding the webhook URL (the chart mounts a Secret key there), read at
                          every try; the URL is never logged, only its scheme and host
  --notify-format F       json (default): text plus the decision's fields; slack: {"text"} alone
  --notify-attempts N     tries per notification before it is given up with a Warning Event (default ${DEFAULT_RETRY.maxAttempts});
                          waits of ${DEFAULT_RETRY.initialMs / 1000}s doubling, or the receiver's Retry-After
  --notify-timeout DUR    one try's whole budget (default 10s)
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
  // fetch refuses credentials in a URL, quoting it whole in its error: never let one reach status or logs.
  if (parsed.username || parsed.password)
    return `--alert-source-url ${parsed.protocol}//${parsed.host}: credentials in the URL are not supported; put an authenticating proxy in front of Prometheus or allow the controller by network policy`;
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

const OPTIONS = {
  kubeconfig: { type: 'string' },
  'lease-namespace': { type: 'string' },
  'lease-name': { type: 'string', default: 'livepatch-controller' },
  identity: { type: 'string' },
  'metrics-port': { type: 'string', default: '8080' },
  'agent-namespace': { type: 'string' },
  'agent-pod-selector': { type: 'string', default: AGENT_POD_SELECTOR },
  'agent-unready-grace': { type: 'string', default: UNREADY_GRACE },
  'agent-down-grace': { type: 'string', default: DOWN_GRACE },
  'alert-source-url': { type: 'string' },
  'alert-source-interval': { type: 'string', default: '15s' },
  'alert-source-timeout': { type: 'string', default: '5s' },
  'alert-gate-default': { type: 'string' },
  'notify-url-file': { type: 'string' },
  'notify-format': { type: 'string', default: 'json' },
  'notify-attempts': { type: 'string', default: String(DEFAULT_RETRY.maxAttempts) },
  'notify-timeout': { type: 'string', default: '10s' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS }>>['values'];

const isFormat = (value: string): value is WebhookFormat =>
  (WEBHOOK_FORMATS as readonly string[]).includes(value);

/** The webhook the flags describe, or undefined without --notify-url-file. */
function notificationsFrom(
  values: Values,
): { webhook: WebhookOptions; retry: RetryPolicy } | undefined {
  const urlFile = values['notify-url-file'];
  if (!urlFile) return undefined;
  const format = values['notify-format'];
  if (!isFormat(format))
    throw new Error(`--notify-format must be ${WEBHOOK_FORMATS.join(' or ')}, not ${format}`);
  const attempts = Number(values['notify-attempts']);
  if (!Number.isInteger(attempts) || attempts < 1)
    throw new Error(
      `--notify-attempts must be a whole number of tries, 1 or more, not ${values['notify-attempts']}`,
    );
  let timeoutMs: number;
  try {
    timeoutMs = durationMs(values['notify-timeout']);
  } catch (err) {
    throw new Error(
      `--notify-timeout ${JSON.stringify(values['notify-timeout'])}: ${(err as Error).message}; give a duration such as 10s`,
      { cause: err },
    );
  }
  if (timeoutMs <= 0) throw new Error('--notify-timeout must be longer than 0s');
  return {
    webhook: { urlFile, format, timeoutMs },
    retry: { ...DEFAULT_RETRY, maxAttempts: attempts },
  };
}

export async function runController(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: OPTIONS });
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
  const notifications = notificationsFrom(values);
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
    ...alerts,
    ...(notifications ? { notifications } : {}),
    onLostLeadership: () => {
      log.error('lost the leader lease; exiting so a fresh replica can take over', { identity });
      lostLeadership();
    },
  });
  await controller.start();
  log.info('controller running', {
    identity,
    notifications: notifications
      ? `${notifications.webhook.format} webhook, URL from ${notifications.webhook.urlFile}`
      : 'off',
  });
  // A replica that lost the lease exits non-zero: it must never act beside the new leader.
  const reason = await Promise.race([untilSignal(), lost]);
  log.info('stopping', { reason });
  await controller.stop();
  return reason === 'lost the lease' ? 1 : 0;
}
