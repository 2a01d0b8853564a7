// One watch of every LivePatchNode for a whole simulated fleet, fanned out to
// its agents: each agent gets a view that holds its own object only, wakes it
// only when that object changes, and records what its own status writes
// stored, as its own watch (fieldSelector metadata.name=NODE) would. A real
// fleet opens one such watch per node; a simulator with thousands of agents in
// one process would spend its memory and CPU on the connections and their
// bookmarks, not on what the agents decide.
import type { OwnNodeCache } from '../../agent/agent.js';
import type { LivePatchNode } from '../../src/api/generated/types.js';
import type { NodeName } from '../../src/api/names.js';
import type { KubeConfig } from '../../src/kube/config.js';
import { Reflector } from '../../src/kube/reflector.js';
import { PATHS } from '../../src/kube/resources.js';
import type { Logger } from '../../src/log.js';

export class SharedNodeWatch {
  private readonly reflector: Reflector<LivePatchNode>;
  /** The agent to wake for each node; one at a time, as one DaemonSet Pod per node. */
  private readonly subscribers = new Map<string, () => void>();

  constructor(kc: KubeConfig, log: Logger) {
    this.reflector = new Reflector<LivePatchNode>(kc, {
      path: PATHS.livePatchNodes,
      log,
      onChange: (name) => {
        this.subscribers.get(name)?.();
      },
    });
  }

  start(): void {
    this.reflector.start();
  }

  stop(): void {
    this.reflector.stop();
  }

  /** The cache one agent on `node` reads: its own LivePatchNode, nothing else. */
  view(node: NodeName, onChange: () => void): OwnNodeCache {
    const shared = this.reflector;
    const subscribers = this.subscribers;
    return {
      get: (name) => (name === node ? shared.get(name) : undefined),
      observe: (lpn) => {
        if (lpn.metadata.name === node) shared.observe(lpn);
      },
      get hasSynced() {
        return shared.hasSynced;
      },
      waitForSync: () => shared.waitForSync(),
      unansweredSince: () => shared.unansweredSince(),
      start: () => {
        subscribers.set(node, onChange);
      },
      stop: () => {
        // A restarted agent may have taken the node over already.
        if (subscribers.get(node) === onChange) subscribers.delete(node);
      },
    };
  }
}
