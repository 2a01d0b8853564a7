// What the agent tells people through Events, for what only a node can find:
// a refused module, a fetch that fails, a stall it reversed. Pure: the
// announcer (report/announcer.ts) writes them and drops repeats.
import type { DesiredPatch, ObservedPatch } from '../../src/api/generated/types.js';
import type { ActionFailure } from './actions.js';
import { fetchMessage, type FetchState } from '../module/fetch-retry.js';
import { REBOOTED, type NodeAction } from './node-machine.js';

/** An Event on a LivePatch (Warning unless said); `once`: not again while it is the LivePatch's last message. */
export interface Announcement {
  readonly livePatch: string;
  readonly reason: string;
  readonly message: string;
  readonly once: boolean;
  readonly type?: 'Normal' | 'Warning';
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

const afterReboot = (p: ObservedPatch | undefined): boolean => !!p?.message?.startsWith(REBOOTED);

/**
 * A node that came back from a reboot without its patch: once when it starts
 * loading it again (NodeRebooted), once when it is Patched again (NodeRepatched).
 */
export function rebootAnnouncements(
  before: readonly ObservedPatch[],
  after: readonly ObservedPatch[],
): Announcement[] {
  return after.flatMap((p): Announcement[] => {
    if (!afterReboot(p)) return [];
    const was = before.find((b) => b.livePatch === p.livePatch && b.patchName === p.patchName);
    const livePatch = p.livePatch;
    if (p.phase === 'Patched' && !(was?.phase === 'Patched' && afterReboot(was)))
      return [
        {
          livePatch,
          reason: 'NodeRepatched',
          type: 'Normal',
          message: `${REBOOTED} and is patched again`,
          once: false,
        },
      ];
    if (p.phase !== 'Patched' && !afterReboot(was))
      return [
        {
          livePatch,
          reason: 'NodeRebooted',
          message: `${REBOOTED}; it is patched again in its turn, within maxUnavailable`,
          once: false,
        },
      ];
    return [];
  });
}
