// The LivePatchNode schema: the per-node contract between controller and agent. See docs/api.md.
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
import { array, boolean, enumeration, integer, object, string, cel } from './dsl.js';
import { AGENT_HEARTBEAT_MS } from '../heartbeat.js';

export const NODE_PATCH_PHASES = [
  'Pending',
  'Loading',
  'Transitioning',
  'Patched',
  'Reversing',
  'Unpatching',
  'Unpatched',
  'Stalled',
  'Failed',
  'Replaced',
] as const;

const desiredPatch = object(
  "A patch this node should have, resolved by the controller for the node's kernel.",
  {
    livePatch: string('Name of the LivePatch this entry comes from.', {
      maxLength: 253,
      tsType: 'LivePatchName',
    }),
    patchName: patchNameSchema,
    state: patchStateSchema('Enabled: load and enable. Disabled: disable, wait, unload.', false),
    module: moduleSourceSchema,
    generation: integer('The LivePatch .metadata.generation this entry was written from.', {
      minimum: 1,
    }),
    stallTimeout: duration('Reverse the transition on the node when it lasts longer than this.', {
      min: '1s',
      max: '24h',
    }),
    allowForce: allowForceSchema,
    series: seriesSchema,
    fallback: boolean(
      'Set by the controller when it starts this node again after the newer member of the series that ' +
        'replaced this patch left (disabled or deleted): load this build again. Without it a replaced ' +
        'series member waits for its turn in the rollout.',
    ),
    bakeTime: duration(
      'How long the node must stay Patched and healthy before its slot frees; the agent reports once ' +
        'more when it is over, so the controller sees the node alive after the bake.',
      { max: '24h' },
    ),
    bootID: string(
      "The Node's status.nodeInfo.bootID when the controller gave this node its rollout slot. An agent " +
        'on another boot (the node rebooted) that finds the patch gone from its kernel waits, Pending, ' +
        'until the controller gives it a slot again, so maxUnavailable holds for rebooted nodes too.',
      { maxLength: 256 },
    ),
  },
  {
    required: ['livePatch', 'patchName', 'state', 'module', 'generation', 'stallTimeout'],
    name: 'DesiredPatch',
  },
);

const observedPatch = object(
  'What the kernel has for one patch, as the agent last saw it.',
  {
    livePatch: string('Name of the LivePatch this entry reports on.', {
      maxLength: 253,
      tsType: 'LivePatchName',
    }),
    patchName: patchNameSchema,
    phase: enumeration('Where this patch is on this node.', NODE_PATCH_PHASES, {
      name: 'NodePatchPhase',
    }),
    enabled: boolean('Raw value of /sys/kernel/livepatch/<patch>/enabled as last read.'),
    transition: boolean('Raw value of /sys/kernel/livepatch/<patch>/transition as last read.'),
    transitionStartTime: string('When the current or last transition started.', {
      format: 'date-time',
    }),
    pendingTasks: integer('Tasks not yet switched to the target state.', { minimum: 0 }),
    blockingTasks: blockingTasksSchema('Some of the pending tasks (at most 10).', 10),
    observedGeneration: observedGenerationSchema('The spec entry generation this reports on.'),
    replacedBy: string(
      "Phase Replaced: the LivePatch whose patch took this one's place on this node, when it is known.",
      { maxLength: 253, tsType: 'LivePatchName' },
    ),
    forced: boolean("Force was written during this patch's transition (spec.stall.allowForce)."),
    pinned: boolean(
      'The kernel holds this module forever because a transition was forced (on 5.18+ kernels: a forced ' +
        'disable, or a forced replace of it; before 5.18: any force while it was loaded). It can never be ' +
        'unloaded or loaded again until the node reboots.',
    ),
    patchedTime: string(
      'When this patch last became Patched on this node; its bake counts from here.',
      {
        format: 'date-time',
      },
    ),
    taintBeforeLoad: integer(
      'Value of /proc/sys/kernel/tainted just before the module was loaded; the health gate compares ' +
        'kernelTainted with it.',
      { minimum: 0 },
    ),
    taintAfterBake: integer(
      "Value of /proc/sys/kernel/tainted once the patch had stayed Patched for the entry's bakeTime; set " +
        'once per Patched stint. Its presence tells the controller the bake is over.',
      { minimum: 0 },
    ),
    message: string('What is happening or went wrong, and what to do about it.', {
      maxLength: 1024,
    }),
  },
  { required: ['livePatch', 'patchName', 'phase'], name: 'ObservedPatch' },
);

