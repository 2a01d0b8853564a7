// When the agent writes its node's status: pure, the clock passed in. A
// phase-level change at once; progress alone (task counts, messages, a patch
// Loading) once it has held for a second, and at most every 10 s; nothing
// new, a heartbeat. The second matters: a module fetch usually ends within
// it, and writing its Loading would cost every node one more write per rollout.

/** Progress alone (task counts, messages) is written at most this often. */
export const PROGRESS_WRITE_MS = 10_000;
/** ... and only once it has held this long: a Loading that turns Transitioning within it is never written. */
export const PROGRESS_SETTLE_MS = 1_000;

/** The last status that reached the API server. */
export interface WrittenStatus {
  readonly json: string;
  /** Its phase-level part (pass/reporting.ts statusKey). */
  readonly key: string;
  readonly at: number;
}

export interface StatusWriteInputs {
  readonly written: WrittenStatus | undefined;
  /** The latest status, whole and phase-level. */
  readonly json: string;
  readonly key: string;
  /** Since when the latest status has differed from the written one, if it has. */
  readonly differsSince: number | undefined;
  readonly heartbeatMs: number;
  readonly now: number;
}

export type AgentStatusWrite =
  | { readonly kind: 'now' }
  | { readonly kind: 'none' }
  /** Progress that will have held long enough in `inMs`: look again then, passes may stop coming. */
  | { readonly kind: 'later'; readonly inMs: number };

/** Whether to write the latest status, and since when it has differed from the written one. */
export function agentStatusWrite(i: StatusWriteInputs): {
  write: AgentStatusWrite;
  differsSince: number | undefined;
} {
  const { written, now } = i;
  const age = written ? now - written.at : Infinity;
  const differs = written?.json !== i.json;
  const differsSince = differs ? (i.differsSince ?? now) : undefined;
  const result = (
    write: AgentStatusWrite,
  ): { write: AgentStatusWrite; differsSince: number | undefined } => ({
    write,
    differsSince,
  });
  if (age >= i.heartbeatMs || written?.key !== i.key) return result({ kind: 'now' });
  if (!differs) return result({ kind: 'none' });
  const held = now - (differsSince ?? now);
  if (age >= PROGRESS_WRITE_MS && held >= PROGRESS_SETTLE_MS) return result({ kind: 'now' });
  return result({
    kind: 'later',
    inMs: Math.max(PROGRESS_WRITE_MS - age, PROGRESS_SETTLE_MS - held),
  });
}
