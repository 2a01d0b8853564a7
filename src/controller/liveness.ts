// Whether a node's agent is alive, as the controller judges it. Pure.
//
// An agent run by a kubelet names its Pod in its LivePatchNode's status, and
// writes status only when something changed: it is alive while that Pod is on
// its node and Ready, as the kubelet reports it (the agent's readiness fails
// when its kernel loop stops or the API server has not heard it for a minute).
// A Pod not Ready is silent after a short grace; a Pod whose container does
// not run (crashed, restarting, being replaced by a DaemonSet update), or that
// is gone, after a longer one, the time an agent takes to come back. An agent
// without a Pod (run by hand) is judged by its heartbeat, as the controller
// saw it change (heartbeats.ts). A Node that cannot reach the API server at
// all turns NotReady through its kubelet's Lease, which targets.ts reads.
import type { AgentPod, LivePatchNode } from '../api/generated/types.js';
import { AGENT_STALE_MS } from '../api/heartbeat.js';
import type { PodObject } from '../kube/resources.js';

/** Where the Pod an agent names stands, as its kubelet reports it. */
export type PodState =
  | 'ready'
  /** Its container runs and has started, but is not Ready: the agent itself says it cannot work. */
  | 'unready'
  /** Its container does not run or has not started yet, or the Pod is being deleted. */
  | 'down'
  /** No such Pod (of that uid) on the node. */
  | 'gone';

export interface LivenessWindows {
  /** An agent without a Pod: its heartbeat is older than this. */
  readonly heartbeatMs: number;
  /** Its Pod has been `unready` this long. */
  readonly unreadyMs: number;
  /** Its Pod has been `down` or `gone` this long: longer than an agent's restart. */
  readonly downMs: number;
}

/**
 * Each window keeps an agent that stops within the heartbeat's 90 s: the
 * agent's readiness fails after 60 s (kernel loop, API server), the kubelet's
 * probe sees it within 10 s, and 15 s of grace make 85 s; a process gone is
 * seen at once by its kubelet, and 60 s is time enough for a restart or a
 * DaemonSet update to bring the next one up.
 */
export const DEFAULT_LIVENESS_WINDOWS: LivenessWindows = {
  heartbeatMs: AGENT_STALE_MS,
  unreadyMs: 15_000,
  downMs: 60_000,
};

export type Liveness =
  /** `silentInMs`: it turns silent then unless something changes (a Pod in its grace). */
  | { readonly kind: 'alive'; readonly silentInMs?: number }
  | { readonly kind: 'silent'; readonly why: string };

const isTrue = (pod: PodObject, type: string): boolean =>
  pod.status?.conditions?.some((c) => c.type === type && c.status === 'True') ?? false;

/** The state of the Pod `named` on `node`, from the Pod of that name in the cache, if any. */
export function podState(named: AgentPod, node: string, pod: PodObject | undefined): PodState {
  if (!pod || pod.metadata.uid !== named.uid || pod.spec?.nodeName !== node) return 'gone';
  if (isTrue(pod, 'Ready')) return 'ready';
  const containers = pod.status?.containerStatuses ?? [];
  const up =
    pod.metadata.deletionTimestamp === undefined &&
    containers.length > 0 &&
    containers.every((c) => c.state?.running !== undefined && c.started !== false);
  return up ? 'unready' : 'down';
}

/** What the controller knows of one node's agent. */
export interface AgentFacts {
  /** heartbeatTime as this controller saw it change (heartbeats.ts). */
  readonly lpn: LivePatchNode | undefined;
  /** The state of the Pod the agent names, and since when this controller has seen it so. */
  readonly pod?: { readonly state: PodState; readonly since: number };
  /** The namespace whose agent Pods this controller watches. */
  readonly namespace: string;
  readonly now: number;
  readonly windows: LivenessWindows;
}

const seconds = (ms: number): number => Math.round(ms / 1000);

function heartbeatLiveness(lpn: LivePatchNode | undefined, f: AgentFacts): Liveness {
  const heartbeat = lpn?.status?.heartbeatTime;
  if (!heartbeat) return { kind: 'silent', why: 'no agent has reported from this node' };
  const age = f.now - Date.parse(heartbeat);
  if (age > f.windows.heartbeatMs)
    return { kind: 'silent', why: `its agent last reported ${seconds(age)}s ago` };
  return { kind: 'alive' };
}

const POD_SAYS: Record<Exclude<PodState, 'ready'>, string> = {
  unready: 'not Ready',
  down: 'not running',
  gone: 'gone',
};

export function agentLiveness(f: AgentFacts): Liveness {
  const named = f.lpn?.status?.agentPod;
  if (!named) return heartbeatLiveness(f.lpn, f);
  const pod = `${named.namespace}/${named.name}`;
  if (named.namespace !== f.namespace)
    return {
      kind: 'silent',
      why: `its agent runs in Pod ${pod}, outside the namespace this controller watches (${f.namespace}); set --agent-namespace`,
    };
  const state = f.pod?.state ?? 'gone';
  if (state === 'ready') return { kind: 'alive' };
  const graceMs = state === 'unready' ? f.windows.unreadyMs : f.windows.downMs;
  const forMs = f.now - (f.pod?.since ?? f.now);
  if (forMs < graceMs) return { kind: 'alive', silentInMs: graceMs - forMs };
  return {
    kind: 'silent',
    why: `its agent's Pod ${pod} has been ${POD_SAYS[state]} for ${seconds(forMs)}s`,
  };
}
