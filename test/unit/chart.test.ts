// The Helm chart, the Dockerfile and the kind config, checked without helm,
// docker or a cluster: values.yaml against values.schema.json (with a small
// JSON Schema checker for the keywords the schema uses), every `.Values.…` a
// template reads against values.yaml, the RBAC rules against what the
// controller and the agent call, and the privileged parts of the agent's
// DaemonSet kept behind the sysfs backend.
import { describe, expect, test } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { repositoryRoot } from '../../src/paths.js';
import { IMAGE_RUN } from '../../lab/image/config.js';
import { API_UNREACHABLE_MS } from '../../agent/agent.js';
import { AGENT_STALE_MS } from '../../src/api/heartbeat.js';
import { DEFAULT_LIVENESS_WINDOWS } from '../../src/controller/liveness.js';

const root = repositoryRoot();
const chartDir = join(root, 'charts', 'livepatch-operator');
const templatesDir = join(chartDir, 'templates');
const read = (...parts: string[]): string => readFileSync(join(...parts), 'utf8');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = Record<string, Json>;

const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function asString(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new Error(`${what} is not a string`);
  return v;
}

function asObject(v: unknown, what: string): JsonObject {
  if (!isObject(v)) throw new Error(`${what} is not an object`);
  return v;
}

/** The value at a dotted path, or undefined when a segment is missing. */
function at(value: Json | undefined, path: readonly string[]): Json | undefined {
  let cur = value;
  for (const seg of path) {
    if (!isObject(cur) || !(seg in cur)) return undefined;
    cur = cur[seg];
  }
  return cur;
}

const values = asObject(parse(read(chartDir, 'values.yaml')), 'values.yaml');
const schema = asObject(JSON.parse(read(chartDir, 'values.schema.json')), 'values.schema.json');

// ---------------------------------------------------------------------------
// A JSON Schema (draft-07) checker for the keywords values.schema.json uses.

interface Schema {
  readonly type?: string | readonly string[];
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly additionalProperties?: boolean | Schema;
  readonly required?: readonly string[];
  readonly enum?: readonly Json[];
  readonly items?: Schema;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly $ref?: string;
  readonly definitions?: Readonly<Record<string, Schema>>;
}

const KEYWORDS = new Set([
  '$schema',
  'title',
  'description',
  'type',
  'properties',
  'additionalProperties',
  'required',
  'enum',
  'items',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  '$ref',
  'definitions',
]);

const rootSchema = schema as Schema;

function resolve(s: Schema): Schema {
  if (s.$ref === undefined) return s;
  const name = /^#\/definitions\/([\w-]+)$/.exec(s.$ref)?.[1];
  const target = name === undefined ? undefined : rootSchema.definitions?.[name];
  if (!target) throw new Error(`cannot resolve $ref ${s.$ref}`);
  return resolve(target);
}

function jsonType(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(s: Schema, v: Json): boolean {
  if (s.type === undefined) return true;
  const want: readonly string[] = typeof s.type === 'string' ? [s.type] : s.type;
  const got = jsonType(v);
  return want.includes(got) || (got === 'integer' && want.includes('number'));
}

function checkScalar(s: Schema, v: Json, path: string): string[] {
  const errors: string[] = [];
  if (s.enum && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(v)))
    errors.push(`${path}: ${JSON.stringify(v)} is not one of ${JSON.stringify(s.enum)}`);
  if (typeof v === 'string') {
    if (s.minLength !== undefined && v.length < s.minLength) errors.push(`${path}: too short`);
    if (s.maxLength !== undefined && v.length > s.maxLength) errors.push(`${path}: too long`);
    if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(v))
      errors.push(`${path}: ${JSON.stringify(v)} does not match ${s.pattern}`);
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) errors.push(`${path}: below ${s.minimum}`);
    if (s.maximum !== undefined && v > s.maximum) errors.push(`${path}: above ${s.maximum}`);
  }
  return errors;
}

function checkObject(s: Schema, v: JsonObject, path: string): string[] {
  const errors: string[] = [];
  for (const key of s.required ?? []) {
    if (!(key in v)) errors.push(`${path}: missing required ${key}`);
  }
  for (const [key, child] of Object.entries(v)) {
    const known = s.properties?.[key];
    if (known) errors.push(...validate(known, child, `${path}.${key}`));
    else if (s.additionalProperties === false)
      errors.push(`${path}: unknown key ${JSON.stringify(key)}`);
    else if (typeof s.additionalProperties === 'object')
      errors.push(...validate(s.additionalProperties, child, `${path}.${key}`));
  }
  return errors;
}

/** Every way `value` breaks `schema`; empty when it conforms. */
function validate(schemaOrRef: Schema, value: Json, path = '$'): string[] {
  const s = resolve(schemaOrRef);
  if (!typeMatches(s, value)) {
    const want = JSON.stringify(s.type);
    return [`${path}: got ${jsonType(value)}, want ${want}`];
  }
  const errors = checkScalar(s, value, path);
  if (Array.isArray(value) && s.items) {
    const items = s.items;
    value.forEach((item, i) => errors.push(...validate(items, item, `${path}[${i}]`)));
  }
  if (isObject(value)) errors.push(...checkObject(s, value, path));
  return errors;
}

