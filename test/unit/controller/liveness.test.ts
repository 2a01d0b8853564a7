import { describe, expect, test } from '@jest/globals';
import type { AgentPod, LivePatchNode } from '../../../src/api/generated/types.js';
import {
  agentLiveness,
  DEFAULT_LIVENESS_WINDOWS,
  podState,
  type AgentFacts,
  type PodState,
} from '../../../src/controller/liveness.js';
import { PodStateClock } from '../../../src/controller/pod-clock.js';
import { podEssentials, type PodObject } from '../../../src/kube/resources.js';

const T0 = Date.UTC(2026, 11, 3, 12);
const NS = 'livepatch';
const POD: AgentPod = { name: 'agent-x7k2p', namespace: NS, uid: 'uid-1' };

function lpn(o: { heartbeat?: number; pod?: AgentPod } = {}): LivePatchNode {
  return {
    apiVersion: 'livepatch.io/v1alpha1',
    kind: 'LivePatchNode',
    metadata: { name: 'n1' },
    spec: {},
    status: {
      ...(o.heartbeat !== undefined ? { heartbeatTime: new Date(o.heartbeat).toISOString() } : {}),
      ...(o.pod ? { agentPod: o.pod } : {}),
    },
  };
}

/** An agent Pod as a kubelet reports it. */
function pod(o: {
  node?: string;
  uid?: string;
  ready?: boolean;
  running?: boolean;
  started?: boolean;
  deleting?: boolean;
}): PodObject {
  return {
    metadata: {
      name: POD.name,
      namespace: NS,
      uid: o.uid ?? POD.uid,
      ...(o.deleting ? { deletionTimestamp: new Date(T0).toISOString() } : {}),
    },
    spec: { nodeName: o.node ?? 'n1' },
    status: {
      conditions: [
        { type: 'PodScheduled', status: 'True' },
        { type: 'Ready', status: o.ready ? 'True' : 'False' },
      ],
      containerStatuses: [
        {
          started: o.started ?? o.running ?? true,
          state: (o.running ?? true) ? { running: {} } : {},
        },
      ],
    },
  };
}

function facts(o: Partial<AgentFacts> & { state?: PodState; forMs?: number }): AgentFacts {
  return {
    lpn: o.lpn,
    ...(o.state ? { pod: { state: o.state, since: T0 - (o.forMs ?? 0) } } : {}),
    namespace: o.namespace ?? NS,
    now: T0,
    windows: o.windows ?? DEFAULT_LIVENESS_WINDOWS,
  };
}

describe('the default windows', () => {
  test('heartbeat 90 s; a Pod not Ready 15 s, down or gone 60 s: a stopped agent is silent within 90 s', () => {
    expect(DEFAULT_LIVENESS_WINDOWS).toEqual({
      heartbeatMs: 90_000,
      unreadyMs: 15_000,
      downMs: 60_000,
    });
    // The agent's readiness fails 60 s after its kernel loop or the API server stops (agent.ts,
    // server.ts), the kubelet's probe (every 5 s, twice) reports it within 10 s: then the grace.
    expect(60_000 + 10_000 + DEFAULT_LIVENESS_WINDOWS.unreadyMs).toBeLessThanOrEqual(90_000);
    expect(DEFAULT_LIVENESS_WINDOWS.downMs).toBeLessThanOrEqual(90_000);
  });
});

describe('an agent without a Pod: its heartbeat', () => {
  test('alive within 90 s of the heartbeat this controller saw change, silent after', () => {
    expect(agentLiveness(facts({ lpn: lpn({ heartbeat: T0 - 90_000 }) }))).toEqual({
      kind: 'alive',
    });
    expect(agentLiveness(facts({ lpn: lpn({ heartbeat: T0 - 91_000 }) }))).toEqual({
      kind: 'silent',
      why: 'its agent last reported 91s ago',
    });
  });

  test('no LivePatchNode, or one no agent has written, is silent', () => {
    for (const none of [undefined, lpn()])
      expect(agentLiveness(facts({ lpn: none }))).toEqual({
        kind: 'silent',
        why: 'no agent has reported from this node',
      });
  });
});

