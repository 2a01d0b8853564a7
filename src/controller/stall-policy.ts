// stall.action, once the stalled and failed nodes exceed failureBudget:
// Rollback unpatches every node, Halt starts no new node, Ignore goes on. Pure.
import { refreshEntries } from './desired-entries.js';
import { countProgress, planBase, type Plan, type PlanContext, type StepState } from './plan.js';
import { unpatchNodes } from './unpatch-nodes.js';

/** Stalled and failed targets, and nodes that went away while baking. */
const failures = (ctx: PlanContext): number =>
  countProgress(ctx.targets, 'stalled', 'failed') +
  ctx.slots.filter((s) => s.kind === 'unknown' && s.unhealthy).length;

/** The plan stall.action makes, or undefined while within the budget (or under Ignore). */
export function stallPolicy(ctx: PlanContext, step: StepState): Plan | undefined {
  const failed = failures(ctx);
  const budget = ctx.lp.spec.failureBudget;
  if (failed <= budget) return undefined;
  const what = `${failed} node(s) stalled or failed, over the failure budget of ${budget}`;
  switch (ctx.lp.spec.stall.action) {
    case 'Rollback':
      return unpatchNodes(ctx, { kind: 'rollback' });
    case 'Halt': {
      const b = planBase(ctx, step);
      refreshEntries(ctx, b.writes);
      return {
        ...b,
        phase: 'Failed',
        reason: 'Halted',
        message: `${what}; stall.action Halt: no new node starts. Find what blocks the stalled nodes, then kubectl livepatch retry ${ctx.lp.metadata.name ?? ''} (or edit the LivePatch)`,
      };
    }
    case 'Ignore':
      return undefined;
  }
}
