// The chart's disruption budget, topology spread and ClusterRoles for people,
// as the real helm (lab/go/helm) renders them for a set of values: what
// appears and what does not. The installed chart, with the cluster's own
// disruption and aggregation controllers, is test/integration/chart.test.ts.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ensureHelm } from '../../lab/controlplane/assets.js';
import { runCommand } from '../../lab/command.js';
import { parseDefaultGate } from '../../src/controller/alert-gate.js';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';

const CHART = join(repositoryRoot(), 'charts', 'livepatch-operator');
const log = createLogger({ component: 'test', level: 'error', format: 'text' });

interface Rendered {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string> };
  readonly spec?: Record<string, unknown>;
}

interface PodTemplated {
  readonly spec: {
    readonly selector: { readonly matchLabels: Record<string, string> };
    readonly template: {
      readonly metadata: { readonly labels: Record<string, string> };
      readonly spec: { readonly affinity?: unknown; readonly topologySpreadConstraints?: unknown };
    };
  };
}

let helm: string;
beforeAll(async () => {
  helm = await ensureHelm(log);
}, 1_800_000);

/** Every object `helm template` renders with these `--set`/`--set-json` flags. */
async function render(...flags: string[]): Promise<Rendered[]> {
  const text = await runCommand(helm, ['template', 'lp', CHART, '-n', 'ops', ...flags]);
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Rendered | null)
    .filter((o): o is Rendered => o !== null);
}

const ofKind = (objects: readonly Rendered[], kind: string): Rendered[] =>
  objects.filter((o) => o.kind === kind);

function workload(objects: readonly Rendered[], kind: string): PodTemplated {
  const [found] = ofKind(objects, kind);
  if (!found) throw new Error(`no ${kind} rendered`);
  return found as unknown as PodTemplated;
}

const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('the controller PodDisruptionBudget', () => {
  test('two replicas (the default): one budget over the controller Pods only, one at a time, unhealthy ones always evictable', async () => {
    const objects = await render();
    const budgets = ofKind(objects, 'PodDisruptionBudget');
    expect(budgets.map((b) => b.metadata.name)).toEqual(['lp-livepatch-operator-controller']);
    const spec = budgets[0]?.spec as {
      maxUnavailable: unknown;
      unhealthyPodEvictionPolicy: string;
      selector: { matchLabels: Record<string, string> };
    };
    expect(spec.maxUnavailable).toBe(1);
    expect(spec.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
    const controller = workload(objects, 'Deployment');
    const agent = workload(objects, 'DaemonSet');
    expect(matches(spec.selector.matchLabels, controller.spec.template.metadata.labels)).toBe(true);
    expect(matches(spec.selector.matchLabels, agent.spec.template.metadata.labels)).toBe(false);
  });

  test.each<[string, string[]]>([
    ['one replica', ['--set', 'controller.replicas=1']],
    ['no replica', ['--set', 'controller.replicas=0']],
    ['switched off', ['--set', 'controller.podDisruptionBudget.enabled=false']],
  ])('none with %s', async (_what, flags) => {
    expect(ofKind(await render(...flags), 'PodDisruptionBudget')).toEqual([]);
  });

  test('maxUnavailable as a percentage, with three replicas', async () => {
    const objects = await render(
      '--set',
      'controller.replicas=3',
      '--set',
      'controller.podDisruptionBudget.maxUnavailable=50%',
    );
    expect(ofKind(objects, 'PodDisruptionBudget')[0]?.spec?.['maxUnavailable']).toBe('50%');
  });

  test('helm refuses maxUnavailable 0, which would hold every drain', async () => {
    await expect(
      render('--set', 'controller.podDisruptionBudget.maxUnavailable=0'),
    ).rejects.toThrow(/maxUnavailable.: minimum: got 0, want 1/);
  });
});

describe('topology spread of the controller replicas', () => {
  test("by default over nodes, preferred, over this release's controller Pods of one revision; no anti-affinity", async () => {
    const objects = await render();
    const controller = workload(objects, 'Deployment');
    expect(controller.spec.template.spec.topologySpreadConstraints).toEqual([
      {
        topologyKey: 'kubernetes.io/hostname',
        maxSkew: 1,
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: controller.spec.selector.matchLabels },
        matchLabelKeys: ['pod-template-hash'],
      },
    ]);
    expect(controller.spec.template.spec.affinity).toBeUndefined();
    expect(workload(objects, 'DaemonSet').spec.template.spec.topologySpreadConstraints).toBe(
      undefined,
    );
  });

  test('a list of your own replaces it, its own selector kept; [] leaves none', async () => {
    const zone = {
      topologyKey: 'topology.kubernetes.io/zone',
      maxSkew: 1,
      whenUnsatisfiable: 'DoNotSchedule',
      labelSelector: { matchLabels: { team: 'kernel' } },
    };
    const own = workload(
      await render('--set-json', `controller.topologySpreadConstraints=${JSON.stringify([zone])}`),
      'Deployment',
    );
    expect(own.spec.template.spec.topologySpreadConstraints).toEqual([
      { ...zone, matchLabelKeys: ['pod-template-hash'] },
    ]);
    const none = workload(
      await render('--set-json', 'controller.topologySpreadConstraints=[]'),
      'Deployment',
    );
    expect(none.spec.template.spec.topologySpreadConstraints).toBeUndefined();
  });
});

