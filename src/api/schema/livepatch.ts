// The LivePatch schema: one fix, rolled out fleet-wide. See docs/api.md.
import { WEEK_DAYS } from '../constants.js';
import { AGENT_STALE_MS } from '../heartbeat.js';
import {
  allowForceSchema,
  blockingTasksSchema,
  conditionsSchema,
  duration,
  moduleSourceSchema,
  observedGenerationSchema,
  patchNameSchema,
  patchStateSchema,
  seriesSchema,
} from './common.js';
import {
  array,
  boolean,
  cel,
  enumeration,
  integer,
  intOrString,
  object,
  string,
  stringMap,
} from './dsl.js';

const labelSelector = object(
  'Which nodes this patch is for, as a standard label selector. Empty or absent selects every node.',
  {
    matchLabels: stringMap(
      'Labels a node must have, all of them.',
      string('Label value.', { maxLength: 63 }),
    ),
    matchExpressions: array(
      'Set-based requirements a node must meet, all of them.',
      object(
        'One requirement.',
        {
          key: string('Label key.', { maxLength: 317 }),
          operator: enumeration('How the key relates to the values.', [
            'In',
            'NotIn',
            'Exists',
            'DoesNotExist',
          ]),
          values: array(
            'Values for In and NotIn; empty for Exists and DoesNotExist.',
            string('A value.'),
            {
              'x-kubernetes-list-type': 'atomic',
            },
          ),
        },
        {
          required: ['key', 'operator'],
          name: 'LabelSelectorRequirement',
          'x-kubernetes-validations': [
            cel(
              "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
              'In and NotIn need at least one value; Exists and DoesNotExist take none',
            ),
          ],
        },
      ),
      { 'x-kubernetes-list-type': 'atomic', maxItems: 32 },
    ),
  },
  { name: 'LabelSelector', mapType: 'atomic' },
);

const kernelTarget = object(
  'One module build and the kernel release(s) it is built for. Exactly one of release or releasePattern.',
  {
    release: string('An exact kernel release, as `uname -r` prints it on the node.', {
      pattern: '^[A-Za-z0-9._+~-]+$',
      minLength: 1,
      maxLength: 64,
      tsType: 'KernelRelease',
    }),
    releasePattern: string(
      'A regular expression (RE2 syntax) matched against the whole of `uname -r`; must start with "^". ' +
        'An exact release takes precedence over a pattern. The agent loads a module only on the release ' +
        'its vermagic names, exactly, so one build serves one release: a pattern must match only nodes ' +
        "whose `uname -r` is the build's release string (as with packages rebuilt under one release); " +
        'nodes on other releases it matches fail. Give each release its own entry and build.',
      { pattern: '^\\^', maxLength: 256 },
    ),
    module: moduleSourceSchema,
  },
  {
    required: ['module'],
    name: 'KernelTarget',
    'x-kubernetes-validations': [
      cel(
        'has(self.release) != has(self.releasePattern)',
        'set exactly one of release or releasePattern',
      ),
    ],
  },
);

const kernels = array(
  'One entry per kernel build of the patch. Nodes whose kernel matches none are notApplicable, never failed.',
  kernelTarget,
  {
    minItems: 1,
    maxItems: 64,
    'x-kubernetes-list-type': 'atomic',
    'x-kubernetes-validations': [
      cel(
        'self.all(k, !has(k.release) || self.exists_one(o, has(o.release) && o.release == k.release))',
        'each kernel release may appear in only one entry',
      ),
      cel(
        'self.all(k, !has(k.releasePattern) || self.exists_one(o, has(o.releasePattern) && o.releasePattern == k.releasePattern))',
        'each releasePattern may appear in only one entry',
      ),
    ],
  },
);