describe('an agent that names its Pod: the Pod', () => {
  const named = lpn({ pod: POD, heartbeat: T0 - 3_600_000 });

  test('Ready on its node: alive, however old its last write', () => {
    expect(agentLiveness(facts({ lpn: named, state: 'ready', forMs: 3_600_000 }))).toEqual({
      kind: 'alive',
    });
  });

  test('not Ready: alive for 15 s (saying when to look again), then silent', () => {
    expect(agentLiveness(facts({ lpn: named, state: 'unready', forMs: 5_000 }))).toEqual({
      kind: 'alive',
      silentInMs: 10_000,
    });
    expect(agentLiveness(facts({ lpn: named, state: 'unready', forMs: 15_000 }))).toEqual({
      kind: 'silent',
      why: "its agent's Pod livepatch/agent-x7k2p has been not Ready for 15s",
    });
  });

  test('down or gone: alive for 60 s, time for a restart or an update to bring the next one, then silent', () => {
    for (const state of ['down', 'gone'] as const) {
      expect(agentLiveness(facts({ lpn: named, state, forMs: 59_000 }))).toEqual({
        kind: 'alive',
        silentInMs: 1_000,
      });
      expect(agentLiveness(facts({ lpn: named, state, forMs: 60_000 })).kind).toBe('silent');
    }
    expect(agentLiveness(facts({ lpn: named, state: 'gone', forMs: 61_000 }))).toEqual({
      kind: 'silent',
      why: "its agent's Pod livepatch/agent-x7k2p has been gone for 61s",
    });
  });

  test('windows shortened by the flags are used', () => {
    const windows = { ...DEFAULT_LIVENESS_WINDOWS, unreadyMs: 2_000, downMs: 3_000 };
    expect(agentLiveness(facts({ lpn: named, state: 'unready', forMs: 2_000, windows })).kind).toBe(
      'silent',
    );
    expect(agentLiveness(facts({ lpn: named, state: 'down', forMs: 2_000, windows })).kind).toBe(
      'alive',
    );
  });

  test('a Pod in a namespace this controller does not watch is silent, and says which flag to set', () => {
    expect(agentLiveness(facts({ lpn: named, namespace: 'other' }))).toEqual({
      kind: 'silent',
      why: 'its agent runs in Pod livepatch/agent-x7k2p, outside the namespace this controller watches (other); set --agent-namespace',
    });
  });
});

describe("a Pod's state, as its kubelet reports it", () => {
  test.each<[string, PodObject | undefined, PodState]>([
    ['Ready', pod({ ready: true }), 'ready'],
    ['running and started, not Ready: the agent says so', pod({ ready: false }), 'unready'],
    ['its container not running (crashed, restarting)', pod({ running: false }), 'down'],
    ['running, its startup probe not passed yet', pod({ started: false }), 'down'],
    ['being deleted', pod({ deleting: true }), 'down'],
    ['not in the cache', undefined, 'gone'],
    ['made again under the same name (another uid)', pod({ ready: true, uid: 'uid-2' }), 'gone'],
    ['on another node', pod({ ready: true, node: 'n2' }), 'gone'],
  ])('%s', (_why, p, state) => {
    expect(podState(POD, 'n1', p && podEssentials(p))).toBe(state);
  });

  test("the cache keeps only what the rule reads: a kubelet's Pod shrinks to name, uid, node, Ready, running", () => {
    const whole = {
      ...pod({ ready: true }),
      metadata: {
        ...pod({}).metadata,
        resourceVersion: '7',
        managedFields: [{ manager: 'kubelet' }],
      },
    };
    expect(podEssentials(whole)).toEqual({
      metadata: { name: POD.name, namespace: NS, uid: POD.uid, resourceVersion: '7' },
      spec: { nodeName: 'n1' },
      status: {
        conditions: [{ type: 'Ready', status: 'True' }],
        containerStatuses: [{ started: true, state: { running: {} } }],
      },
    });
  });
});

describe('the Pod state clock', () => {
  test('a state counts from when this controller first saw it, and starts over when it changes', () => {
    const clock = new PodStateClock();
    expect(clock.since('n1', 'uid-1', 'unready', T0)).toBe(T0);
    expect(clock.since('n1', 'uid-1', 'unready', T0 + 10_000)).toBe(T0);
    expect(clock.since('n1', 'uid-1', 'ready', T0 + 20_000)).toBe(T0 + 20_000);
    expect(clock.since('n1', 'uid-2', 'ready', T0 + 30_000)).toBe(T0 + 30_000);
  });

  test('nodes no longer there are forgotten', () => {
    const clock = new PodStateClock();
    clock.since('n1', 'uid-1', 'gone', T0);
    clock.keepOnly(new Set(['n2']));
    expect(clock.since('n1', 'uid-1', 'gone', T0 + 5_000)).toBe(T0 + 5_000);
  });
});
