// How a rollout's progress reads on one line (the demo, `kubectl livepatch
// status -w` off a terminal) and as a bar (on a terminal).
import type { LivePatch } from '../api/generated/types.js';
import { describeTasks } from '../api/tasks.js';

/** "12:04:31  cve-2024-1086  Progressing  patched 37/40  in flight 2  …", with the stalled nodes and what blocks them. */
export function progressLine(lp: LivePatch, now = new Date()): string {
  const s = lp.status;
  const n = s?.nodes;
  const stalled = (s?.stalledNodes ?? [])
    .map((x) => `${x.node} (${describeTasks(x.blockingTasks ?? [])})`)
    .join(', ');
  return [
    now.toISOString().slice(11, 19),
    (lp.metadata.name ?? '').padEnd(14),
    (s?.phase ?? 'Pending').padEnd(12),
    `patched ${s?.summary ?? '0/0'}`.padEnd(14),
    `in flight ${n?.transitioning ?? 0}`.padEnd(12),
    `not applicable ${n?.notApplicable ?? 0}`,
    stalled ? `  stalled: ${stalled}` : '',
  ].join('  ');
}

/** "[########------------] 12/30 patched, 2 in flight, 1 stalled, 0 failed" */
export function progressBar(lp: LivePatch, width = 30): string {
  const n = lp.status?.nodes;
  const targeted = n?.targeted ?? 0;
  const patched = n?.patched ?? 0;
  const done = targeted === 0 ? 0 : Math.round((patched / targeted) * width);
  const bar = `${'#'.repeat(done)}${'-'.repeat(width - done)}`;
  return `[${bar}] ${patched}/${targeted} patched, ${n?.transitioning ?? 0} in flight, ${n?.stalled ?? 0} stalled, ${n?.failed ?? 0} failed`;
}
