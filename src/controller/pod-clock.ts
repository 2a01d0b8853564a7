// Agent Pods' states on the controller's own clock: since when this
// controller has seen each node's agent Pod in its present state (Ready, not
// Ready, down, gone). Like heartbeats.ts, it never compares a kubelet's
// timestamps with the controller's clock: a node with a skewed clock must not
// read as dead, nor a dead one as alive. A state first seen by this replica
// (just started, or just leading) counts from then.
import type { PodState } from './liveness.js';

export class PodStateClock {
  private readonly seen = new Map<string, { key: string; at: number }>();

  /** Since when `node`'s agent Pod `uid` has been in `state`, `now` if this is news. */
  since(node: string, uid: string, state: PodState, now: number): number {
    const key = `${uid}/${state}`;
    const known = this.seen.get(node);
    if (known?.key === key) return known.at;
    this.seen.set(node, { key, at: now });
    return now;
  }

  /** Forgets nodes no longer there, so a churning fleet does not grow it. */
  keepOnly(nodes: ReadonlySet<string>): void {
    for (const node of this.seen.keys()) if (!nodes.has(node)) this.seen.delete(node);
  }
}