const step = object(
  'One rollout step: grow the set of patched nodes to a count or a percentage of the targeted nodes, or pause. ' +
    'Exactly one of nodes, percent or pause.',
  {
    nodes: integer('Grow the patched set to this many nodes.', { minimum: 1 }),
    percent: integer(
      'Grow the patched set to this percentage of targeted nodes (rounded up), NotReady and silent ones included.',
      {
        minimum: 1,
        maximum: 100,
      },
    ),
    pause: object(
      'Hold the rollout. With a duration, for that long; without one, until spec.rollout.paused is changed. ' +
        '`kubectl livepatch promote` ends either kind at once, that pause step only (or, with --full, ' +
        'every remaining step).',
      {
        duration: duration('How long to hold.', { min: '1s', max: '168h' }),
      },
      { name: 'PauseStep' },
    ),
  },
  {
    name: 'RolloutStep',
    'x-kubernetes-validations': [
      cel(
        '(has(self.nodes) ? 1 : 0) + (has(self.percent) ? 1 : 0) + (has(self.pause) ? 1 : 0) == 1',
        'a step is exactly one of nodes, percent or pause',
      ),
    ],
  },
);

/** Day names a window accepts: full lowercase names, and kured's three- and two-letter forms. */
const WEEK_DAY_NAMES = WEEK_DAYS.flat();

