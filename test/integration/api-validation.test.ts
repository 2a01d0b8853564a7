// What a user sees at `kubectl apply`: bad LivePatch specs are refused by the
// CRD schema and its CEL rules, each with a message that names the field.
import { afterAll, describe, expect, test } from '@jest/globals';
import { kubectl } from '../support/kubectl.js';

type Json = Record<string, unknown>;

const SHA = 'a'.repeat(64);

function validLivePatch(name: string): Json {
  return {
    apiVersion: 'livepatch.io/v1alpha1',
    kind: 'LivePatch',
    metadata: { name },
    spec: {
      patchName: 'livepatch_valid',
      kernels: [
        { release: '6.1.0-26-amd64', module: { url: 'https://mirror.example/p.ko', sha256: SHA } },
      ],
      rollout: {
        maxUnavailable: 1,
        steps: [{ nodes: 1 }, { pause: { duration: '1m' } }],
        bakeTime: '10s',
      },
      stall: { timeout: '60s', action: 'Rollback' },
    },
  };
}

interface Case {
  readonly title: string;
  /** The field path kubectl's message must name. */
  readonly field: string;
  readonly spec: (spec: Json) => void;
}

const kernel0 = (spec: Json): Json => (spec['kernels'] as Json[])[0] as Json;
const module0 = (spec: Json): Json => kernel0(spec)['module'] as Json;
const rollout = (spec: Json): Json => spec['rollout'] as Json;
const stall = (spec: Json): Json => spec['stall'] as Json;