/** Every schema node, with where it is. */
function* schemaNodes(s: Schema, where = '#'): Generator<[string, Schema]> {
  yield [where, s];
  for (const [k, child] of Object.entries(s.properties ?? {}))
    yield* schemaNodes(child, `${where}/properties/${k}`);
  for (const [k, child] of Object.entries(s.definitions ?? {}))
    yield* schemaNodes(child, `${where}/definitions/${k}`);
  if (typeof s.additionalProperties === 'object')
    yield* schemaNodes(s.additionalProperties, `${where}/additionalProperties`);
  if (s.items) yield* schemaNodes(s.items, `${where}/items`);
}

/** Whether the schema declares a value at this path (free-form objects declare everything below). */
function schemaDeclares(path: readonly string[]): boolean {
  let s = resolve(rootSchema);
  for (const seg of path) {
    const next = s.properties?.[seg];
    if (next) s = resolve(next);
    else if (typeof s.additionalProperties === 'object') s = resolve(s.additionalProperties);
    else return s.properties === undefined && s.additionalProperties !== false;
  }
  return true;
}

const withValue = (path: readonly string[], value: Json): JsonObject => {
  const copy = structuredClone(values);
  let cur: JsonObject = copy;
  for (const seg of path.slice(0, -1)) cur = asObject(cur[seg], seg);
  cur[path[path.length - 1] ?? ''] = value;
  return copy;
};