const unmanagedPatch = object(
  'A livepatch on the node that no LivePatch manages.',
  {
    patchName: string('Name under /sys/kernel/livepatch.', { maxLength: 255 }),
    enabled: boolean('Raw enabled value.'),
    transition: boolean('Raw transition value.'),
  },
  { required: ['patchName'], name: 'UnmanagedPatch' },
);

const agentPod = object(
  'The Pod this agent runs in, when a kubelet runs it. The controller then judges the agent alive by ' +
    "that Pod's Ready condition, and the agent writes status only when something changed; without it, " +
    'by heartbeatTime.',
  {
    name: string('Name of the Pod.', { maxLength: 253 }),
    namespace: string('Namespace of the Pod.', { maxLength: 63 }),
    uid: string('UID of the Pod: a Pod of the same name made again is another one.', {
      maxLength: 64,
    }),
  },
  { required: ['name', 'namespace', 'uid'], name: 'AgentPod' },
);

const status = object(
  "What the node's kernel has, written by the node's agent.",
  {
    kernelRelease: string('`uname -r` of the node.', { maxLength: 64, tsType: 'KernelRelease' }),
    bootID: string(
      "The Node's status.nodeInfo.bootID when this agent started: the boot this report is from. Until " +
        'it names the current boot, the controller takes a rebooted node for one still in flight.',
      { maxLength: 256 },
    ),
    backend: enumeration(
      'How the agent reaches the kernel: the real sysfs interface, or the simulator.',
      ['sysfs', 'simulator'],
      { name: 'BackendKind' },
    ),
    agentVersion: string('Version of the agent.', { maxLength: 64 }),
    agentPod: agentPod,
    heartbeatTime: string(
      `When the agent last wrote this status. Without agentPod, refreshed at least every ${AGENT_HEARTBEAT_MS / 1000}s; with it, ` +
        'written only with a change.',
      { format: 'date-time' },
    ),
    kernelTainted: integer('Value of /proc/sys/kernel/tainted.', { minimum: 0 }),
    patchedCount: integer('Managed patches in phase Patched.', { minimum: 0 }),
    transitioning: string('The patch in transition on this node, if any.', { maxLength: 64 }),
    patches: array('One entry per patch the agent manages.', observedPatch, {
      maxItems: 64,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['livePatch'],
    }),
    unmanaged: array('Livepatches on the node that no LivePatch manages.', unmanagedPatch, {
      maxItems: 64,
      'x-kubernetes-list-type': 'atomic',
    }),
    conditions: conditionsSchema,
  },
  { name: 'LivePatchNodeStatus' },
);

export const livePatchNodeSchema = object(
  "LivePatchNode is one node's livepatch state: the controller writes spec (what the node should have), " +
    "the node's agent writes status (what the kernel has). Its name is the node's name.",
  {
    apiVersion: string('API version of this object.'),
    kind: string('Kind of this object.'),
    metadata: { type: 'object' },
    spec: object(
      'What this node should have, written by the controller, which owns it: an entry edited by hand is ' +
        'written back on its next pass, and an entry for a LivePatch that does not exist is removed (an ' +
        'EntryRemoved Event; a patch it had loaded stays in the kernel, listed under status.unmanaged). The ' +
        'agent refuses a patchName that is not a module name, whatever the schema let through.',
      {
        patches: array(
          'Patches for this node, at most one in transition at a time.',
          desiredPatch,
          {
            maxItems: 64,
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': ['livePatch'],
            'x-kubernetes-validations': [
              cel(
                'self.all(p, self.exists_one(o, o.patchName == p.patchName))',
                'two entries cannot load the same patchName',
              ),
            ],
          },
        ),
      },
      { name: 'LivePatchNodeSpec', default: {} },
    ),
    status,
  },
);
