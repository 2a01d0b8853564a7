// The chart's alert rules, run by promtool against the series our own
// processes emit: a controller process and an agent process roll out a
// LivePatch, their /metrics are scraped, and every input series of the rule
// tests is one of those scraped series (its name and labels, with the values
// a scenario needs). A rule naming a series the processes do not emit, or a
// label they do not set, cannot fire, and its test fails. Also shows a
// deleted LivePatch's series leave the controller's /metrics.
import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ensureHelm } from '../../lab/controlplane/assets.js';
import { runCommand } from '../../lab/command.js';
import { runOperator, type Running } from '../../lab/operator-process.js';
import { ensureReaders } from '../../lab/readers/readers.js';
import { waitUntil } from '../../lab/wait.js';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { freePort, httpGet } from '../support/http.js';
import { kubectl, kubectlOk, kubeconfigPath } from '../support/kubectl.js';
import { applyLivePatch, getLivePatch } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';

const KERNEL = '6.1.0-26-amd64';
const LP = 'alerting';
const AGENT_NODE = 'alerts-agent';
const cluster = useOwnCluster({ nodes: 2, kernels: [KERNEL], prefix: 'alerts' });
const log = createLogger({ component: 'test', level: 'error', format: 'text' });

const running: Running[] = [];
afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL');
});

type Labels = Record<string, string>;
interface Sample {
  readonly name: string;
  readonly labels: Labels;
}

/** The samples of a Prometheus text exposition. */
function samplesOf(text: string): Sample[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((line) => {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? /.exec(line);
      if (!m?.[1]) throw new Error(`not a sample: ${line}`);
      const labels: Labels = {};
      for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
        labels[k ?? ''] = v ?? '';
      return { name: m[1], labels };
    });
}

/** The labels of the scraped series `name` whose labels include `having`; throws when there is none. */
function scraped(samples: readonly Sample[], name: string, having: Labels = {}): Labels {
  const found = samples.find(
    (s) => s.name === name && Object.entries(having).every(([k, v]) => s.labels[k] === v),
  );
  if (!found) throw new Error(`/metrics has no ${name}${JSON.stringify(having)}`);
  return found.labels;
}