describe('values.yaml and values.schema.json', () => {
  test('the schema uses only keywords this checker understands', () => {
    const unknown = [...schemaNodes(rootSchema)].flatMap(([where, s]) =>
      Object.keys(s)
        .filter((k) => !KEYWORDS.has(k))
        .map((k) => `${where}: ${k}`),
    );
    expect(unknown).toEqual([]);
  });

  test('every object with declared properties refuses unknown keys', () => {
    const loose = [...schemaNodes(rootSchema)]
      .filter(([, s]) => s.properties !== undefined && s.additionalProperties !== false)
      .map(([where]) => where);
    expect(loose).toEqual([]);
  });

  test('values.yaml conforms to the schema', () => {
    expect(validate(rootSchema, values)).toEqual([]);
  });

  test.each<[string, readonly string[], Json]>([
    ['a misspelt key', ['agent', 'bakend'], 'simulator'],
    ['an unknown top-level key', ['replicas'], 3],
    ['an unknown backend', ['agent', 'backend'], 'kvm'],
    ['a replica count as text', ['controller', 'replicas'], 'two'],
    ['port 0 (the probes need the port)', ['controller', 'metricsPort'], 0],
    ['a pull policy in lower case', ['image', 'pullPolicy'], 'always'],
    ['a relative host module folder', ['agent', 'sysfs', 'hostModuleDir'], 'var/lib/x'],
    ['a non-string node selector value', ['agent', 'nodeSelector'], { pool: true }],
    ['a bad maxUnavailable', ['agent', 'updateStrategy', 'rollingUpdate', 'maxUnavailable'], '1x'],
    [
      'a disruption budget that holds every drain',
      ['controller', 'podDisruptionBudget', 'maxUnavailable'],
      0,
    ],
    ['a budget of 0%', ['controller', 'podDisruptionBudget', 'maxUnavailable'], '0%'],
    [
      'a spread constraint without a topology key',
      ['controller', 'topologySpreadConstraints'],
      [{ maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway' }],
    ],
    [
      'a misspelt whenUnsatisfiable',
      ['controller', 'topologySpreadConstraints'],
      [{ topologyKey: 'kubernetes.io/hostname', maxSkew: 1, whenUnsatisfiable: 'Schedule' }],
    ],
    ['aggregation as text', ['rbac', 'aggregateToDefaultRoles'], { view: true, edit: 'yes' }],
  ])('the schema refuses %s', (_what, path, value) => {
    expect(validate(rootSchema, withValue(path, value))).not.toEqual([]);
  });

  test.each<[string, readonly string[], Json]>([
    ['the simulator backend', ['agent', 'backend'], 'simulator'],
    [
      'maxUnavailable as a percentage',
      ['agent', 'updateStrategy', 'rollingUpdate', 'maxUnavailable'],
      '10%',
    ],
    ['a pinned digest', ['image', 'digest'], `sha256:${'a'.repeat(64)}`],
    ['values a parent chart passes down', ['global'], { imageRegistry: 'x' }],
    ['a budget as a percentage', ['controller', 'podDisruptionBudget', 'maxUnavailable'], '50%'],
    [
      'a zone spread besides the node spread',
      ['controller', 'topologySpreadConstraints'],
      [
        { topologyKey: 'kubernetes.io/hostname', maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway' },
        {
          topologyKey: 'topology.kubernetes.io/zone',
          maxSkew: 1,
          whenUnsatisfiable: 'DoNotSchedule',
          minDomains: 2,
        },
      ],
    ],
    ['no spread at all', ['controller', 'topologySpreadConstraints'], []],
  ])('the schema accepts %s', (_what, path, value) => {
    expect(validate(rootSchema, withValue(path, value))).toEqual([]);
  });

  test('defaults: image, two controller replicas, the sysfs backend on every node', () => {
    expect(at(values, ['image', 'repository'])).toBe(
      'ghcr.io/livepatch-operator/livepatch-operator',
    );
    expect(at(values, ['image', 'tag'])).toBe('');
    expect(at(values, ['controller', 'replicas'])).toBe(2);
    expect(at(values, ['controller', 'leaderElection', 'leaseName'])).toBe('livepatch-controller');
    expect(at(values, ['agent', 'backend'])).toBe('sysfs');
    expect(at(values, ['agent', 'tolerations'])).toEqual([{ operator: 'Exists' }]);
    for (const part of ['controller', 'agent']) {
      expect(at(values, [part, 'podSecurityContext', 'runAsNonRoot'])).toBe(true);
      expect(at(values, [part, 'securityContext', 'readOnlyRootFilesystem'])).toBe(true);
      expect(at(values, [part, 'securityContext', 'allowPrivilegeEscalation'])).toBe(false);
      expect(at(values, [part, 'resources', 'requests'])).toBeDefined();
      expect(at(values, [part, 'resources', 'limits', 'memory'])).toBeDefined();
    }
  });

  test("the image tag defaults to the chart's appVersion, which is the package version", () => {
    const chart = asObject(parse(read(chartDir, 'Chart.yaml')), 'Chart.yaml');
    const pkg = asObject(JSON.parse(read(root, 'package.json')), 'package.json');
    expect(chart['appVersion']).toBe(pkg['version']);
    expect(read(templatesDir, '_helpers.tpl')).toContain(
      'default .Chart.AppVersion .Values.image.tag',
    );
  });
});

// ---------------------------------------------------------------------------
// Templates, read as text.

const TEMPLATE_FILES = [
  '_helpers.tpl',
  'controller-deployment.yaml',
  'controller-pdb.yaml',
  'agent-daemonset.yaml',
  'rbac.yaml',
  'user-roles.yaml',
  'agent-policy.yaml',
  'pod-security-check.yaml',
  'service.yaml',
  'servicemonitor.yaml',
  'prometheusrule.yaml',
  'NOTES.txt',
];

const stripComments = (text: string): string =>
  text.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
const templates = new Map(
  readdirSync(templatesDir).map((f) => [f, stripComments(read(templatesDir, f))]),
);
const template = (name: string): string => {
  const text = templates.get(name);
  if (text === undefined) throw new Error(`no template ${name}`);
  return text;
};

/** `.Values` paths a template reads, directly or through `$x := .Values.a.b` then `$x.c`. */
function valuesReferences(text: string): string[][] {
  const aliases = new Map<string, string[]>();
  const aliasDef = /\$(\w+)\s*:=\s*\.Values((?:\.\w+)+)/g;
  for (const m of text.matchAll(aliasDef))
    aliases.set(m[1] ?? '', (m[2] ?? '').slice(1).split('.'));
  const body = text.replace(aliasDef, '');
  const refs = [...body.matchAll(/\.Values((?:\.\w+)+)/g)].map((m) =>
    (m[1] ?? '').slice(1).split('.'),
  );
  for (const m of body.matchAll(/\$(\w+)((?:\.\w+)+)/g)) {
    const base = aliases.get(m[1] ?? '');
    if (base) refs.push([...base, ...(m[2] ?? '').slice(1).split('.')]);
  }
  return refs;
}

/** Leaves of values.yaml: scalars, lists and empty maps (free-form maps such as nodeSelector). */
function valueLeaves(v: Json, path: string[] = []): string[][] {
  if (!isObject(v) || Object.keys(v).length === 0) return [path];
  return Object.entries(v).flatMap(([k, child]) => valueLeaves(child, [...path, k]));
}

interface Action {
  readonly start: number;
  readonly end: number;
  readonly body: string;
}

const actions = (text: string): Action[] =>
  [...text.matchAll(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g)].map((m) => ({
    start: m.index,
    end: m.index + m[0].length,
    body: m[1] ?? '',
  }));

const opensBlock = (body: string): boolean => /^(if|range|with|define|block)\b/.test(body);

/** Removes the `then` part of every `{{ if <cond> }}` (keeping any else part). */
function withoutThenBranches(text: string, cond: string): string {
  const tags = actions(text);
  const cuts: [number, number][] = [];
  tags.forEach((tag, i) => {
    if (tag.body !== `if ${cond}`) return;
    let depth = 0;
    for (const next of tags.slice(i + 1)) {
      if (opensBlock(next.body)) depth++;
      else if (depth === 0 && /^(else|end)\b/.test(next.body)) {
        cuts.push([tag.start, next.start]);
        return;
      } else if (next.body.startsWith('end')) depth--;
    }
    throw new Error(`unterminated {{ if ${cond} }}`);
  });
  return cuts.reduceRight((t, [from, to]) => t.slice(0, from) + t.slice(to), text);
}

describe('chart templates', () => {
  test('the chart has every template', () => {
    expect([...templates.keys()].sort()).toEqual(expect.arrayContaining(TEMPLATE_FILES));
  });

  test('every .Values reference exists in values.yaml and in the schema', () => {
    const missing = [...templates].flatMap(([file, text]) =>
      valuesReferences(text)
        .filter((path) => at(values, path) === undefined || !schemaDeclares(path))
        .map((path) => `${file}: .Values.${path.join('.')}`),
    );
    expect(missing).toEqual([]);
  });

  test('every value in values.yaml is used by a template', () => {
    const refs = [...templates.values()].flatMap(valuesReferences).map((p) => p.join('.'));
    const unused = valueLeaves(values)
      .map((p) => p.join('.'))
      .filter((leaf) => !refs.some((r) => leaf === r || leaf.startsWith(`${r}.`)));
    expect(unused).toEqual([]);
  });

  test('blocks are balanced and every included template is defined', () => {
    const all = [...templates.values()].join('\n');
    const defined = new Set([...all.matchAll(/define "([^"]+)"/g)].map((m) => m[1]));
    const included = [...all.matchAll(/include "([^"]+)"/g)].map((m) => m[1] ?? '');
    for (const m of all.matchAll(/include \(printf "([^"]+)" \$component\)/g))
      for (const c of ['controller', 'agent']) included.push((m[1] ?? '').replace('%s', c));
    expect(included.filter((name) => !defined.has(name))).toEqual([]);
    const unbalanced = [...templates]
      .map(([file, text]) => {
        const bodies = actions(text).map((a) => a.body);
        const opened = bodies.filter(opensBlock).length;
        const closed = bodies.filter((b) => /^end\b/.test(b)).length;
        return `${file}: ${opened} blocks, ${closed} ends`;
      })
      .filter((line) => !/: (\d+) blocks, \1 ends$/.test(line));
    expect(unbalanced).toEqual([]);
  });

  test('every resource carries the standard labels', () => {
    const helpers = template('_helpers.tpl');
    for (const label of ['name', 'instance', 'version', 'managed-by', 'part-of'])
      expect(helpers).toContain(`app.kubernetes.io/${label}:`);
    for (const file of TEMPLATE_FILES.filter((f) => f.endsWith('.yaml'))) {
      const text = template(file);
      const kinds = text.match(/^kind: /gm)?.length ?? 0;
      const labelled = text.match(/include \(?(printf )?"livepatch-operator\.[%\w.]*labels"/g);
      expect({ file, labelled: Math.min(labelled?.length ?? 0, kinds) }).toEqual({
        file,
        labelled: kinds,
      });
    }
  });

  test('the controller: leader election in the release namespace, a heap ceiling from values, probes, no root', () => {
    const text = template('controller-deployment.yaml');
    expect(text).toMatch(
      /name: NODE_OPTIONS\s+value: "--max-semi-space-size=2 --max-old-space-size-percentage=\{\{ \.Values\.controller\.heapPercent \}\}"/,
    );
    expect(text).toContain('replicas: {{ .Values.controller.replicas }}');
    expect(text).toMatch(
      /name: POD_NAMESPACE\s+valueFrom:\s+fieldRef:\s+fieldPath: metadata\.namespace/,
    );
    expect(text).toContain('- --lease-name={{ .Values.controller.leaderElection.leaseName }}');
    expect(text).toContain('- --metrics-port={{ .Values.controller.metricsPort }}');
    expect(text).toContain('- --agent-namespace={{ .Release.Namespace }}');
    expect(text).toContain(
      '{{- range $k, $v := include "livepatch-operator.agent.selectorLabels" . | fromYaml }}',
    );
    expect(text).toContain('- --agent-pod-selector={{ join "," $agentLabels }}');
    expect(text).toMatch(/livenessProbe:\s+httpGet:\s+path: \/healthz\s+port: metrics/);
    expect(text).toMatch(/readinessProbe:\s+httpGet:\s+path: \/readyz\s+port: metrics/);
    expect(text).toMatch(
      /- name: metrics\s+containerPort: \{\{ \.Values\.controller\.metricsPort \}\}/,
    );
    expect(text).not.toMatch(/privileged|hostPath|hostPID|hostNetwork/);
  });

  test('the controller replicas spread over nodes, preferred, counting their own revision only', () => {
    expect(at(values, ['controller', 'topologySpreadConstraints'])).toEqual([
      { topologyKey: 'kubernetes.io/hostname', maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway' },
    ]);
    const text = template('controller-deployment.yaml');
    expect(text).toMatch(
      /\{\{- if not \(hasKey \$constraint "labelSelector"\) \}\}\s+\{\{- \$_ := set \$constraint "labelSelector" \(dict "matchLabels" \(include "livepatch-operator\.controller\.selectorLabels" \$ \| fromYaml\)\) \}\}/,
    );
    expect(text).toMatch(
      /\{\{- if not \(hasKey \$constraint "matchLabelKeys"\) \}\}\s+\{\{- \$_ := set \$constraint "matchLabelKeys" \(list "pod-template-hash"\) \}\}/,
    );
    // No default anti-affinity beside the spread: affinity only as given.
    expect(text).toMatch(
      /\{\{- with \.Values\.controller\.affinity \}\}\s+affinity:\s+\{\{- toYaml \. \| nindent 8 \}\}\s+\{\{- end \}\}/,
    );
    expect(text.match(/affinity/gi)).toHaveLength(2);
    expect(template('agent-daemonset.yaml')).not.toContain('topologySpreadConstraints');
  });

  test('a disruption budget for the controller only, with more than one replica, that a crashlooping replica never holds', () => {
    expect(at(values, ['controller', 'podDisruptionBudget'])).toEqual({
      enabled: true,
      maxUnavailable: 1,
    });
    const text = template('controller-pdb.yaml');
    expect(text).toContain('{{- $pdb := .Values.controller.podDisruptionBudget }}');
    const cond = 'and $pdb.enabled (gt (int .Values.controller.replicas) 1)';
    expect(withoutThenBranches(text, cond).trim()).toBe(
      '{{- $pdb := .Values.controller.podDisruptionBudget }}\n{{- end }}',
    );
    expect(text).toContain('apiVersion: policy/v1');
    expect(text).toContain('maxUnavailable: {{ $pdb.maxUnavailable }}');
    expect(text).not.toContain('minAvailable');
    expect(text).toContain('unhealthyPodEvictionPolicy: AlwaysAllow');
    expect(text).toMatch(
      /selector:\s+matchLabels:\s+\{\{- include "livepatch-operator\.controller\.selectorLabels" \. \| nindent 6 \}\}/,
    );
    const budgets = [...templates].filter(([, t]) => t.includes('kind: PodDisruptionBudget'));
    expect(budgets.map(([file]) => file)).toEqual(['controller-pdb.yaml']);
  });

  test('the agent: NODE_NAME, the backend from values, lean Node flags; alive by its kernel loop, ready by the API', () => {
    const text = template('agent-daemonset.yaml');
    expect(text).toMatch(/name: NODE_NAME\s+valueFrom:\s+fieldRef:\s+fieldPath: spec\.nodeName/);
    expect(text).toMatch(/name: NODE_OPTIONS\s+value: "--jitless --max-semi-space-size=1"/);
    expect(text).toContain('- --backend={{ .Values.agent.backend }}');
    expect(text).toContain('{{- $sysfs := eq .Values.agent.backend "sysfs" }}');
    for (const probe of ['startupProbe', 'livenessProbe'])
      expect(text).toMatch(new RegExp(`${probe}:\\s+httpGet:\\s+path: /healthz\\s+port: metrics`));
    expect(text).toMatch(
      /readinessProbe:\s+httpGet:\s+path: \/readyz\s+port: metrics\s+periodSeconds: 5\s+timeoutSeconds: 5\s+failureThreshold: 2\n/,
    );
    expect(text).toContain('- --state-dir=/var/lib/livepatch-operator');
    // Its Pod, named in its status: the controller reads the Pod's readiness instead of a heartbeat.
    for (const [name, field] of <[string, string][]>[
      ['POD_NAME', 'metadata.name'],
      ['POD_NAMESPACE', 'metadata.namespace'],
      ['POD_UID', 'metadata.uid'],
    ])
      expect(text).toMatch(
        new RegExp(
          `name: ${name}\\s+valueFrom:\\s+fieldRef:\\s+fieldPath: ${field.replace('.', '\\.')}`,
        ),
      );
  });

  // An agent cut off from the API server turns unready after API_UNREACHABLE_MS, its kubelet
  // sees that within the probe's failures, and the controller waits its grace: no longer than
  // an agent without a Pod is given (three heartbeats).
  test('an agent in a Pod cut off from the API server is silent within the heartbeat window', () => {
    const probe =
      /readinessProbe:\s+httpGet:\s+path: \/readyz\s+port: metrics\s+periodSeconds: (\d+)\s+timeoutSeconds: \d+\s+failureThreshold: (\d+)/.exec(
        template('agent-daemonset.yaml'),
      );
    const kubeletMs = Number(probe?.[1]) * Number(probe?.[2]) * 1000;
    expect(kubeletMs).toBeGreaterThan(0);
    expect(API_UNREACHABLE_MS + kubeletMs + DEFAULT_LIVENESS_WINDOWS.unreadyMs).toBeLessThanOrEqual(
      AGENT_STALE_MS,
    );
  });

  test('the agent: Linux nodes only, not virtual ones, node-critical, never two on a node', () => {
    const text = template('agent-daemonset.yaml');
    expect(text).toContain('(dict "kubernetes.io/os" "linux")');
    expect(text).toMatch(/key: type\s+operator: NotIn\s+values: \[virtual-kubelet\]/);
    expect(at(values, ['agent', 'priorityClassName'])).toBe('system-node-critical');
    expect(text).toMatch(/rollingUpdate:\s+maxUnavailable: .*\n(\s+#.*\n)?\s+maxSurge: 0\n/);
    expect(
      validate(rootSchema, withValue(['agent', 'updateStrategy', 'rollingUpdate', 'maxSurge'], 1)),
    ).not.toEqual([]);
  });

  test('the sysfs agent is privileged, in the host PID namespace, with the host paths it needs', () => {
    const text = template('agent-daemonset.yaml');
    expect(text).toContain('hostPID: true');
    expect(text).toContain('privileged: true');
    expect(text).toMatch(/hostPath:\s+path: \/sys\b/);
    expect(text).toMatch(/hostPath:\s+path: \/lib\/modules\b/);
    expect(text).toMatch(/mountPath: \/lib\/modules\s+readOnly: true/);
    expect(text).toMatch(/hostPath:\s+path: \{\{ \$host\.hostModuleDir \}\}/);
    expect(at(values, ['agent', 'sysfs', 'hostModuleDir'])).toBe('/var/lib/livepatch-operator');
    expect(text).toContain('- --module-dir=/var/lib/livepatch-operator/modules');
    expect(text).toMatch(/- name: modules\s+mountPath: \/var\/lib\/livepatch-operator\n/);
  });

  test('modules.caConfigMap: the mirror CA from a ConfigMap, mounted read-only and passed as --module-ca-file; none by default', () => {
    const text = template('agent-daemonset.yaml');
    expect(at(values, ['modules', 'caConfigMap'])).toEqual({ name: '', key: 'ca.crt' });
    expect(text).toContain('{{- $ca := .Values.modules.caConfigMap }}');
    expect(text).toMatch(
      /\{\{- if \$ca\.name \}\}\s+- --module-ca-file=\/etc\/livepatch-operator\/module-ca\/ca\.crt\s+\{\{- end \}\}/,
    );
    expect(text).toMatch(
      /\{\{- if \$ca\.name \}\}\s+- name: module-ca\s+mountPath: \/etc\/livepatch-operator\/module-ca\s+readOnly: true\s+\{\{- end \}\}/,
    );
    expect(text).toMatch(
      /- name: module-ca\s+configMap:\s+name: \{\{ \$ca\.name \}\}\s+items:\s+- key: \{\{ \$ca\.key \| quote \}\}\s+path: ca\.crt\s+\{\{- end \}\}/,
    );
    expect(withoutThenBranches(text, '$ca.name')).not.toContain('module-ca');
    const ca = { name: 'mirror-ca', key: 'root.pem' };
    expect(validate(rootSchema, withValue(['modules', 'caConfigMap'], ca))).toEqual([]);
    for (const bad of [{ ...ca, name: 'Mirror_CA' }, { ...ca, key: '' }, { name: 'x' }])
      expect(validate(rootSchema, withValue(['modules', 'caConfigMap'], bad))).not.toEqual([]);
  });

  test('with the simulator backend the agent gets no privilege and no host path', () => {
    const simulator = withoutThenBranches(template('agent-daemonset.yaml'), '$sysfs');
    expect(simulator).not.toMatch(
      /privileged|hostPID|hostPath|hostNetwork|--sysfs-root|runAsUser: 0/,
    );
    expect(simulator).toContain('securityContext:');
    expect(simulator).toMatch(/- name: modules\s+emptyDir: \{\}/);
  });
});

// ---------------------------------------------------------------------------
// RBAC: the static rules of rbac.yaml, read as YAML once the template actions are
// blanked out.

interface Rule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
}

interface RbacObject {
  readonly kind: string;
  readonly metadata: { readonly name?: string; readonly labels?: Record<string, string> };
  readonly rules?: readonly Rule[];
}

function rbacObjects(file = 'rbac.yaml'): RbacObject[] {
  const text = template(file)
    .replaceAll('{{ $controller }}', 'controller')
    .replaceAll('{{ $agent }}', 'agent')
    .replaceAll('{{ include "livepatch-operator.fullname" . }}', 'release')
    .replaceAll('{{ $fullname }}', 'release')
    .replaceAll('{{ include "livepatch-operator.moduleNamespace" . }}', 'MODULES')
    .split('\n')
    .filter((line) => !/^\s*\{\{[^}]*\}\}\s*$/.test(line))
    .join('\n')
    .replace(/\{\{[^}]*\}\}/g, 'TEMPLATE');
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as unknown)
    .filter(isObject)
    .map((o) => o as unknown as RbacObject);
}

/** 'livepatch.io:livepatches/status' → ['livepatch.io', 'livepatches/status']. */
function splitResource(resource: string): [string, string] {
  const i = resource.indexOf(':');
  return i < 0 ? ['', resource] : [resource.slice(0, i), resource.slice(i + 1)];
}

const verbsOf = (role: RbacObject | undefined, groupResource: string): string[] => {
  const [group, res] = splitResource(groupResource);
  const verbs = new Set<string>();
  for (const rule of role?.rules ?? []) {
    if (rule.apiGroups.includes(group) && rule.resources.includes(res))
      for (const v of rule.verbs) verbs.add(v);
  }
  return [...verbs].sort();
};

describe('RBAC', () => {
  const objects = rbacObjects();
  const find = (kind: string, name: string): RbacObject | undefined =>
    objects.find((o) => o.kind === kind && o.metadata.name === name);

  test('both ServiceAccounts, ClusterRoles, ClusterRoleBindings, and Roles for the Lease, module ConfigMaps and Events', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name ?? ''}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'ClusterRole/controller',
        'ClusterRoleBinding/controller',
        'ClusterRole/agent',
        'ClusterRoleBinding/agent',
        'Role/controller-leader-election',
        'RoleBinding/controller-leader-election',
        'Role/controller-agent-pods',
        'RoleBinding/controller-agent-pods',
        'Role/agent-modules',
        'RoleBinding/agent-modules',
        'Role/release-events',
        'RoleBinding/release-events',
      ]),
    );
    expect(objects.filter((o) => o.kind === 'ServiceAccount')).toHaveLength(2);
  });

  test.each<[string, string[]]>([
    ['livepatch.io:livepatches', ['get', 'list', 'patch', 'update', 'watch']],
    ['livepatch.io:livepatches/status', ['get', 'patch', 'update']],
    ['livepatch.io:livepatches/finalizers', ['update']],
    ['livepatch.io:livepatchnodes', ['get', 'list', 'patch', 'watch']],
    [':nodes', ['get', 'list', 'watch']],
    [':events', []],
  ])('controller cluster-wide verbs on %s: %j', (resource, verbs) => {
    expect(verbsOf(find('ClusterRole', 'controller'), resource)).toEqual(verbs);
  });

  test('the controller may create its Lease, and get and update it by name', () => {
    const role = find('Role', 'controller-leader-election');
    expect(verbsOf(role, 'coordination.k8s.io:leases')).toEqual(['create', 'get', 'update']);
    const named = role?.rules?.filter((r) => r.resourceNames !== undefined) ?? [];
    expect(named.flatMap((r) => r.verbs).sort()).toEqual(['get', 'update']);
    expect(template('rbac.yaml')).toContain(
      'resourceNames: [{{ .Values.controller.leaderElection.leaseName | quote }}]',
    );
  });

  test("the controller lists and watches the agents' Pods in the release namespace only", () => {
    const role = find('Role', 'controller-agent-pods');
    expect(role?.rules).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
    ]);
    expect(verbsOf(find('ClusterRole', 'controller'), ':pods')).toEqual([]);
    expect(template('rbac.yaml')).toMatch(
      /name: \{\{ \$controller \}\}-agent-pods\n\s+namespace: \{\{ \.Release\.Namespace \}\}/,
    );
  });

  test.each<[string, string[]]>([
    ['livepatch.io:livepatchnodes', ['create', 'get', 'list', 'watch']],
    ['livepatch.io:livepatchnodes/status', ['patch']],
    [':nodes', ['get']],
    [':configmaps', []],
    [':events', []],
  ])('agent cluster-wide verbs on %s: %j', (resource, verbs) => {
    expect(verbsOf(find('ClusterRole', 'agent'), resource)).toEqual(verbs);
  });

  test('the agent reads ConfigMaps in the module namespace only', () => {
    const role = objects.find((o) => o.kind === 'Role' && o.metadata.name === 'agent-modules');
    expect(verbsOf(role, ':configmaps')).toEqual(['get']);
    expect(template('rbac.yaml')).toMatch(
      /name: \{\{ \$agent \}\}-modules\n\s+namespace: \{\{ include "livepatch-operator.moduleNamespace" \. \}\}/,
    );
  });

  test('both write Events in "default" only, where the code writes them', () => {
    const role = objects.find((o) => o.kind === 'Role' && o.metadata.name === 'release-events');
    expect(role?.rules).toEqual([{ apiGroups: [''], resources: ['events'], verbs: ['create'] }]);
    expect(template('rbac.yaml')).toMatch(/-events\n\s+namespace: default\n/);
    const binding: (RbacObject & { subjects?: unknown[] }) | undefined = objects.find(
      (o) => o.kind === 'RoleBinding' && o.metadata.name === 'release-events',
    );
    expect(binding?.subjects).toHaveLength(2);
  });

  test('no wildcard, no secrets, nothing the code does not call', () => {
    const rules = objects.flatMap((o) => o.rules ?? []);
    for (const rule of rules) {
      expect([...rule.apiGroups, ...rule.resources, ...rule.verbs]).not.toContain('*');
      expect(rule.resources).not.toContain('secrets');
      expect(rule.verbs).not.toContain('delete');
    }
    expect(verbsOf(find('ClusterRole', 'agent'), 'livepatch.io:livepatches')).toEqual([]);
  });
});