describe('ClusterRoles for people', () => {
  const AGGREGATE = 'rbac.authorization.k8s.io/aggregate-to-';
  /** The aggregate-to-… labels of each ClusterRole for people, by name. */
  async function aggregation(...flags: string[]): Promise<Record<string, string[]>> {
    const roles = ofKind(await render(...flags), 'ClusterRole').filter((r) =>
      /-(view|edit)$/.test(r.metadata.name),
    );
    return Object.fromEntries(
      roles.map((r) => [
        r.metadata.name,
        Object.keys(r.metadata.labels ?? {})
          .filter((k) => k.startsWith(AGGREGATE))
          .map((k) => `${k.slice(AGGREGATE.length)}=${r.metadata.labels?.[k] ?? ''}`),
      ]),
    );
  }

  test.each<[string, string[], Record<string, string[]>]>([
    [
      'by default, view only',
      [],
      { 'lp-livepatch-operator-view': ['view=true'], 'lp-livepatch-operator-edit': [] },
    ],
    [
      'edit too when asked, into edit and admin',
      ['--set', 'rbac.aggregateToDefaultRoles.edit=true'],
      {
        'lp-livepatch-operator-view': ['view=true'],
        'lp-livepatch-operator-edit': ['edit=true', 'admin=true'],
      },
    ],
    [
      'neither',
      ['--set', 'rbac.aggregateToDefaultRoles.view=false'],
      { 'lp-livepatch-operator-view': [], 'lp-livepatch-operator-edit': [] },
    ],
    ['no roles without rbac.create', ['--set', 'rbac.create=false'], {}],
  ])('%s', async (_what, flags, expected) => {
    expect(await aggregation(...flags)).toEqual(expected);
  });
});

