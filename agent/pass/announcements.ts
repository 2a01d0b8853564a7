// What the agent tells people through Events, for what only a node can find:
// a refused module, a fetch that fails, a stall it reversed. Pure: the
// announcer (report/announcer.ts) writes them and drops repeats.
import type { DesiredPatch, ObservedPatch } from '../../src/api/generated/types.js';
import type { ActionFailure } from './actions.js';
import { fetchMessage, type FetchState } from '../module/fetch-retry.js';
import type { NodeAction } from './node-machine.js';

/** A Warning Event on a LivePatch; `once`: not again while it is the LivePatch's last message. */
export interface Announcement {
  readonly livePatch: string;
  readonly reason: string;
  readonly message: string;
  readonly once: boolean;
}

/** A refusal (once per distinct message, not per retry), and a stall this node reversed (each time). */
export function actionAnnouncements(
  patches: readonly ObservedPatch[],
  action: NodeAction,
  failure: ActionFailure | undefined,
): Announcement[] {
  const livePatch = action.livePatch;
  if (failure)
    return failure.retryable
      ? []
      : [{ livePatch, reason: failure.reason, message: failure.message, once: true }];
  const entry = patches.find((p) => p.livePatch === livePatch);
  if (action.kind !== 'setEnabled' || action.why !== 'stalled' || !entry) return [];
  const message = entry.message ?? 'transition stalled; reversing';
  return [{ livePatch, reason: 'NodeStalled', message, once: false }];
}

/** A fetch's first failed attempt (not one per retry), and a fetch that failed for good. */
export function fetchAnnouncements(entry: DesiredPatch, state: FetchState): Announcement[] {
  const livePatch = entry.livePatch;
  if (state.kind === 'waiting' && state.attempt === 1)
    return [{ livePatch, reason: state.reason, message: fetchMessage(state), once: true }];
  if (state.kind === 'failed')
    return [{ livePatch, reason: state.reason, message: state.message, once: true }];
  return [];
}
