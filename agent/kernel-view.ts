// One read of the kernel, shaped for the node state machine.
import type { DesiredPatch } from '../src/api/generated/types.js';
import type { PatchName } from '../src/api/names.js';
import type { KernelView } from './node-machine.js';
import type { KernelBackend } from './kernel/types.js';

/** The blocking tasks listed per patch in status (API.md: at most 10). */
export const BLOCKING_TASKS_LISTED = 10;

export async function readKernel(
  backend: KernelBackend,
  desired: readonly DesiredPatch[],
): Promise<KernelView> {
  const patches = await backend.patches();
  const loaded = new Set<PatchName>();
  for (const entry of desired)
    if (await backend.isLoaded(entry.patchName)) loaded.add(entry.patchName);
  const inFlight = patches.find((p) => p.transition);
  if (!inFlight) return { patches, loaded };
  const tasks = await backend.transitionTasks(inFlight.name, BLOCKING_TASKS_LISTED);
  return { patches, loaded, tasks: { ...tasks, name: inFlight.name } };
}
