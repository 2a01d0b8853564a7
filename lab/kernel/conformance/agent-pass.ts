// The agent's own decisions and actions (agent/pass) on a lab's kernel: one
// pass as the agent's loop runs it (pass-runner.ts), without the API server
// and the module fetches around it, so a scenario shows what the agent makes
// of what a real kernel (or the simulator) answers.
import type { DesiredPatch } from '../../../src/api/generated/types.js';
import { patchName, type LivePatchName } from '../../../src/api/names.js';
import { createLogger } from '../../../src/log.js';
import type { FetchState } from '../../../agent/module/fetch-retry.js';
import { runAction, type ActionFailure } from '../../../agent/pass/actions.js';
import { FAILURE_REST_MS } from '../../../agent/pass/cooldowns.js';
import { readKernel } from '../../../agent/pass/kernel-view.js';
import type { NodeAction, NodeDecision } from '../../../agent/pass/node-machine.js';
import {
  afterAction,
  beginPass,
  busyExplained,
  decide,
  type PassMemory,
} from '../../../agent/pass/pass.js';
import type { KernelBackend } from '../../../agent/kernel/types.js';
import type { Lab, TestModule } from './lab.js';

const log = createLogger({ component: 'conformance-agent', format: 'text', level: 'error' });

/** A LivePatch's entry for a test module, generation 1, its module file already fetched. */
export function desiredEntry(
  name: TestModule,
  state: DesiredPatch['state'],
  extra: Partial<Pick<DesiredPatch, 'stallTimeout' | 'allowForce'>> = {},
): DesiredPatch {
  return {
    // A DNS-1123 name, as the API server keeps LivePatch names.
    livePatch: name.toLowerCase().replaceAll('_', '-') as LivePatchName,
    patchName: patchName(name),
    state,
    module: { hostPath: `/lab/${name}.ko`, sha256: '0'.repeat(64) },
    generation: 1,
    stallTimeout: extra.stallTimeout ?? '60s',
    allowForce: extra.allowForce ?? false,
  };
}

export interface AgentPass {
  readonly decision: NodeDecision;
  /** The action the pass took, if it chose one. */
  readonly action?: NodeAction;
  readonly failure?: ActionFailure;
  readonly memory: PassMemory;
}

/**
 * One pass at agent time `now`: read the kernel, decide, take at most one
 * action, and remember the outcome as the agent does. Every entry's module
 * is the lab's build of it (a fetch that succeeded).
 */
export async function agentPass(
  lab: Lab,
  desired: readonly DesiredPatch[],
  carried: PassMemory,
  now: number,
  backend: KernelBackend = lab.backend,
): Promise<AgentPass> {
  const fetches = new Map<string, FetchState>(
    desired.map((d) => [
      d.livePatch,
      { kind: 'ready', path: lab.module(d.patchName as TestModule) },
    ]),
  );
  const view = await readKernel(backend, lab.profile, desired, log);
  const memory = busyExplained(beginPass(carried, now), view);
  const decision = decide(desired, view, memory, { fetches }, now);
  const action = decision.action;
  if (!action) return { decision, memory };
  const failure = await runAction(action, {
    backend,
    release: lab.profile.release,
    startFetch: () => {
      throw new Error('the lab hands the agent its modules: nothing is fetched');
    },
    unloadTimeoutMs: 10_000,
    log,
  });
  const after = afterAction(memory, decision, {
    action,
    failure,
    now,
    failureRestMs: FAILURE_REST_MS,
  });
  return { decision, action, memory: after.memory, ...(failure ? { failure } : {}) };
}