describe('ClusterRoles for people: view and edit', () => {
  const roles = rbacObjects('user-roles.yaml');
  const role = (name: string): RbacObject | undefined =>
    roles.find((o) => o.kind === 'ClusterRole' && o.metadata.name === name);
  const text = template('user-roles.yaml');
  const read = ['get', 'list', 'watch'];

  test('exactly two ClusterRoles, with rbac.create, bound to nobody', () => {
    expect(roles.map((o) => `${o.kind}/${o.metadata.name ?? ''}`)).toEqual([
      'ClusterRole/release-view',
      'ClusterRole/release-edit',
    ]);
    expect(withoutThenBranches(text, '.Values.rbac.create').trim()).toBe('{{- end }}');
  });

  test.each<[string, string, string[]]>([
    ['release-view', 'livepatch.io:livepatches', read],
    ['release-view', 'livepatch.io:livepatchnodes', read],
    ['release-edit', 'livepatch.io:livepatches', [...read, 'create', 'delete', 'patch', 'update']],
    ['release-edit', 'livepatch.io:livepatchnodes', read],
    ['release-edit', 'livepatch.io:livepatches/status', []],
    ['release-edit', 'livepatch.io:livepatchnodes/status', []],
  ])('%s may %s: %j', (name, resource, verbs) => {
    expect(verbsOf(role(name), resource)).toEqual([...verbs].sort());
  });

  test('no other group, resource or wildcard', () => {
    const rules = roles.flatMap((o) => o.rules ?? []);
    expect(new Set(rules.flatMap((r) => r.apiGroups))).toEqual(new Set(['livepatch.io']));
    expect(new Set(rules.flatMap((r) => r.resources))).toEqual(
      new Set(['livepatches', 'livepatchnodes']),
    );
    for (const r of rules) expect(r.verbs).not.toContain('*');
  });

  test('view aggregates into view by default; edit into edit and admin only when asked', () => {
    expect(at(values, ['rbac', 'aggregateToDefaultRoles'])).toEqual({ view: true, edit: false });
    expect(role('release-view')?.metadata.labels).toEqual({
      'rbac.authorization.k8s.io/aggregate-to-view': 'true',
    });
    expect(role('release-edit')?.metadata.labels).toEqual({
      'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
      'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
    });
    expect(text).toContain('{{- $aggregate := .Values.rbac.aggregateToDefaultRoles }}');
    const unaggregated = withoutThenBranches(
      withoutThenBranches(text, '$aggregate.view'),
      '$aggregate.edit',
    );
    expect(unaggregated).not.toContain('aggregate-to-');
  });
});

