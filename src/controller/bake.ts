// The health gate of one node's bake, as a pure function. A node that has
// reached Patched stays in flight until its agent reports that it stayed
// Patched for bakeTime (taintAfterBake on its entry). While it bakes it fails
// if its Node turns NotReady, its agent stops reporting, a firing alert of the
// alert gate names it (alert-gate.ts), or its kernel gains a damage taint flag
// that it did not have before the load. Failures the API
// cannot show again later (a node that came back) are kept in
// LivePatch.status.unhealthyNodes; a taint never clears until reboot, so the
// node's own report proves that one on every pass.
import type {
  LivePatch,
  LivePatchNode,
  ObservedPatch,
  UnhealthyNode,
} from '../api/generated/types.js';
import { newDamage, taintLetters } from '../api/taint.js';
import type { NodeFacts } from './node-facts.js';

export type Bake =
  | { readonly kind: 'baking' }
  | { readonly kind: 'baked' }
  | { readonly kind: 'unhealthy'; readonly record: UnhealthyNode };

export interface BakeFacts {
  readonly lp: LivePatch;
  readonly node: NodeFacts;
  readonly lpn: LivePatchNode | undefined;
  readonly observed: ObservedPatch | undefined;
  /** Why the controller cannot hear the node's agent, if it cannot. */
  readonly agentProblem: string | undefined;
  /** Firing alerts of the alert gate that name this node, by alertname. */
  readonly alerts: readonly string[] | undefined;
  readonly now: number;
}

const RETRY = 'edit the LivePatch to retry it';

function recorded(f: BakeFacts): UnhealthyNode | undefined {
  const generation = f.lp.metadata.generation ?? 1;
  return f.lp.status?.unhealthyNodes?.find(
    (u) => u.node === f.node.name && u.generation === generation,
  );
}

function record(f: BakeFacts, reason: UnhealthyNode['reason'], message: string): Bake {
  const before = f.observed?.taintBeforeLoad;
  const after = f.lpn?.status?.kernelTainted;
  return {
    kind: 'unhealthy',
    record: {
      node: f.node.name,
      reason,
      message,
      since: new Date(f.now).toISOString(),
      generation: f.lp.metadata.generation ?? 1,
      ...(before !== undefined ? { taintBefore: taintLetters(before) } : {}),
      ...(after !== undefined ? { taintAfter: taintLetters(after) } : {}),
    },
  };
}

function tainted(f: BakeFacts, after: number | undefined): Bake | undefined {
  const before = f.observed?.taintBeforeLoad;
  if (before === undefined || after === undefined) return undefined;
  const damage = newDamage(before, after);
  if (!damage) return undefined;
  return record(
    f,
    'KernelTainted',
    `node ${f.node.name}: the kernel gained taint ${taintLetters(damage)} after the patch loaded ` +
      `(before "${taintLetters(before)}", after "${taintLetters(after)}"); read the node's kernel log ` +
      `(dmesg) for the warning or oops, then ${RETRY}`,
  );
}

/** The bake of a node whose entry reports Patched; undefined for any other node. */
export function judgeBake(f: BakeFacts): Bake | undefined {
  if (f.observed?.phase !== 'Patched') return undefined;
  const kept = recorded(f);
  if (kept) return { kind: 'unhealthy', record: kept };
  const afterBake = f.observed.taintAfterBake;
  if (afterBake !== undefined) return tainted(f, afterBake) ?? { kind: 'baked' };
  if (!f.node.ready)
    return record(
      f,
      'NodeNotReady',
      `node ${f.node.name} turned NotReady while baking the patch; check the node (kernel log, kubelet), then ${RETRY}`,
    );
  if (f.agentProblem)
    return record(
      f,
      'AgentSilent',
      `node ${f.node.name} stopped reporting while baking the patch (${f.agentProblem}); check the node and its agent, then ${RETRY}`,
    );
  if (f.alerts?.length)
    return record(
      f,
      'AlertFiring',
      `alert ${f.alerts.join(', ')} fired for node ${f.node.name} while it baked the patch; see what the alert says, then ${RETRY}`,
    );
  return tainted(f, f.lpn?.status?.kernelTainted) ?? { kind: 'baking' };
}
