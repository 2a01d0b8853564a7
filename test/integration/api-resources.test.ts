// The two resources as a user meets them: the documented examples apply,
// `kubectl get` shows the documented columns, `kubectl explain` documents the
// fields, defaults are filled in, unknown fields never reach storage, and
// status is a subresource only its owner writes.
import { afterAll, describe, expect, test } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repositoryRoot } from '../../src/paths.js';
import { kubectl, kubectlJson, kubectlOk } from '../support/kubectl.js';

type Json = Record<string, unknown>;
interface Stored {
  metadata: { name: string; generation: number };
  spec: Json;
  status?: Json;
}

const example = (file: string): string => join(repositoryRoot(), 'examples', file);
const cleanup: string[][] = [];

afterAll(async () => {
  for (const args of cleanup) await kubectl(['delete', ...args, '--ignore-not-found']);
});

function minimal(name: string, extra: Json = {}): string {
  return JSON.stringify({
    apiVersion: 'livepatch.io/v1alpha1',
    kind: 'LivePatch',
    metadata: { name },
    spec: {
      patchName: 'livepatch_minimal',
      kernels: [
        {
          release: '6.8.0-45-generic',
          module: { hostPath: '/var/lib/p.ko', sha256: 'b'.repeat(64) },
        },
      ],
      ...extra,
    },
  });
}

function headerColumns(table: string): string[] {
  return (table.split('\n')[0] ?? '').trim().split(/\s{2,}/);
}

