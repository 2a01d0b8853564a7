// Sends the due notifications of a LivePatch in the background, so a slow or
// silent receiver never holds the reconcile worker, and keeps how each try
// went until a pass has folded it into status.notifications (the outbox). A
// finished try wakes its LivePatch. One process, one leader: the outbox in
// the API server is what a successor starts from; what is here is lost with
// this process, and only ever a try's outcome not yet recorded.
import type { PendingNotification } from '../api/generated/types.js';
import { tryKey, type DeliveryOutcome } from './notification-outbox.js';

export interface Deliverer {
  deliver(livePatch: string, n: PendingNotification): Promise<DeliveryOutcome>;
}

export class Notifier {
  /** Per LivePatch: the tries in flight and the outcomes not yet folded, by tryKey. */
  private readonly tries = new Map<string, Map<string, DeliveryOutcome | 'inFlight'>>();

  constructor(
    private readonly deliverer: Deliverer,
    private readonly wake: (livePatch: string) => void,
  ) {}

  /** The finished tries of this LivePatch, for the pass to fold in. */
  outcomes(livePatch: string): ReadonlyMap<string, DeliveryOutcome> {
    const finished = new Map<string, DeliveryOutcome>();
    for (const [key, t] of this.tries.get(livePatch) ?? [])
      if (t !== 'inFlight') finished.set(key, t);
    return finished;
  }

  /**
   * After the pass has written the outbox: forgets every finished try the
   * stored pending list no longer matches (folded in, or of an entry gone), and
   * starts the due ones not yet tried in their current state.
   */
  settle(
    livePatch: string,
    stored: readonly PendingNotification[],
    due: readonly PendingNotification[],
  ): void {
    const mine = this.tries.get(livePatch) ?? new Map<string, DeliveryOutcome | 'inFlight'>();
    const current = new Set(stored.map(tryKey));
    for (const [key, t] of mine) if (t !== 'inFlight' && !current.has(key)) mine.delete(key);
    for (const n of due) {
      const key = tryKey(n);
      if (mine.has(key)) continue;
      mine.set(key, 'inFlight');
      void this.deliverer.deliver(livePatch, n).then((outcome) => {
        mine.set(key, outcome);
        this.wake(livePatch);
      });
    }
    if (mine.size) this.tries.set(livePatch, mine);
    else this.tries.delete(livePatch);
  }

  /** The LivePatch is gone: its outbox went with it. */
  forget(livePatch: string): void {
    this.tries.delete(livePatch);
  }
}