const seriesText = (name: string, labels: Labels): string =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(',')}}`;

interface Rule {
  readonly alert: string;
  readonly labels?: Labels;
  readonly annotations?: Labels;
}

/** An alert's expected labels and annotations, its templates filled in as Prometheus fills them. */
function expected(rule: Rule, labels: Labels, value: string): object {
  const all = { ...labels, ...rule.labels };
  const fill = (t: string): string =>
    t
      .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, k: string) => all[k] ?? '')
      .replace(/\{\{ \$value \}\}/g, value);
  return {
    exp_labels: all,
    exp_annotations: Object.fromEntries(
      Object.entries(rule.annotations ?? {}).map(([k, v]) => [k, fill(v)]),
    ),
  };
}

describe('the PrometheusRule', () => {
  test('its alerts fire, and stay quiet, on the series our /metrics emit', async () => {
    // Both processes: a controller, and an agent for one more node beside the simulated fleet.
    const controllerPort = await freePort();
    await cluster().startController('controller-a', controllerPort);
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: AGENT_NODE,
        labels: { 'livepatch.io/simulated': 'true' },
        annotations: { 'sim.livepatch.io/transition-seconds': '1' },
      },
      spec: { providerID: `livepatch-sim://${AGENT_NODE}` },
    };
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(node));
    await kubectlOk([
      'patch',
      'node',
      AGENT_NODE,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: {
          nodeInfo: { kernelVersion: KERNEL },
          conditions: [{ type: 'Ready', status: 'True' }],
        },
      }),
    ]);
    const agentPort = await freePort();
    const agentDir = await mkdtemp(join(tmpdir(), 'alert-rules-agent-'));
    const agent = runOperator(
      [
        'agent',
        '--backend=simulator',
        `--kernel-release=${KERNEL}`,
        `--metrics-port=${agentPort}`,
        `--kubeconfig=${kubeconfigPath()}`,
        `--module-dir=${join(agentDir, 'modules')}`,
        // A simulated kernel of its own, which starts empty: the agent loads the patch itself.
        `--state-dir=${join(agentDir, 'state')}`,
      ],
      { NODE_NAME: AGENT_NODE },
    );
    running.push(agent);
    await agent.waitFor(/agent running/);

    await applyLivePatch(LP, { kernel: KERNEL });
    const done = await waitUntil(
      'the rollout to complete',
      () => getLivePatch(LP),
      (lp) => lp.status?.phase === 'Complete',
      90_000,
    );
    expect(done.status?.nodes?.patched).toBe(3);
    const controllerText = (await httpGet(controllerPort, '/metrics')).body;
    const agentText = (await httpGet(agentPort, '/metrics')).body;
    const controller = samplesOf(controllerText);
    const agentSamples = samplesOf(agentText);

    // What Prometheus adds to every scraped series: the target's job and instance, and, for an
    // agent, its node (the chart's ServiceMonitor relabels it from the Pod).
    const controllerTarget = { job: 'livepatch-controller', instance: '10.0.0.1:8080' };
    const agentTarget = (n: string): Labels => ({
      job: 'livepatch-agent',
      instance: `${n}:8080`,
      node: n,
    });

    const info = scraped(controller, 'livepatch_info', { livepatch: LP, phase: 'Complete' });
    const leader = scraped(controller, 'leader_election_master_status');
    const silent = scraped(controller, 'livepatch_agents', { state: 'silent' });
    // The real agent's own load, relabelled by a scenario as the stall guard's reversal.
    const action = scraped(agentSamples, 'livepatch_agent_kernel_actions_total', {
      action: 'load',
      result: 'ok',
    });

    const helm = await ensureHelm(log);
    const rendered = await runCommand(helm, [
      'template',
      'lp',
      join(repositoryRoot(), 'charts', 'livepatch-operator'),
      '--set',
      'prometheusRule.enabled=true',
      '--set',
      `controller.leaderElection.leaseName=${leader['name'] ?? ''}`,
      '--show-only',
      'templates/prometheusrule.yaml',
    ]);
    const rule = parse(rendered) as { spec: { groups: { rules: Rule[] }[] } };
    const rules = new Map(rule.spec.groups.flatMap((g) => g.rules).map((r) => [r.alert, r]));
    const alert = (name: string): Rule => {
      const r = rules.get(name);
      if (!r) throw new Error(`the chart has no alert ${name}`);
      return r;
    };

    const { livepatch = '', patch_name = '' } = info;
    const infoIn = (phase: string): Labels => ({ ...controllerTarget, ...info, phase });
    const tests = [
      {
        name: 'a LivePatch six hours in Progressing is stuck; one Paused, or Complete, is not',
        input_series: [
          { series: seriesText('livepatch_info', infoIn('Progressing')), values: '1x420' },
          {
            series: seriesText('livepatch_info', { ...infoIn('Paused'), livepatch: 'paused' }),
            values: '1x420',
          },
        ],
        alert_rule_test: [
          { eval_time: '5h', alertname: 'LivePatchRolloutStuck', exp_alerts: [] },
          {
            eval_time: '6h5m',
            alertname: 'LivePatchRolloutStuck',
            exp_alerts: [
              expected(
                alert('LivePatchRolloutStuck'),
                { livepatch, patch_name, phase: 'Progressing' },
                '1',
              ),
            ],
          },
        ],
      },
      {
        name: 'a LivePatch RolledBack or Failed alerts at once; Complete does not',
        input_series: [
          { series: seriesText('livepatch_info', infoIn('RolledBack')), values: '1x10' },
          {
            series: seriesText('livepatch_info', { ...infoIn('Failed'), livepatch: 'failing' }),
            values: '1x10',
          },
          {
            series: seriesText('livepatch_info', { ...infoIn('Complete'), livepatch: 'fine' }),
            values: '1x10',
          },
        ],
        alert_rule_test: [
          {
            eval_time: '1m',
            alertname: 'LivePatchRolledBack',
            exp_alerts: [expected(alert('LivePatchRolledBack'), { livepatch, patch_name }, '1')],
          },
          {
            eval_time: '1m',
            alertname: 'LivePatchFailed',
            exp_alerts: [
              expected(alert('LivePatchFailed'), { livepatch: 'failing', patch_name }, '1'),
            ],
          },
        ],
      },
      {
        name: 'agents silent past the threshold alert; reporting ones do not',
        input_series: [
          {
            series: seriesText('livepatch_agents', { ...controllerTarget, ...silent }),
            values: '0x10 2x30',
          },
        ],
        alert_rule_test: [
          { eval_time: '10m', alertname: 'LivePatchAgentsSilent', exp_alerts: [] },
          { eval_time: '15m', alertname: 'LivePatchAgentsSilent', exp_alerts: [] },
          {
            eval_time: '25m',
            alertname: 'LivePatchAgentsSilent',
            exp_alerts: [expected(alert('LivePatchAgentsSilent'), {}, '2')],
          },
        ],
      },
      {
        name: 'no leader: quiet while one replica leads, alerts when none has for the threshold',
        input_series: [
          {
            series: seriesText('leader_election_master_status', { ...controllerTarget, ...leader }),
            values: '1x10 0x20',
          },
          {
            series: seriesText('leader_election_master_status', {
              ...controllerTarget,
              instance: '10.0.0.2:8080',
              ...leader,
            }),
            values: '0x30',
          },
        ],
        alert_rule_test: [
          { eval_time: '10m', alertname: 'LivePatchControllerNoLeader', exp_alerts: [] },
          {
            eval_time: '20m',
            alertname: 'LivePatchControllerNoLeader',
            exp_alerts: [expected(alert('LivePatchControllerNoLeader'), {}, '0')],
          },
        ],
      },
      {
        name: 'no controller scraped at all is no leader too',
        input_series: [
          {
            series: seriesText('livepatch_agents', { ...controllerTarget, ...silent }),
            values: '0x10',
          },
        ],
        alert_rule_test: [
          {
            eval_time: '10m',
            alertname: 'LivePatchControllerNoLeader',
            // absent() answers with the label its selector pins: the Lease's name.
            exp_alerts: [
              expected(alert('LivePatchControllerNoLeader'), { name: leader['name'] ?? '' }, '1'),
            ],
          },
        ],
      },
      {
        name: 'the stall guard reversing a transition alerts for its node; other actions do not',
        input_series: [
          {
            series: seriesText('livepatch_agent_kernel_actions_total', {
              ...agentTarget('node-1'),
              ...action,
              action: 'reverse_stall',
            }),
            values: '0x5 1x30',
          },
          {
            series: seriesText('livepatch_agent_kernel_actions_total', {
              ...agentTarget('node-2'),
              ...action,
            }),
            values: '0+1x40',
          },
        ],
        alert_rule_test: [
          { eval_time: '4m', alertname: 'LivePatchStallGuardActing', exp_alerts: [] },
          {
            eval_time: '8m',
            alertname: 'LivePatchStallGuardActing',
            exp_alerts: [expected(alert('LivePatchStallGuardActing'), { node: 'node-1' }, '1')],
          },
          { eval_time: '35m', alertname: 'LivePatchStallGuardActing', exp_alerts: [] },
        ],
      },
    ];
    // Every alert of the chart is shown firing by some test above.
    const firing = new Set(
      tests.flatMap((t) =>
        t.alert_rule_test.filter((a) => a.exp_alerts.length).map((a) => a.alertname),
      ),
    );
    expect([...rules.keys()].sort()).toEqual([...firing].sort());

    const dir = await mkdtemp(join(tmpdir(), 'alert-rules-'));
    await writeFile(join(dir, 'rules.yaml'), stringify({ groups: rule.spec.groups }));
    await writeFile(
      join(dir, 'tests.yaml'),
      stringify({
        rule_files: ['rules.yaml'],
        evaluation_interval: '1m',
        tests: tests.map((t) => ({ interval: '1m', ...t })),
      }),
    );
    const { promtool } = await ensureReaders(log);
    const checked = await runCommand(promtool, ['check', 'rules', join(dir, 'rules.yaml')]);
    expect(checked).toContain('SUCCESS: 6 rules found');
    const result = await runCommand(promtool, ['test', 'rules', 'tests.yaml'], { cwd: dir });
    expect(result).toContain('SUCCESS');

    // The LivePatch deleted: its series leave the controller's /metrics.
    expect(controllerText).toContain(`livepatch="${LP}"`);
    await kubectlOk(['delete', 'lp', LP, '--wait=true', '--timeout=60s']);
    await waitUntil(
      "the deleted LivePatch's series to leave /metrics",
      async () => (await httpGet(controllerPort, '/metrics')).body,
      (text) => !text.includes(`livepatch="${LP}"`),
      30_000,
    );
    await kubectl(['delete', 'node', AGENT_NODE, '--ignore-not-found']);
  }, 600_000);
});
