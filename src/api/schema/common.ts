// Schema pieces both resources share: module sources, durations, tasks, conditions.
import { array, boolean, cel, enumeration, integer, object, string, type Schema } from './dsl.js';

export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';

export interface DurationBounds {
  readonly min?: string;
  readonly max: string;
  readonly default?: string;
}

/** A Go-style duration ("90s", "1m30s") with bounds checked by CEL once the shape is right. */
export function duration(description: string, bounds: DurationBounds): Schema {
  const guard = `!self.matches('${DURATION_PATTERN.replaceAll('\\', '\\\\')}')`;
  const rules = [
    cel(`${guard} || duration(self) <= duration('${bounds.max}')`, `must be at most ${bounds.max}`),
  ];
  if (bounds.min !== undefined) {
    rules.push(
      cel(
        `${guard} || duration(self) >= duration('${bounds.min}')`,
        `must be at least ${bounds.min}`,
      ),
    );
  }
  return string(`${description} A duration such as "90s", "5m" or "1h30m" (units h, m, s, ms).`, {
    pattern: DURATION_PATTERN,
    maxLength: 32,
    tsType: 'Duration',
    ...(bounds.default === undefined ? {} : { default: bounds.default }),
    'x-kubernetes-validations': rules,
  });
}

export const patchNameSchema = string(
  'Name of the livepatch kernel module, which is also its directory /sys/kernel/livepatch/<patchName>. ' +
    'Letters of either case, digits and underscores, 1 to 55 characters, as the kernel keeps module names ' +
    '(kpatch-build keeps the case of the patch file: livepatch_CVE_2024_1086): never a path. A module file ' +
    'named with dashes loads with underscores instead (livepatch-fix.ko is livepatch_fix): give that name.',
  { pattern: '^[A-Za-z0-9_]{1,55}$', minLength: 1, maxLength: 55, tsType: 'PatchName' },
);

export const patchStateSchema = (description: string, withDefault: boolean): Schema =>
  enumeration(description, ['Enabled', 'Disabled'], {
    ...(withDefault ? { default: 'Enabled' } : {}),
    name: 'PatchState',
  });

const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

/**
 * A LivePatch's place in a series of cumulative atomic-replace builds. The
 * same shape on the LivePatch and in each node's entry, so the agent knows the
 * order without the controller.
 */
export const seriesSchema = object(
  'Declares this LivePatch one build in a series of cumulative atomic-replace patches (each build ' +
    'contains every fix of the ones before it). On every node the agent never loads a member older ' +
    'than a newer member of the same series that is enabled for that node, whatever the order the ' +
    'builds arrive in or load after a reboot: the older one reports Replaced, superseded by the newer. ' +
    'When the newer member is disabled or deleted, the older one is loaded again on its nodes, paced ' +
    'like a rollout (maxUnavailable). Every member must be an atomic-replace build (klp_patch.replace); ' +
    'two LivePatches of one series must not share a sequence: the younger one stays Failed ' +
    '(SeriesSequenceInUse) and touches no node, and an agent given both loads neither and reports both Failed.',
  {
    name: string('Name of the series, shared by every build of it.', {
      pattern: DNS_LABEL,
      minLength: 1,
      maxLength: 63,
    }),
    sequence: integer('Order within the series: a higher sequence is a newer build.', {
      minimum: 1,
    }),
  },
  { required: ['name', 'sequence'], name: 'PatchSeries' },
);
const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