const CASES: Case[] = [
  {
    title: 'patchName with path traversal',
    field: 'spec.patchName',
    spec: (s) => (s['patchName'] = '../../etc/passwd'),
  },
  {
    title: 'patchName with a slash',
    field: 'spec.patchName',
    spec: (s) => (s['patchName'] = 'live/patch'),
  },
  {
    title: 'patchName with a dash (the kernel loads livepatch-fix.ko as livepatch_fix)',
    field: 'spec.patchName',
    spec: (s) => (s['patchName'] = 'livepatch-fix'),
  },
  {
    title: 'patchName of 56 characters',
    field: 'spec.patchName',
    spec: (s) => (s['patchName'] = 'p'.repeat(56)),
  },
  { title: 'empty patchName', field: 'spec.patchName', spec: (s) => (s['patchName'] = '') },
  {
    title: 'checksum of 63 characters',
    field: 'spec.kernels[0].module.sha256',
    spec: (s) => (module0(s)['sha256'] = SHA.slice(1)),
  },
  {
    title: 'checksum in uppercase',
    field: 'spec.kernels[0].module.sha256',
    spec: (s) => (module0(s)['sha256'] = 'A'.repeat(64)),
  },
  {
    title: 'checksum not hex',
    field: 'spec.kernels[0].module.sha256',
    spec: (s) => (module0(s)['sha256'] = 'g'.repeat(64)),
  },
  {
    title: 'no checksum',
    field: 'spec.kernels[0].module.sha256',
    spec: (s) => delete module0(s)['sha256'],
  },
  {
    title: 'two module sources',
    field: 'spec.kernels[0].module',
    spec: (s) => (module0(s)['hostPath'] = '/var/lib/p.ko'),
  },
  {
    title: 'no module source',
    field: 'spec.kernels[0].module',
    spec: (s) => delete module0(s)['url'],
  },
  {
    title: 'release and releasePattern together',
    field: 'spec.kernels[0]',
    spec: (s) => (kernel0(s)['releasePattern'] = '^6\\.1'),
  },
  {
    title: 'neither release nor releasePattern',
    field: 'spec.kernels[0]',
    spec: (s) => delete kernel0(s)['release'],
  },
  {
    title: 'releasePattern not anchored',
    field: 'spec.kernels[0].releasePattern',
    spec: (s) => {
      delete kernel0(s)['release'];
      kernel0(s)['releasePattern'] = '6\\.1';
    },
  },
  { title: 'empty kernels', field: 'spec.kernels', spec: (s) => (s['kernels'] = []) },
  { title: 'missing kernels', field: 'spec.kernels', spec: (s) => delete s['kernels'] },
  {
    title: 'the same release twice',
    field: 'spec.kernels',
    spec: (s) => (s['kernels'] = [kernel0(s), kernel0(s)]),
  },
  {
    title: 'maxUnavailable 0',
    field: 'spec.rollout.maxUnavailable',
    spec: (s) => (rollout(s)['maxUnavailable'] = 0),
  },
  {
    title: 'maxUnavailable -1',
    field: 'spec.rollout.maxUnavailable',
    spec: (s) => (rollout(s)['maxUnavailable'] = -1),
  },
  {
    title: 'maxUnavailable "0%"',
    field: 'spec.rollout.maxUnavailable',
    spec: (s) => (rollout(s)['maxUnavailable'] = '0%'),
  },
  {
    title: 'maxUnavailable over 100%',
    field: 'spec.rollout.maxUnavailable',
    spec: (s) => (rollout(s)['maxUnavailable'] = '101%'),
  },
  {
    title: 'maxUnavailable not a number',
    field: 'spec.rollout.maxUnavailable',
    spec: (s) => (rollout(s)['maxUnavailable'] = 'half'),
  },
  {
    title: 'negative duration',
    field: 'spec.stall.timeout',
    spec: (s) => (stall(s)['timeout'] = '-5s'),
  },
  {
    title: 'duration in words',
    field: 'spec.stall.timeout',
    spec: (s) => (stall(s)['timeout'] = '5 minutes'),
  },
  {
    title: 'duration without a unit',
    field: 'spec.rollout.bakeTime',
    spec: (s) => (rollout(s)['bakeTime'] = '10'),
  },
  {
    title: 'stall timeout over 24h',
    field: 'spec.stall.timeout',
    spec: (s) => (stall(s)['timeout'] = '48h'),
  },
  { title: 'unknown state', field: 'spec.state', spec: (s) => (s['state'] = 'On') },
  {
    title: 'unknown stall action',
    field: 'spec.stall.action',
    spec: (s) => (stall(s)['action'] = 'Retry'),
  },
  {
    title: 'step with nodes and percent',
    field: 'spec.rollout.steps[0]',
    spec: (s) => (rollout(s)['steps'] = [{ nodes: 1, percent: 50 }]),
  },
  {
    title: 'empty step',
    field: 'spec.rollout.steps[0]',
    spec: (s) => (rollout(s)['steps'] = [{}]),
  },
  {
    title: 'step percent over 100',
    field: 'spec.rollout.steps[0].percent',
    spec: (s) => (rollout(s)['steps'] = [{ percent: 150 }]),
  },
  {
    title: 'step of 0 nodes',
    field: 'spec.rollout.steps[0].nodes',
    spec: (s) => (rollout(s)['steps'] = [{ nodes: 0 }]),
  },
  {
    title: 'pause of 0s',
    field: 'spec.rollout.steps[1].pause.duration',
    spec: (s) => (rollout(s)['steps'] = [{ nodes: 1 }, { pause: { duration: '0s' } }]),
  },
  {
    title: 'relative hostPath',
    field: 'spec.kernels[0].module.hostPath',
    spec: (s) => (kernel0(s)['module'] = { hostPath: 'var/lib/p.ko', sha256: SHA }),
  },
  {
    title: 'traversing hostPath',
    field: 'spec.kernels[0].module.hostPath',
    spec: (s) => (kernel0(s)['module'] = { hostPath: '/var/lib/../../etc/p.ko', sha256: SHA }),
  },
  {
    title: 'hostPath with a trailing slash',
    field: 'spec.kernels[0].module.hostPath',
    spec: (s) => (kernel0(s)['module'] = { hostPath: '/var/lib/', sha256: SHA }),
  },
  {
    title: 'ftp url',
    field: 'spec.kernels[0].module.url',
    spec: (s) => (module0(s)['url'] = 'ftp://mirror.example/p.ko'),
  },
  {
    title: 'file url',
    field: 'spec.kernels[0].module.url',
    spec: (s) => (module0(s)['url'] = 'file:///etc/p.ko'),
  },
  {
    title: 'url without a host',
    field: 'spec.kernels[0].module.url',
    spec: (s) => (module0(s)['url'] = 'https:///p.ko'),
  },
  {
    title: 'negative failureBudget',
    field: 'spec.failureBudget',
    spec: (s) => (s['failureBudget'] = -1),
  },
  {
    title: 'In selector without values',
    field: 'spec.nodeSelector.matchExpressions[0]',
    spec: (s) => (s['nodeSelector'] = { matchExpressions: [{ key: 'pool', operator: 'In' }] }),
  },
  { title: 'malformed CVE id', field: 'spec.cves[0]', spec: (s) => (s['cves'] = ['CVE-1']) },
  {
    title: 'series sequence 0',
    field: 'spec.series.sequence',
    spec: (s) => (s['series'] = { name: 'cmdline', sequence: 0 }),
  },
  {
    title: 'series without a sequence',
    field: 'spec.series.sequence',
    spec: (s) => (s['series'] = { name: 'cmdline' }),
  },
  {
    title: 'series name with uppercase',
    field: 'spec.series.name',
    spec: (s) => (s['series'] = { name: 'Cmdline', sequence: 1 }),
  },
];