describe('the alert gate', () => {
  /** The controller container's arguments that configure the alert gate. */
  async function gateArgs(...flags: string[]): Promise<string[]> {
    const deployment = (await render(...flags)).find(
      (o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-controller'),
    ) as unknown as
      { spec: { template: { spec: { containers: { args: string[] }[] } } } } | undefined;
    const args = deployment?.spec.template.spec.containers[0]?.args ?? [];
    return args.filter((a) => a.startsWith('--alert-'));
  }

  test('by default the controller has no alert source and no default gate', async () => {
    expect(await gateArgs()).toEqual([]);
  });

  test('alertGate.url and alertGate.default become the flags the controller reads, the default gate as it parses it', async () => {
    const args = await gateArgs(
      '--set',
      'alertGate.url=http://prometheus-operated.monitoring:9090',
      '--set',
      'alertGate.interval=30s',
      '--set-json',
      'alertGate.default={"matchers":["severity=~\\"critical|page\\"","alertname!=\\"Watchdog\\""],"nodeLabels":["node"]}',
    );
    expect(args.slice(0, 3)).toEqual([
      '--alert-source-url=http://prometheus-operated.monitoring:9090',
      '--alert-source-interval=30s',
      '--alert-source-timeout=5s',
    ]);
    const json = args[3]?.replace(/^--alert-gate-default=/, '') ?? '';
    expect(parseDefaultGate(json)).toEqual({
      enabled: true,
      matchLabels: {},
      matchers: ['severity=~"critical|page"', 'alertname!="Watchdog"'],
      nodeLabels: ['node'],
    });
  });

  test('helm refuses a URL without http(s) and a matcher Prometheus would not read', async () => {
    await expect(render('--set', 'alertGate.url=prometheus:9090')).rejects.toThrow(/alertGate.url/);
    await expect(
      render('--set-json', 'alertGate.default={"matchers":["severity=critical"]}'),
    ).rejects.toThrow(/alertGate.default.matchers.0/);
  });
});

describe('webhook notifications', () => {
  interface Container {
    readonly args: string[];
    readonly volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  }
  interface ControllerPod {
    readonly containers: Container[];
    readonly volumes?: { name: string; secret?: Record<string, unknown> }[];
  }
  const controllerPod = (objects: readonly Rendered[]): ControllerPod =>
    workload(objects, 'Deployment').spec.template.spec as unknown as ControllerPod;

  test('off by default: no flag, no volume', async () => {
    const pod = controllerPod(await render());
    expect(pod.containers[0]?.args.filter((a) => a.startsWith('--notify'))).toEqual([]);
    expect(pod.volumes).toBeUndefined();
    expect(pod.containers[0]?.volumeMounts).toBeUndefined();
  });

  test("with a Secret: its key mounted read-only where --notify-url-file points, optional, and the URL nowhere in the Pod's spec", async () => {
    const objects = await render(
      '--set',
      'notifications.secretName=chat-webhook',
      '--set',
      'notifications.secretKey=slack-url',
      '--set',
      'notifications.format=slack',
      '--set',
      'notifications.attempts=4',
    );
    const pod = controllerPod(objects);
    const [container] = pod.containers;
    const flags = container?.args.filter((a) => a.startsWith('--notify')) ?? [];
    expect(flags).toEqual([
      '--notify-url-file=/etc/livepatch-operator/notifications/url',
      '--notify-format=slack',
      '--notify-attempts=4',
      '--notify-timeout=10s',
    ]);
    expect(pod.volumes).toEqual([
      {
        name: 'notifications',
        secret: {
          secretName: 'chat-webhook',
          optional: true,
          items: [{ key: 'slack-url', path: 'url' }],
        },
      },
    ]);
    expect(container?.volumeMounts).toEqual([
      { name: 'notifications', mountPath: '/etc/livepatch-operator/notifications', readOnly: true },
    ]);
    // The chart takes the Secret's name, never the URL: the user creates the Secret.
    expect(ofKind(objects, 'Secret')).toEqual([]);
    // The built controller takes the rendered arguments: it gets past its flags to the kubeconfig.
    const main = join(repositoryRoot(), 'dist', 'src', 'cli', 'main.js');
    await expect(
      runCommand(process.execPath, [main, ...(container?.args ?? []), '--kubeconfig=/nonexistent']),
    ).rejects.toThrow(/ENOENT: no such file or directory, open '\/nonexistent'/);
  });

  test('helm refuses a format the controller does not know, and zero tries', async () => {
    await expect(
      render('--set', 'notifications.secretName=w', '--set', 'notifications.format=teams'),
    ).rejects.toThrow(/notifications\/format': value must be one of 'json', 'slack'/);
    await expect(render('--set', 'notifications.attempts=0')).rejects.toThrow(
      /attempts.: minimum: got 0, want 1/,
    );
  });
});