export const moduleSourceSchema = object(
  'Where the agent gets the module file, and the checksum it must have. Exactly one of url, configMap ' +
    'or hostPath. The agent takes files of at most 16 MiB (cut off while reading, never read whole), ' +
    'verifies sha256, then checks that the file is an ELF kernel module whose own name is patchName, ' +
    "flagged livepatch=Y and built for the node's exact kernel release, before anything reaches the kernel.",
  {
    url: string(
      'An http:// or https:// URL the agent downloads the module from: an answer (connect, TLS, headers) ' +
        'within 15s, the whole file within 120s (both retried), at most 16 MiB. Redirects are followed ' +
        'only on the same host (and from http to https there), never from https down to http, at most 5; ' +
        "another host only if listed in the agent's --module-redirect-hosts (the chart's " +
        'modules.redirectHosts). HTTP 404, 410, 401 and 403 fail the node; 5xx, 408 and 429 are retried. ' +
        'Messages show the URL without its query.',
      {
        maxLength: 2048,
        pattern: '^https?://',
        'x-kubernetes-validations': [
          cel(
            "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",
            'must be an absolute http:// or https:// URL with a host',
          ),
        ],
      },
    ),
    configMap: object(
      'A key of a ConfigMap holding the module, preferably in binaryData. A ConfigMap holds at most ' +
        '1 MiB (the API server refuses larger objects): a bigger module needs url or hostPath. Each node ' +
        'reads it when it loads the patch: deleted mid-rollout, the nodes that start after fail (and count ' +
        'against failureBudget); changed, they fail the checksum, so content other than sha256 names never loads.',
      {
        namespace: string(
          'Namespace of the ConfigMap: the namespace the agents read module ConfigMaps from (the ' +
            "chart's modules.configMapNamespace, by default its release namespace); the agent " +
            'refuses any other.',
          { pattern: DNS_LABEL, maxLength: 63 },
        ),
        name: string('Name of the ConfigMap.', { pattern: DNS_SUBDOMAIN, maxLength: 253 }),
        key: string('Key in data or binaryData.', { pattern: '^[-._a-zA-Z0-9]+$', maxLength: 253 }),
      },
      { required: ['namespace', 'name', 'key'], name: 'ConfigMapModuleSource' },
    ),
    hostPath: string(
      'Absolute, normalized path of the module file on the node (no "." or ".." segments, no "//", ' +
        'no trailing "/"): a regular file, never a device or pipe.',
      {
        pattern: '^(/[^/]+)+$',
        maxLength: 4096,
        'x-kubernetes-validations': [
          cel(
            "!self.matches('/\\\\.\\\\.?(/|$)')",
            'must be a normalized absolute path: "." and ".." segments are not allowed',
          ),
        ],
      },
    ),
    sha256: string('SHA-256 of the module file: 64 lowercase hexadecimal characters.', {
      pattern: '^[a-f0-9]{64}$',
      minLength: 64,
      maxLength: 64,
    }),
  },
  {
    required: ['sha256'],
    name: 'ModuleSource',
    'x-kubernetes-validations': [
      cel(
        '(has(self.url) ? 1 : 0) + (has(self.configMap) ? 1 : 0) + (has(self.hostPath) ? 1 : 0) == 1',
        'module needs exactly one source: set one of url, configMap or hostPath',
      ),
    ],
  },
);

const blockingTask = object(
  'A task that has not switched to the target patch state.',
  {
    pid: integer('Process or thread id.', { minimum: 0 }),
    comm: string('Command name, as in /proc/<pid>/comm.', { maxLength: 64 }),
  },
  { required: ['pid', 'comm'], name: 'BlockingTask' },
);

export const blockingTasksSchema = (description: string, maxItems: number): Schema =>
  array(description, blockingTask, { maxItems, 'x-kubernetes-list-type': 'atomic' });

export const conditionsSchema = array(
  'Standard conditions, one per type, each with the generation it describes.',
  object(
    'A metav1.Condition.',
    {
      type: string('Condition type.', { maxLength: 316, pattern: '^[A-Za-z][A-Za-z0-9]*$' }),
      status: enumeration('True, False or Unknown.', ['True', 'False', 'Unknown'], {
        name: 'ConditionStatus',
      }),
      reason: string('Machine-readable CamelCase reason.', {
        maxLength: 1024,
        minLength: 1,
        pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
      }),
      message: string('What happened and what to do, for a person.', { maxLength: 32768 }),
      lastTransitionTime: string('When status last changed.', { format: 'date-time' }),
      observedGeneration: integer('The .metadata.generation this condition was set from.', {
        minimum: 0,
      }),
    },
    { required: ['type', 'status', 'reason', 'message', 'lastTransitionTime'], name: 'Condition' },
  ),
  { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'], maxItems: 16 },
);

export const observedGenerationSchema = (description: string): Schema =>
  integer(description, { minimum: 0 });

export const allowForceSchema = boolean(
  'Allow writing the patch\'s "force" file to finish a stalled transition. Force is irreversible: the ' +
    'module can never be unloaded afterwards. Never used unless true.',
  { default: false },
);