// ---------------------------------------------------------------------------
// Dockerfile and kind config.

interface Stage {
  readonly from: string;
  readonly lines: readonly string[];
}

/** The Dockerfile's stages, with continuation lines joined and comments dropped. */
function dockerStages(): Stage[] {
  const logical = read(root, 'Dockerfile')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const stages: { from: string; lines: string[] }[] = [];
  for (const line of logical) {
    if (/^FROM\s/i.test(line)) stages.push({ from: line, lines: [] });
    else stages[stages.length - 1]?.lines.push(line);
  }
  return stages;
}

describe('Dockerfile', () => {
  const stages = dockerStages();
  const [build, runtime] = stages;
  const has = (stage: Stage | undefined, re: RegExp): boolean =>
    (stage?.lines ?? []).some((l) => re.test(l));

  const final = runtime?.lines ?? [];
  const args = (keyword: string): string[] =>
    final.filter((l) => l.startsWith(`${keyword} `)).map((l) => l.slice(keyword.length + 1));

  test("two stages: npm run image on node:24-bookworm-slim of the build machine's platform, then its files alone", () => {
    expect(stages).toHaveLength(2);
    expect(build?.from).toMatch(
      /^FROM --platform=\$BUILDPLATFORM node:24-bookworm-slim AS build$/i,
    );
    expect(runtime?.from).toBe('FROM scratch');
  });

  test('builds with npm run image (the product only), not a recipe of its own', () => {
    const run = (build?.lines ?? []).filter((l) => l.startsWith('RUN')).join(' && ');
    const order = ['npm ci', 'npm run image -- '];
    const positions = order.map((step) => run.indexOf(step));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    // The target architecture's files, from the image index the build writes for every architecture.
    expect(has(build, /^ARG TARGETARCH$/)).toBe(true);
    expect(
      has(
        build,
        /^RUN npm run image -- .*--rootfs \/image \$\{TARGETARCH:\+--rootfs-arch \$TARGETARCH\}$/,
      ),
    ).toBe(true);
    expect(args('COPY')).toEqual(['--from=build /image/root/ /']);
    expect(final.filter((l) => l.startsWith('RUN '))).toEqual([]);
  });

  test('runs its image as npm run image configures it: user, entrypoint, command, environment, folder', () => {
    expect(args('USER')).toEqual([IMAGE_RUN.user]);
    expect(args('ENTRYPOINT').map((a) => JSON.parse(a) as unknown)).toEqual([IMAGE_RUN.entrypoint]);
    expect(args('CMD').map((a) => JSON.parse(a) as unknown)).toEqual([IMAGE_RUN.cmd]);
    expect(args('ENV')).toEqual(IMAGE_RUN.env);
    expect(args('WORKDIR')).toEqual([IMAGE_RUN.workingDir]);
    expect(IMAGE_RUN.entrypoint).toEqual(['/usr/local/bin/node', '/app/dist/src/cli/main.js']);
  });

  test('.dockerignore keeps local builds and dependencies out of the context', () => {
    const ignored = read(root, '.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    expect(ignored).toEqual(
      expect.arrayContaining(['node_modules', 'dist', 'test-results', '.git', 'coverage']),
    );
  });
});

