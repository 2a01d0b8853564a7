// One read of the kernel, shaped for the node state machine.
import type { DesiredPatch } from '../../src/api/generated/types.js';
import type { PatchName } from '../../src/api/names.js';
import type { KernelView } from './node-machine.js';
import type { KernelProfile } from '../kernel/profile.js';
import type { KernelBackend } from '../kernel/types.js';
import type { Logger } from '../../src/log.js';

/** The blocking tasks listed per patch in status (docs/api.md: at most 10). */
export const BLOCKING_TASKS_LISTED = 10;

export async function readKernel(
  backend: KernelBackend,
  profile: KernelProfile,
  desired: readonly DesiredPatch[],
  log: Logger,
): Promise<KernelView> {
  const patches = await backend.patches();
  const loaded = new Set<PatchName>();
  for (const d of desired) if (await backend.isLoaded(d.patchName)) loaded.add(d.patchName);
  const inFlight = patches.find((p) => p.transition)?.name;
  // Only a managed patch's tasks are listed; any patch in flight blocks loads all the same.
  const entry = desired.find((d) => d.patchName === inFlight);
  if (!entry) return { profile, patches, loaded };
  const managed = entry.patchName;
  try {
    const tasks = await backend.transitionTasks(managed, BLOCKING_TASKS_LISTED);
    return { profile, patches, loaded, tasks: { ...tasks, name: managed } };
  } catch (err) {
    // The stall guard needs only the time, not the task list: never let /proc stop it.
    log.warn('cannot list the tasks blocking the transition', {
      livePatch: entry.livePatch,
      patchName: managed,
      error: (err as Error).message,
    });
    return { profile, patches, loaded };
  }
}