const created: string[] = [];

afterAll(async () => {
  if (created.length) await kubectl(['delete', 'livepatch', ...created, '--ignore-not-found']);
});

describe('kubectl apply refuses an invalid LivePatch and names the field', () => {
  test('the battery holds at least 25 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(25);
  });

  test('the valid base manifest is accepted, so every refusal below is due to its one change', async () => {
    const manifest = validLivePatch('valid-base');
    created.push('valid-base');
    const result = await kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  test('a patchName with upper-case letters, as kpatch-build and vendors name modules, is accepted', async () => {
    const manifest = validLivePatch('valid-upper');
    (manifest['spec'] as Json)['patchName'] = 'livepatch_CVE_2024_1086';
    created.push('valid-upper');
    const result = await kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  test.each(CASES.map((c, i) => [c.title, c, `invalid-${i}`] as const))(
    '%s',
    async (_title, c, name) => {
      const manifest = validLivePatch(name);
      c.spec(manifest['spec'] as Json);
      const result = await kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`is invalid`);
      expect(result.stderr).toContain(c.field);
      const stored = await kubectl(['get', 'livepatch', name]);
      expect(stored.stderr).toContain('NotFound');
    },
  );
});

describe('a series of cumulative builds (spec.series)', () => {
  test('a series name and sequence are accepted and kept', async () => {
    const manifest = validLivePatch('series-member');
    (manifest['spec'] as Json)['series'] = { name: 'cmdline', sequence: 2 };
    created.push('series-member');
    const result = await kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
    expect(result.code).toBe(0);
    const stored = await kubectl([
      'get',
      'livepatch',
      'series-member',
      '-o',
      'jsonpath={.spec.series}',
    ]);
    expect(JSON.parse(stored.stdout)).toEqual({ name: 'cmdline', sequence: 2 });
  });

  test('kubectl explain says what the order does and what falling back means', async () => {
    const result = await kubectl(['explain', 'livepatch.spec.series']);
    const text = result.stdout.replaceAll(/\s+/g, ' ');
    expect(text).toContain('never loads a member older than a newer member of the same series');
    expect(text).toContain('paced like a rollout');
  });
});

describe('kubectl apply warns about a stall timeout real kernels cannot honour', () => {
  test('under 20s: accepted, with a warning naming the 15s fake signal', async () => {
    const manifest = validLivePatch('short-stall');
    stall(manifest['spec'] as Json)['timeout'] = '5s';
    created.push('short-stall');
    const result = await kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(
      /^Warning: .*'livepatch\.io-stall-timeout'.*: spec\.stall\.timeout 5s is under 20s/,
    );
    expect(result.stderr).toContain('15s after it starts');
  });

  test('20s and more: no warning', async () => {
    const manifest = validLivePatch('long-stall');
    stall(manifest['spec'] as Json)['timeout'] = '20s';
    created.push('long-stall');
    const result = await kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
  });

  test('kubectl explain says why', async () => {
    const result = await kubectl(['explain', 'livepatch.spec.stall.timeout']);
    expect(result.stdout.replaceAll(/\s+/g, ' ')).toContain('only 15s after it starts');
  });
});