const window = object(
  'A maintenance window: new nodes start only while it is open, as with kured (rebootDays, startTime, ' +
    "endTime, timeZone) and system-upgrade-controller's spec.window. A node already in flight when it " +
    'closes finishes, and its bake goes on; rollbacks, stall reversals, Disabled and deletion are never ' +
    'held. While it is closed and no node is in flight the phase is Waiting (reason OutsideWindow) and the ' +
    'Progressing and Reconciling conditions say when it opens next; status.window has the times. Absent: ' +
    'nodes start at any time.',
  {
    days: array(
      "The days of the week the window opens on, in timeZone: full lowercase names (monday) or kured's " +
        'short forms (mon, mo). A window that crosses midnight belongs to the day it opens on. Absent: ' +
        'every day.',
      enumeration('A day of the week.', WEEK_DAY_NAMES, { name: 'WeekDay' }),
      { minItems: 1, maxItems: 21, 'x-kubernetes-list-type': 'set' },
    ),
    startTime: string(
      'When the window opens on each of its days, "HH:MM" on a 24-hour clock in timeZone. On the day ' +
        'daylight saving time skips it (02:30 when clocks go from 02:00 to 03:00), the window opens when ' +
        'the clock jumps past it (03:00); on the day an hour repeats, at its first occurrence.',
      { pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' },
    ),
    endTime: string(
      'When the window closes, "HH:MM" on a 24-hour clock in timeZone; "24:00" is the end of the day. ' +
        'An endTime before startTime closes the next day (22:00 to 04:00). Skipped and repeated times ' +
        'count as for startTime: a window that the clock skips entirely that day does not open.',
      { pattern: '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$' },
    ),
    timeZone: string(
      'The IANA time zone the days and times are in (Europe/Berlin, America/New_York, UTC). Defaults to ' +
        'UTC. A name the controller does not know holds the rollout: phase Waiting, reason InvalidWindow, ' +
        'and no node starts until it is fixed.',
      { default: 'UTC', pattern: '^[A-Za-z][A-Za-z0-9_+/-]*$', maxLength: 64 },
    ),
  },
  {
    required: ['startTime', 'endTime'],
    name: 'MaintenanceWindow',
    'x-kubernetes-validations': [
      cel(
        'self.startTime != self.endTime',
        'startTime and endTime are equal: a window must have a length. For the whole day use 00:00 to 24:00',
      ),
    ],
  },
);

/** One Prometheus label matcher: name, operator, double-quoted value. */
const ALERT_MATCHER_PATTERN =
  '^\\s*[a-zA-Z_][a-zA-Z0-9_]*\\s*(=~|!~|!=|=)\\s*"(?:[^"\\\\]|\\\\.)*"\\s*$';

const alertGate = object(
  'Hold the rollout on firing alerts, asked of the Prometheus-compatible API the controller is given ' +
    '(its --alert-source-url, the chart value alertGate.url; a LivePatch cannot name one). Before each ' +
    'node starts: any firing alert that matches holds new starts (phase Waiting, reason AlertsFiring, ' +
    'status.alertGate names the alerts); an alert whose node label names a node that is baking fails ' +
    "that node's bake (status.unhealthyNodes, reason AlertFiring, counted against failureBudget). Only " +
    'firing alerts count, never pending ones. An unreachable or failing source holds new starts (reason ' +
    'AlertSourceUnreachable), and so does a controller without a source (AlertGateNotConfigured): the ' +
    'rollout never proceeds blind. Rollbacks, disabling and deletion are never held. Absent: the ' +
    "chart's default gate, if it sets one. An empty object matches every firing alert.",
  {
    enabled: boolean(
      "false turns the gate off for this LivePatch, the chart's default gate included.",
      { default: true },
    ),
    matchLabels: stringMap(
      'Labels an alert must have, all of them, with exactly these values.',
      string('Label value.', { maxLength: 1024 }),
    ),
    matchers: array(
      'Prometheus label matchers an alert must satisfy, all of them: name="value", name!="value", ' +
        'name=~"regex", name!~"regex" (regexes anchored at both ends, as in PromQL), e.g. ' +
        'severity=~"critical|page" or alertname!="Watchdog".',
      string('One matcher.', { pattern: ALERT_MATCHER_PATTERN, maxLength: 1024 }),
      { maxItems: 32, 'x-kubernetes-list-type': 'atomic' },
    ),
    nodeLabels: array(
      'Alert labels that name a node: an alert whose value of one of them is a node name, or a node ' +
        'name followed by ":port" (as an instance label often is), is about that node. Defaults to ' +
        'node and instance.',
      string('An alert label name.', { pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$', maxLength: 128 }),
      { maxItems: 8, default: ['node', 'instance'], 'x-kubernetes-list-type': 'atomic' },
    ),
  },
  { name: 'AlertGateSpec' },
);

/** A label key, as Kubernetes spells one: an optional DNS-subdomain prefix and a name. */
const LABEL_KEY =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$';
/** A label value; empty here names the nodes without the label. */
const LABEL_VALUE = '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$';

const topology = object(
  'Spread the rollout over the values of a node label (zones, by default): a budget per value beside ' +
    'spec.rollout.maxUnavailable, and optionally one value after another. Each value is a group; nodes ' +
    'without the label (or with an empty value) form one group of their own. status.topology shows each ' +
    "group's progress. Rollbacks, disabling and deletion keep to spec.rollout.maxUnavailable alone. " +
    'Absent: no grouping.',
  {
    key: string(
      'The node label whose values are the groups. Defaults to topology.kubernetes.io/zone.',
      { pattern: LABEL_KEY, maxLength: 317, default: 'topology.kubernetes.io/zone' },
    ),
    maxUnavailable: intOrString(
      'How many nodes of one group may be in flight at once (loading, in transition, or baking): an ' +
        'integer of at least 1, or a percentage of that group\'s targeted nodes from "1%" to "100%", ' +
        'rounded up and at least 1. It holds beside spec.rollout.maxUnavailable: a node starts only when ' +
        'both allow it. Absent: the global limit alone.',
      {
        tsType: 'IntOrPercent',
        'x-kubernetes-validations': [
          cel(
            "type(self) == int ? self >= 1 : self.matches('^(100|[1-9][0-9]?)%$')",
            'must be an integer of at least 1, or a percentage from "1%" to "100%"',
          ),
        ],
      },
    ),
    order: enumeration(
      'Parallel: every group rolls at once, each within its budget. ZoneByZone: no node of a group ' +
        'starts before every group ahead of it in the order has finished, that is every node in it has ' +
        'settled (patched and past its bake, replaced, or stalled or failed within failureBudget; over ' +
        'the budget stall.action decides as always). A node that cannot be reached and never started does ' +
        'not hold its group. A group that has started goes on, so a node that joins a finished group is ' +
        'patched in its turn without waiting for the groups behind. Defaults to Parallel.',
      ['Parallel', 'ZoneByZone'],
      { default: 'Parallel', name: 'TopologyOrder' },
    ),
    zones: array(
      'The order of the groups under ZoneByZone, by label value; "" names the nodes without the label. ' +
        'Groups not listed follow the listed ones in a fixed order derived from the LivePatch name and ' +
        'the value (like the order of nodes), the nodes without the label last. Absent: that derived ' +
        'order for every group.',
      string('A label value.', { pattern: LABEL_VALUE, maxLength: 63 }),
      { maxItems: 64, 'x-kubernetes-list-type': 'set' },
    ),
  },
  {
    name: 'TopologySpec',
    'x-kubernetes-validations': [
      cel(
        "!has(self.zones) || self.order == 'ZoneByZone'",
        'zones orders the groups of order ZoneByZone: set order: ZoneByZone, or remove zones',
      ),
    ],
  },
);

const rollout = object(
  'How fast the patch reaches the fleet.',
  {
    maxUnavailable: intOrString(
      'How many nodes may be in flight at any moment (loading, in transition, or baking): an integer of at ' +
        'least 1, or a percentage of the targeted nodes from "1%" to "100%", rounded up and at least 1. ' +
        'Targeted nodes that are NotReady or whose agent is silent count in the percentage. A node that ' +
        'frees its slot starts the next one at once (rolling, like a DaemonSet); nodes that join or reboot ' +
        'later take slots like any other. Defaults to 1.',
      {
        default: 1,
        tsType: 'IntOrPercent',
        'x-kubernetes-validations': [
          cel(
            "type(self) == int ? self >= 1 : self.matches('^(100|[1-9][0-9]?)%$')",
            'must be an integer of at least 1, or a percentage from "1%" to "100%"',
          ),
        ],
      },
    ),
    steps: array(
      'Progressive steps. Absent: one step of 100%. After the last step the rollout continues to every ' +
        'targeted node.',
      step,
      { maxItems: 32, 'x-kubernetes-list-type': 'atomic' },
    ),
    topology,
    bakeTime: duration(
      'Per node: after Patched, the node stays in flight this long and must stay healthy (Node Ready, agent ' +
        'reporting, no new kernel taint M, B, D, W or L) before its slot frees. Unhealthy = failed ' +
        '(counted against failureBudget).',
      { max: '24h', default: '0s' },
    ),
    paused: boolean('Freeze the rollout where it is. Nothing is reversed; no new node starts.', {
      default: false,
    }),
    window,
    attempt: integer(
      'Counts retries: `kubectl livepatch retry` increments it after RolledBack or Failed. Like any spec ' +
        'change it is a new generation, which the controller rolls out afresh; a new attempt also ends ' +
        'an abort (the livepatch.io/abort annotation names the attempt it stops) and leaves a promotion ' +
        '(livepatch.io/promote) behind: its steps apply again.',
      { minimum: 0 },
    ),
    alertGate,
  },
  { name: 'RolloutSpec', default: {} },
);

const stall = object(
  'What counts as a stalled transition and what the fleet does about it.',
  {
    timeout: duration(
      'A node whose transition lasts longer than this has stalled; its agent reverses it. The kernel ' +
        'signals the tasks still blocking a transition only 15s after it starts (and every 15s after), so ' +
        'a timeout under about 20s reverses transitions on real nodes that were about to finish: apply warns ' +
        'below 20s. Short timeouts suit simulated fleets.',
      {
        min: '1s',
        max: '24h',
        default: '60s',
      },
    ),
    action: enumeration(
      'Rollback reverses every node of this patch and ends RolledBack. Halt reverses the stalled node only, ' +
        'starts no new nodes and ends Failed. Ignore reverses the stalled node only and keeps rolling.',
      ['Rollback', 'Halt', 'Ignore'],
      { default: 'Rollback', name: 'StallAction' },
    ),
    allowForce: allowForceSchema,
  },
  { name: 'StallPolicy', default: {} },
);

const nodeCounts = object(
  'Nodes by state.',
  {
    targeted: integer(
      'Nodes selected whose kernel has a build, NotReady nodes and nodes whose agent is silent included ' +
        '(unknown): they stay targets until their Node object is deleted or the selector leaves them out.',
      { minimum: 0 },
    ),
    patched: integer('Targeted nodes with the patch enabled and its transition complete.', {
      minimum: 0,
    }),
    transitioning: integer('Nodes loading, in transition, reversing or unpatching.', {
      minimum: 0,
    }),
    pending: integer(
      'Targeted nodes not started yet: nodes that joined, and nodes that rebooted and came back without the ' +
        'patch (counted once, here, until their turn in the rollout gives them a slot again; Events ' +
        'NodeRebooted and NodeRepatched say so).',
      { minimum: 0 },
    ),
    stalled: integer('Nodes whose transition passed the stall timeout.', { minimum: 0 }),
    failed: integer(
      'Nodes that could not load the patch (checksum, vermagic, missing file...) or failed the health ' +
        'gate while baking.',
      { minimum: 0 },
    ),
    reverted: integer('Nodes where the patch was reversed or unpatched by a rollback.', {
      minimum: 0,
    }),
    replaced: integer(
      "Nodes where a newer atomic-replace patch took this one's place, or a newer member of its " +
        'spec.series is enabled (status.supersededBy says by which).',
      { minimum: 0 },
    ),
    notApplicable: integer(
      'Selected nodes whose kernel matches no entry of spec.kernels (a node that rebooted into such a ' +
        'release among them).',
      {
        minimum: 0,
      },
    ),
    unknown: integer(
      `Targeted nodes that are NotReady or whose agent is absent or stopped reporting (${AGENT_STALE_MS / 1000} s). One that last ` +
        'reported the patch running counts as running it; any other keeps the LivePatch from Complete ' +
        '(Complete condition False, reason NodesUnreachable, naming the first few).',
      { minimum: 0 },
    ),
  },
  { name: 'NodeCounts' },
);

const alertGateStatus = object(
  "The alert gate's last verdict, while the rollout goes forward and the LivePatch is gated " +
    '(spec.rollout.alertGate or the chart default); absent otherwise.',
  {
    state: enumeration(
      'Clear: no matching alert fires, nodes may start. Firing: matching alerts fire, no new node starts. ' +
        'Unreachable: the alert source did not answer (or answered an error, or not for three intervals), ' +
        'no new node starts. NotConfigured: the controller has no alert source, or the gate is invalid; no ' +
        'new node starts.',
      ['Clear', 'Firing', 'Unreachable', 'NotConfigured'],
      { name: 'AlertGateState' },
    ),
    alerts: array(
      'The matching firing alerts (at most 10 listed).',
      object(
        'One firing alert.',
        {
          name: string('Its alertname.', { maxLength: 256 }),
          node: string('The node its node label names, if it names one of ours.', {
            tsType: 'NodeName',
          }),
          activeAt: string('When it became active, as the source says.', { maxLength: 64 }),
        },
        { required: ['name'], name: 'GateAlert' },
      ),
      { maxItems: 10, 'x-kubernetes-list-type': 'atomic' },
    ),
    firing: integer('How many matching alerts fire, listed or not.', { minimum: 0 }),
    checkedAt: string('When the alert source gave the answer this verdict is based on.', {
      format: 'date-time',
    }),
    message: string('What the gate holds and why, or that it holds nothing.', { maxLength: 1024 }),
  },
  { required: ['state', 'message'], name: 'AlertGateStatus' },
);

/** The decisions a webhook hears about (README, Notifications). */
export const NOTIFICATION_DECISIONS = [
  'Started',
  'Paused',
  'Stalled',
  'RollingBack',
  'RolledBack',
  'Complete',
  'Failed',
] as const;

const notifications = object(
  "Webhook notifications of this LivePatch's decisions, when the controller has a webhook " +
    "(--notify-url-file; the chart's notifications values). Each decision is recorded here in the " +
    'status write that makes it, then sent, then moved to done: a controller that takes over sends what ' +
    'its predecessor had not delivered, and never a decision already done.',
  {
    pending: array(
      'Notifications recorded and not yet delivered, oldest first (at most 16: a seventeenth drops the ' +
        'oldest, with a NotificationFailed Event).',
      object(
        'One notification on its way.',
        {
          id: string(
            'Stable id of the decision, sent with it: a receiver deduplicates on it (a controller that ' +
              'dies between the delivery and this record sends it once more).',
            { maxLength: 320 },
          ),
          decision: enumeration('What the controller decided.', NOTIFICATION_DECISIONS, {
            name: 'NotificationDecision',
          }),
          message: string('What a person reads.', { maxLength: 1024 }),
          generation: integer('The LivePatch generation of the decision.', { minimum: 0 }),
          attempt: integer('spec.rollout.attempt of the decision (0 when unset).', { minimum: 0 }),
          phase: string('The phase the decision left the LivePatch in.', {
            maxLength: 32,
            tsType: 'LivePatchPhase',
          }),
          time: string('When the controller decided.', { format: 'date-time' }),
          tries: integer('Deliveries tried and failed so far.', { minimum: 0 }),
          nextAttemptAt: string('When the next delivery is tried.', { format: 'date-time' }),
          lastError: string(
            "Why the last delivery failed, naming the receiver by scheme and host only (the URL's path, " +
              'query and credentials never appear).',
            { maxLength: 512 },
          ),
        },
        {
          required: ['id', 'decision', 'message', 'generation', 'attempt', 'time', 'tries'],
          name: 'PendingNotification',
        },
      ),
      { maxItems: 16, 'x-kubernetes-list-type': 'atomic' },
    ),
    done: array(
      'Ids of the latest notifications delivered or given up, newest last (at most 32): a decision ' +
        'derived again (a node joining a Complete rollout) is not sent again.',
      string('A notification id.', { maxLength: 320 }),
      { maxItems: 32, 'x-kubernetes-list-type': 'atomic' },
    ),
  },
  { name: 'NotificationOutbox' },
);

const status = object(
  'Fleet-wide state, written by the controller.',
  {
    observedGeneration: observedGenerationSchema('The .metadata.generation this status describes.'),
    phase: enumeration(
      'Where the rollout is. Complete (and the Complete condition, what kubectl wait reads) means every ' +
        'targeted node runs the patch, or the newer patch that replaced it, or stalled or failed within ' +
        'failureBudget and is named in status; a NotReady or silent node without the patch keeps it ' +
        'Progressing (reason NodesUnreachable), as a DaemonSet rollout waits for its NotReady nodes. A node ' +
        'that joins, or reboots without the patch, takes a Complete rollout back to Progressing (or Waiting for ' +
        'its window) until it is patched in its turn. Paused ' +
        'waits for a person (spec.rollout.paused, a pause step); Waiting waits for a time or a signal (the ' +
        'maintenance window, the alert gate), and the Progressing condition says which and until when.',
      [
        'Pending',
        'Progressing',
        'Paused',
        'Waiting',
        'Complete',
        'RollingBack',
        'RolledBack',
        'Disabling',
        'Disabled',
        'Failed',
      ],
      { name: 'LivePatchPhase' },
    ),
    summary: string('Patched over targeted nodes, e.g. "37/40".', { maxLength: 32 }),
    nodes: nodeCounts,
    currentStep: integer('Index (0-based) of the rollout step in progress.', { minimum: 0 }),
    currentStepStartTime: string('When the current step began; timed pauses count from here.', {
      format: 'date-time',
    }),
    pausedAtStepStart: boolean(
      'spec.rollout.paused when the current pause step began; changing it resumes.',
    ),
    promotion: object(
      'The last promotion the controller acted on (`kubectl livepatch promote`, the livepatch.io/promote ' +
        'annotation): which attempt, which pause step it ended or that it skipped every remaining step, ' +
        'who asked and when. A Promoted Event says the same.',
      {
        attempt: integer('The spec.rollout.attempt it was for.', { minimum: 0 }),
        step: integer(
          'The pause step it ended, 1-based as messages number steps; absent with full.',
          {
            minimum: 1,
          },
        ),
        full: boolean(
          'Every remaining step was skipped: the rollout goes on to every targeted node.',
        ),
        requestedBy: string('Who asked (livepatch.io/requested-by), as the API server knew them.', {
          maxLength: 256,
        }),
        time: string('When the controller acted on it.', { format: 'date-time' }),
      },
      { required: ['attempt', 'time'], name: 'Promotion' },
    ),
    unhealthyNodes: array(
      'Nodes that failed the health gate while baking, this generation (at most 256 listed). They count ' +
        'as failed; an edit of the LivePatch clears them.',
      object(
        'One node that failed its bake.',
        {
          node: string('Node name.', { tsType: 'NodeName' }),
          reason: enumeration(
            'What went wrong.',
            ['NodeNotReady', 'AgentSilent', 'KernelTainted', 'AlertFiring'],
            {
              name: 'UnhealthyReason',
            },
          ),
          message: string('What happened and what to do.', { maxLength: 1024 }),
          since: string('When the controller saw it.', { format: 'date-time' }),
          generation: integer('The LivePatch generation the node was baking for.', { minimum: 1 }),
          taintBefore: string('Kernel taint flags before the load, as letters (e.g. "OE").', {
            maxLength: 19,
          }),
          taintAfter: string('Kernel taint flags as last reported, as letters (e.g. "OEKW").', {
            maxLength: 19,
          }),
        },
        { required: ['node', 'reason', 'message', 'generation'], name: 'UnhealthyNode' },
      ),
      { maxItems: 256, 'x-kubernetes-list-type': 'atomic' },
    ),
    topology: object(
      'Progress per group of spec.rollout.topology.key, present while spec.rollout.topology is set.',
      {
        key: string('The node label the groups are values of.', { maxLength: 317 }),
        groups: integer(
          'How many groups the targeted nodes form, the nodes without the label included.',
          { minimum: 0 },
        ),
        finished: integer(
          'Groups whose every reachable node has settled and none is in flight or baking.',
          { minimum: 0 },
        ),
        unlabeled: integer(
          'Targeted nodes without the label (or with an empty value). They form one group, listed with ' +
            'zone "" (kubectl livepatch status shows it as "(no <key> label)").',
          { minimum: 0 },
        ),
        zones: array(
          'Each group, in the order ZoneByZone takes them (by value under Parallel). At most 64 are ' +
            'listed: groups with nodes in flight first, then unfinished ones, then the rest; groups ' +
            'counts them all.',
          object(
            'One group.',
            {
              zone: string('The label value; "" for the nodes without the label.', {
                maxLength: 63,
              }),
              targeted: integer('Targeted nodes in the group, NotReady and silent ones included.', {
                minimum: 0,
              }),
              patched: integer(
                'Nodes of the group with the patch enabled (baking ones included).',
                {
                  minimum: 0,
                },
              ),
              inFlight: integer(
                "Nodes of the group in flight: loading, in transition or baking, what the group's " +
                  'maxUnavailable counts.',
                { minimum: 0 },
              ),
            },
            { required: ['zone', 'targeted', 'patched', 'inFlight'], name: 'ZoneProgress' },
          ),
          { maxItems: 64, 'x-kubernetes-list-type': 'atomic' },
        ),
      },
      { required: ['key', 'groups', 'finished', 'unlabeled', 'zones'], name: 'TopologyStatus' },
    ),
    kernels: array(
      'Progress per kernel release (at most 256 listed: the releases with the most targeted nodes).',
      object(
        'One kernel release.',
        {
          release: string('Kernel release.', { tsType: 'KernelRelease' }),
          targeted: integer('Targeted nodes on this release.', { minimum: 0 }),
          patched: integer('Patched nodes on this release.', { minimum: 0 }),
        },
        { required: ['release', 'targeted', 'patched'], name: 'KernelProgress' },
      ),
      { maxItems: 256, 'x-kubernetes-list-type': 'atomic' },
    ),
    stalledNodes: array(
      'Nodes whose transition stalled, with the tasks that blocked it (at most 20 listed).',
      object(
        'One stalled node.',
        {
          node: string('Node name.', { tsType: 'NodeName' }),
          since: string('When its transition started.', { format: 'date-time' }),
          blockingTasks: blockingTasksSchema('Tasks still on the old code when it stalled.', 10),
        },
        { required: ['node'], name: 'StalledNode' },
      ),
      { maxItems: 20, 'x-kubernetes-list-type': 'atomic' },
    ),
    supersededBy: array(
      "The LivePatches whose patch took this one's place, with how many nodes each holds (at most 16 " +
        'listed, most nodes first). Nodes of a newer member of spec.series count here once their agent ' +
        'reports this patch Replaced.',
      object(
        'One LivePatch that superseded this one.',
        {
          livePatch: string('Name of the superseding LivePatch.', { tsType: 'LivePatchName' }),
          nodes: integer('Nodes where it superseded this one.', { minimum: 1 }),
        },
        { required: ['livePatch', 'nodes'], name: 'Superseder' },
      ),
      { maxItems: 16, 'x-kubernetes-list-type': 'atomic' },
    ),
    notifications,
    window: object(
      'The maintenance window (spec.rollout.window) as the controller last read it, while the rollout ' +
        'goes forward; absent without a window, or while its time zone is unknown (the Progressing ' +
        'condition says so).',
      {
        open: boolean('Whether new nodes may start now.'),
        closesAt: string(
          'While open: when it closes. Absent while closed, and for a window that does not close within ' +
            'two weeks (every day, 00:00 to 24:00).',
          { format: 'date-time' },
        ),
        nextOpen: string(
          'When it opens next: while closed, the next opening; while open, the one after it closes.',
          { format: 'date-time' },
        ),
      },
      { required: ['open'], name: 'WindowStatus' },
    ),

    alertGate: alertGateStatus,
    conditions: conditionsSchema,
  },
  // Generation 0 observed until the controller first writes: kstatus reads a LivePatch without status as Current.
  { name: 'LivePatchStatus', default: { observedGeneration: 0 } },
);

export const livePatchSpec = object(
  'What to patch, where, how fast, and what to do on a stall.',
  {
    patchName: patchNameSchema,
    state: patchStateSchema(
      'Desired fleet-wide state. Disabled unpatches every node, in waves under the same limits.',
      true,
    ),
    series: seriesSchema,
    cves: array(
      'CVE identifiers this patch fixes; informational, shown in events.',
      string('A CVE identifier.', { pattern: '^CVE-[0-9]{4}-[0-9]{4,}$', maxLength: 32 }),
      { maxItems: 64, 'x-kubernetes-list-type': 'set' },
    ),
    nodeSelector: labelSelector,
    kernels,
    rollout,
    stall,
    failureBudget: integer('Failed or stalled nodes tolerated before stall.action fires.', {
      minimum: 0,
      default: 0,
    }),
  },
  {
    required: ['patchName', 'kernels'],
    name: 'LivePatchSpec',
    'x-kubernetes-validations': [
      cel(
        'self.patchName == oldSelf.patchName',
        'patchName cannot change: nodes know the patch by this name. Create a new LivePatch for a new module',
      ),
    ],
  },
);

export const livePatchSchema = object(
  'LivePatch rolls one kernel livepatch out across the nodes it selects, in waves, and reverses it when ' +
    'nodes stall.',
  {
    apiVersion: string('API version of this object.'),
    kind: string('Kind of this object.'),
    metadata: { type: 'object' },
    spec: livePatchSpec,
    status,
  },
  { required: ['spec'] },
);