describe('kind-config.yaml', () => {
  const text = read(root, 'kind-config.yaml');
  const config = asObject(parse(text), 'kind-config.yaml');

  test('one control plane and three workers', () => {
    expect(config['kind']).toBe('Cluster');
    expect(config['apiVersion']).toBe('kind.x-k8s.io/v1alpha4');
    const nodes = config['nodes'];
    expect(Array.isArray(nodes)).toBe(true);
    const roles = (nodes as Json[]).map((n) => asObject(n, 'node')['role']);
    expect(roles.filter((r) => r === 'control-plane')).toHaveLength(1);
    expect(roles.filter((r) => r === 'worker')).toHaveLength(3);
  });

  test('its header shows how to build (without Docker), load and install with the simulator backend', () => {
    const header = text
      .split('\n')
      .filter((l) => l.startsWith('#'))
      .join('\n');
    const name = asString(config['name'], 'name');
    expect(header).toContain('kind create cluster --config kind-config.yaml');
    const tag = /docker build -t (\S+) \./.exec(header)?.[1];
    expect(tag).toBeDefined();
    const short = tag?.split(':')[1] ?? '';
    expect(header).toContain(`npm run image -- --tag ${short}`);
    expect(header).toContain(
      `kind load image-archive dist/image/livepatch-operator-${short}.oci.tar --name ${name}`,
    );
    expect(
      tag?.startsWith(`${asString(at(values, ['image', 'repository']), 'image.repository')}:`),
    ).toBe(true);
    expect(header).toContain(`--set image.tag=${tag?.split(':')[1] ?? ''}`);
    expect(header).toMatch(/helm install [\s\S]*--set agent\.backend=simulator/);
  });
});
