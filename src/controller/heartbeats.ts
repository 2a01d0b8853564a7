// Agents' heartbeats on the controller's own clock. An agent writes
// heartbeatTime from its node's clock; comparing that with the controller's
// clock would call a node with a skewed clock dead (or a dead one alive). So
// the controller notes when it saw each heartbeat change, like client-go's
// leader election does for a Lease, and judges staleness by that.
import type { LivePatchNode } from '../api/generated/types.js';

export class HeartbeatClock {
  private readonly seen = new Map<string, { value: string; at: number }>();
  /** The copy made for a cached object, reused while neither it nor its seen time changes: no garbage per pass. */
  private readonly copies = new WeakMap<LivePatchNode, { at: number; copy: LivePatchNode }>();

  /** The LivePatchNodes by name, each heartbeatTime replaced by when this controller saw it change. */
  observe(lpns: readonly LivePatchNode[], now: number): Map<string, LivePatchNode> {
    const out = new Map<string, LivePatchNode>();
    for (const lpn of lpns) {
      const name = lpn.metadata.name ?? '';
      const status = lpn.status;
      const value = status?.heartbeatTime;
      if (!status || !value) {
        out.set(name, lpn);
        continue;
      }
      const known = this.seen.get(name);
      const at = known?.value === value ? known.at : now;
      if (known?.value !== value) this.seen.set(name, { value, at });
      const cached = this.copies.get(lpn);
      if (cached?.at === at) {
        out.set(name, cached.copy);
        continue;
      }
      const copy = { ...lpn, status: { ...status, heartbeatTime: new Date(at).toISOString() } };
      this.copies.set(lpn, { at, copy });
      out.set(name, copy);
    }
    return out;
  }
}
