// Writes the agent's announcements as Events on their LivePatch, in
// the background (an API server that does not answer must not hold the node
// guard), and drops one that repeats the LivePatch's last message.
import { API_VERSION, LIVEPATCH } from '../../src/api/constants.js';
import type { NodeName } from '../../src/api/names.js';
import type { EventRecorder } from '../../src/kube/events.js';
import type { Announcement } from '../pass/announcements.js';

export class Announcer {
  /** The last deduplicated message per LivePatch. */
  private readonly last = new Map<string, string>();
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly events: Pick<EventRecorder, 'record'>,
    private readonly nodeName: NodeName,
  ) {}

  announce(announcements: readonly Announcement[]): void {
    for (const a of announcements) {
      if (a.once && this.last.get(a.livePatch) === a.message) continue;
      if (a.once) this.last.set(a.livePatch, a.message);
      const target = { apiVersion: API_VERSION, kind: LIVEPATCH.kind, name: a.livePatch };
      const write = this.events.record(target, {
        type: a.type ?? 'Warning',
        reason: a.reason,
        message: `node ${this.nodeName}: ${a.message}`,
      });
      this.pending.add(write);
      void write.finally(() => this.pending.delete(write));
    }
  }

  /** Waits for the Events still being written. */
  async drain(): Promise<void> {
    await Promise.all(this.pending);
  }
}