describe('the documented examples', () => {
  test.each(['cve-2024-1086.yaml', 'change-managed.yaml', 'minimal.yaml', 'livepatchnode.yaml'])(
    'kubectl apply -f examples/%s succeeds',
    async (file) => {
      const doc = parse(await readFile(example(file), 'utf8')) as {
        kind: string;
        metadata: { name: string };
      };
      cleanup.push([doc.kind.toLowerCase(), doc.metadata.name]);
      const out = await kubectlOk(['apply', '-f', example(file)]);
      expect(out).toMatch(/(created|configured|unchanged)/);
    },
  );

  test('the change-managed example keeps its window, zones, promotion step and alert gate as written', async () => {
    await kubectlOk(['apply', '-f', example('change-managed.yaml')]);
    const stored = await kubectlJson<Stored>([
      'get',
      'livepatch',
      'cve-2024-1086-managed',
      '-o',
      'json',
    ]);
    expect(stored.spec['rollout']).toMatchObject({
      steps: [
        { nodes: 1 },
        { pause: {} },
        { percent: 25 },
        { pause: { duration: '1h' } },
        { percent: 100 },
      ],
      window: {
        days: ['monday', 'tuesday', 'wednesday', 'thursday'],
        startTime: '22:00',
        endTime: '04:00',
        timeZone: 'Europe/Berlin',
      },
      topology: { key: 'topology.kubernetes.io/zone', maxUnavailable: 1, order: 'ZoneByZone' },
      alertGate: {
        enabled: true,
        matchers: ['severity=~"critical|page"', 'alertname!="Watchdog"'],
      },
    });
  });

  test('kubectl get livepatches shows the columns of docs/api.md, also by short name', async () => {
    await kubectlOk(['apply', '-f', example('cve-2024-1086.yaml')]);
    const expected = [
      'NAME',
      'STATE',
      'PHASE',
      'PATCHED',
      'TRANSITIONING',
      'STALLED',
      'FAILED',
      'AGE',
    ];
    expect(headerColumns(await kubectlOk(['get', 'livepatches']))).toEqual(expected);
    expect(headerColumns(await kubectlOk(['get', 'lp']))).toEqual(expected);
  });

  test('status values appear in the columns once the controller writes them', async () => {
    await kubectlOk(['apply', '-f', example('cve-2024-1086.yaml')]);
    const status = {
      phase: 'Progressing',
      summary: '37/40',
      nodes: { transitioning: 2, stalled: 1, failed: 0 },
    };
    await kubectlOk([
      'patch',
      'lp',
      'cve-2024-1086',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
    const row = (await kubectlOk(['get', 'lp', 'cve-2024-1086', '--no-headers']))
      .trim()
      .split(/\s+/);
    expect(row.slice(0, 7)).toEqual([
      'cve-2024-1086',
      'Enabled',
      'Progressing',
      '37/40',
      '2',
      '1',
      '0',
    ]);
  });

  test('kubectl get livepatchnodes shows NAME KERNEL BACKEND PATCHED TRANSITION AGE', async () => {
    await kubectlOk(['apply', '-f', example('livepatchnode.yaml')]);
    const status = {
      kernelRelease: '6.1.0-26-amd64',
      backend: 'simulator',
      patchedCount: 1,
      transitioning: 'livepatch_cve_2024_1086',
    };
    await kubectlOk([
      'patch',
      'lpn',
      'worker-7',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
    const table = await kubectlOk(['get', 'livepatchnodes']);
    expect(headerColumns(table)).toEqual([
      'NAME',
      'KERNEL',
      'BACKEND',
      'PATCHED',
      'TRANSITION',
      'AGE',
    ]);
    expect(table).toMatch(/worker-7\s+6\.1\.0-26-amd64\s+simulator\s+1\s+livepatch_cve_2024_1086/);
  });

  test('kubectl get livepatching lists both kinds', async () => {
    await kubectlOk([
      'apply',
      '-f',
      example('cve-2024-1086.yaml'),
      '-f',
      example('livepatchnode.yaml'),
    ]);
    const out = await kubectlOk(['get', 'livepatching', '-o', 'name']);
    expect(out).toContain('livepatch.livepatch.io/cve-2024-1086');
    expect(out).toContain('livepatchnode.livepatch.io/worker-7');
  });

  test('kubectl explain livepatch.spec.rollout documents every field', async () => {
    const out = await kubectlOk(['explain', 'livepatch.spec.rollout']);
    expect(out).toContain('How fast the patch reaches the fleet');
    for (const field of ['maxUnavailable', 'steps', 'bakeTime', 'paused'])
      expect(out).toContain(field);
    expect(out.replace(/\s+/g, ' ')).toContain('rounded up and at least 1');
  });

  test('kubectl explain states what dark, joining and rebooted nodes do to a rollout', async () => {
    const explain = async (field: string): Promise<string> =>
      (await kubectlOk(['explain', field])).replace(/\s+/g, ' ');
    expect(await explain('livepatch.spec.rollout.maxUnavailable')).toContain(
      'Targeted nodes that are NotReady or whose agent is silent count in the percentage',
    );
    expect(await explain('livepatch.spec.rollout.steps.percent')).toContain(
      'NotReady and silent ones included',
    );
    const phase = await explain('livepatch.status.phase');
    expect(phase).toContain('keeps it Progressing (reason NodesUnreachable)');
    expect(phase).toContain('A node that joins, or reboots without the patch');
    expect(await explain('livepatch.status.nodes.targeted')).toContain(
      'they stay targets until their Node object is deleted or the selector leaves them out',
    );
    expect(await explain('livepatch.status.nodes.pending')).toContain(
      'nodes that rebooted and came back without the patch (counted once',
    );
  });
});

describe('what is stored is exactly what the API documents', () => {
  test('defaults of docs/api.md are filled in', async () => {
    cleanup.push(['lp', 'defaults']);
    await kubectlOk(['apply', '-f', '-'], minimal('defaults'));
    const stored = await kubectlJson<Stored>(['get', 'lp', 'defaults']);
    expect(stored.spec).toEqual({
      patchName: 'livepatch_minimal',
      state: 'Enabled',
      kernels: [
        {
          release: '6.8.0-45-generic',
          module: { hostPath: '/var/lib/p.ko', sha256: 'b'.repeat(64) },
        },
      ],
      rollout: { maxUnavailable: 1, bakeTime: '0s', paused: false },
      stall: { timeout: '60s', action: 'Rollback', allowForce: false },
      failureBudget: 0,
    });
  });

  test('an unknown field is refused by kubectl apply, naming it', async () => {
    const result = await kubectl(
      ['apply', '-f', '-'],
      minimal('unknown-field', { rolloutSpeed: 'fast' }),
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('unknown field "spec.rolloutSpeed"');
  });

  test('with validation off, an unknown field is dropped and never stored', async () => {
    cleanup.push(['lp', 'pruned']);
    const manifest = JSON.parse(minimal('pruned', { rolloutSpeed: 'fast' })) as {
      spec: { kernels: Json[] };
    };
    (manifest.spec.kernels[0] as Json)['arch'] = 'x86_64';
    await kubectlOk(['apply', '--validate=false', '-f', '-'], JSON.stringify(manifest));
    const stored = await kubectlJson<Stored>(['get', 'lp', 'pruned']);
    expect(stored.spec).not.toHaveProperty('rolloutSpeed');
    expect((stored.spec['kernels'] as Json[])[0]).not.toHaveProperty('arch');
  });
});

describe('status is a subresource', () => {
  test('a status write does not bump generation; a spec update bumps it and leaves status alone', async () => {
    cleanup.push(['lp', 'status-sub']);
    await kubectlOk(['apply', '-f', '-'], minimal('status-sub'));
    const status = { observedGeneration: 1, phase: 'Progressing', summary: '1/3' };
    await kubectlOk([
      'patch',
      'lp',
      'status-sub',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
    const afterStatus = await kubectlJson<Stored>(['get', 'lp', 'status-sub']);
    expect(afterStatus.metadata.generation).toBe(1);
    expect(afterStatus.status).toEqual(status);

    await kubectlOk(['apply', '-f', '-'], minimal('status-sub', { failureBudget: 2 }));
    const afterSpec = await kubectlJson<Stored>(['get', 'lp', 'status-sub']);
    expect(afterSpec.metadata.generation).toBe(2);
    expect(afterSpec.spec['failureBudget']).toBe(2);
    expect(afterSpec.status).toEqual(status);
  });

  test('status sent with the main resource is ignored', async () => {
    cleanup.push(['lp', 'status-ignored']);
    const manifest = {
      ...(JSON.parse(minimal('status-ignored')) as Json),
      status: { phase: 'Complete' },
    };
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(manifest));
    const stored = await kubectlJson<Stored>(['get', 'lp', 'status-ignored']);
    // What the CRD fills in until the controller writes: generation 0 observed.
    expect(stored.status).toEqual({ observedGeneration: 0 });
  });
});
