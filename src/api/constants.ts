// Every label, annotation, finalizer and name the operator puts on the API,
// derived from one group so they cannot drift apart.

export const GROUP = 'livepatch.io' as const;
export const VERSION = 'v1alpha1' as const;
export const API_VERSION = `${GROUP}/${VERSION}` as const;

export const LIVEPATCH = {
  kind: 'LivePatch',
  plural: 'livepatches',
  singular: 'livepatch',
  shortNames: ['lp'],
  listKind: 'LivePatchList',
} as const;

export const LIVEPATCH_NODE = {
  kind: 'LivePatchNode',
  plural: 'livepatchnodes',
  singular: 'livepatchnode',
  shortNames: ['lpn'],
  listKind: 'LivePatchNodeList',
} as const;

/** `kubectl get livepatching` lists both resources. */
export const CATEGORY = 'livepatching';

export const FINALIZER = `${GROUP}/unpatch-nodes`;

/** Field managers, one per component, so `managedFields` says who wrote what. */
export const FIELD_MANAGER = {
  controller: 'livepatch-controller',
  agent: 'livepatch-agent',
  fleet: 'livepatch-fleet-simulator',
  plugin: 'kubectl-livepatch',
} as const;

/**
 * Annotations a user (or `kubectl livepatch`) puts on a LivePatch to steer it.
 * Annotations, not spec: an abort is no change of what to roll out, and must
 * not read as a fresh attempt.
 */
export const STEERING_ANNOTATIONS = {
  /** "attempt-N": roll back now, and hold it while spec.rollout.attempt is N (a bare generation: while it is current). */
  abort: `${GROUP}/abort`,
  /**
   * "attempt-N/step-K@TIME": end pause step K (1-based), held since TIME (status.currentStepStartTime),
   * of attempt N; "attempt-N/full": skip every remaining step of attempt N.
   */
  promote: `${GROUP}/promote`,
  /** Who asked for the last abort, retry or promotion, as the API server knows them; quoted in conditions and Events. */
  requestedBy: `${GROUP}/requested-by`,
} as const;

/** Annotations a test or demo puts on a Node to aim the kernel simulator. */
export const SIM_ANNOTATIONS = {
  tasks: 'sim.livepatch.io/tasks',
  signalTasks: 'sim.livepatch.io/signal-tasks',
  stuckTasks: 'sim.livepatch.io/stuck-tasks',
  transitionSeconds: 'sim.livepatch.io/transition-seconds',
  loadError: 'sim.livepatch.io/load-error',
  loadTaint: 'sim.livepatch.io/load-taint',
  loadHang: 'sim.livepatch.io/load-hang',
} as const;

export const LABELS = {
  /** Marks Nodes created by the fleet simulator, so cleanup never touches real ones. */
  simulatedNode: `${GROUP}/simulated`,
} as const;

/** The labels the chart gives the agents' Pods, less its release: how the controller finds them by default. */
export const AGENT_POD_SELECTOR =
  'app.kubernetes.io/name=livepatch-operator,app.kubernetes.io/component=agent';

/**
 * The day names a maintenance window accepts, Sunday first (the index is the
 * weekday, as Date#getUTCDay counts): the full name, and kured's three- and
 * two-letter forms.
 */
export const WEEK_DAYS = [
  ['sunday', 'sun', 'su'],
  ['monday', 'mon', 'mo'],
  ['tuesday', 'tue', 'tu'],
  ['wednesday', 'wed', 'we'],
  ['thursday', 'thu', 'th'],
  ['friday', 'fri', 'fr'],
  ['saturday', 'sat', 'sa'],
] as const;
