// How a simulated node's kernel behaves, read from the Node's sim.livepatch.io
// annotations when a transition starts, so a test or a demo can aim one node.
import { SIM_ANNOTATIONS } from '../../../src/api/constants.js';
import { parseTaint } from '../../../src/api/taint.js';
import type { Errno } from '../types.js';

export interface SimKnobs {
  /** Tasks on the node. */
  readonly tasks: number;
  /** Tasks that switch only after the kernel's fake signal (15 s into a transition). */
  readonly signalTasks: number;
  /** Tasks that never switch (a vCPU thread in guest mode, an uninterruptible kthread). */
  readonly stuckTasks: number;
  /** Typical time for the ordinary tasks to switch. */
  readonly transitionSeconds: number;
  /** Refuse every module load with this errno. */
  readonly loadError?: Errno;
  /** Taint flags (bits of /proc/sys/kernel/tainted) a module load adds: a module that taints the node. */
  readonly loadTaint?: number;
  /** A module load never returns (insmod stuck in the kernel): the agent's kernel loop stops there. */
  readonly loadHang?: boolean;
}

export const DEFAULT_SIM_KNOBS: SimKnobs = {
  tasks: 40,
  signalTasks: 0,
  stuckTasks: 0,
  transitionSeconds: 2,
};

const LOAD_ERRORS: readonly Errno[] = ['ENOEXEC', 'EBUSY', 'EINVAL', 'ENOENT', 'EPERM', 'EIO'];

export interface ParsedKnobs {
  readonly knobs: SimKnobs;
  /** Annotations that could not be used, each saying why; the defaults stand in for them. */
  readonly problems: readonly string[];
}

function count(
  value: string | undefined,
  key: string,
  fallback: number,
  problems: string[],
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 100_000) {
    problems.push(
      `${key}=${JSON.stringify(value)} is not a number from 0 to 100000; using ${fallback}`,
    );
    return fallback;
  }
  return n;
}

function taintKnob(value: string | undefined, problems: string[]): number | undefined {
  if (value === undefined) return undefined;
  const bits = parseTaint(value);
  if (bits === undefined)
    problems.push(
      `${SIM_ANNOTATIONS.loadTaint}=${JSON.stringify(value)} is not taint letters like "W" or "D,W"`,
    );
  return bits;
}

export function knobsFromAnnotations(
  annotations: Readonly<Record<string, string>> | undefined,
): ParsedKnobs {
  const a = annotations ?? {};
  const problems: string[] = [];
  const d = DEFAULT_SIM_KNOBS;
  const loadTaint = taintKnob(a[SIM_ANNOTATIONS.loadTaint], problems);
  const knobs = {
    ...(loadTaint ? { loadTaint } : {}),
    ...(a[SIM_ANNOTATIONS.loadHang] === 'true' ? { loadHang: true } : {}),
    tasks: Math.round(count(a[SIM_ANNOTATIONS.tasks], SIM_ANNOTATIONS.tasks, d.tasks, problems)),
    signalTasks: Math.round(
      count(a[SIM_ANNOTATIONS.signalTasks], SIM_ANNOTATIONS.signalTasks, d.signalTasks, problems),
    ),
    stuckTasks: Math.round(
      count(a[SIM_ANNOTATIONS.stuckTasks], SIM_ANNOTATIONS.stuckTasks, d.stuckTasks, problems),
    ),
    transitionSeconds: count(
      a[SIM_ANNOTATIONS.transitionSeconds],
      SIM_ANNOTATIONS.transitionSeconds,
      d.transitionSeconds,
      problems,
    ),
  };
  const loadError = a[SIM_ANNOTATIONS.loadError];
  if (loadError === undefined || loadError === '') return { knobs, problems };
  if (!LOAD_ERRORS.includes(loadError as Errno)) {
    problems.push(
      `${SIM_ANNOTATIONS.loadError}=${JSON.stringify(loadError)} is not one of ${LOAD_ERRORS.join(', ')}`,
    );
    return { knobs, problems };
  }
  return { knobs: { ...knobs, loadError: loadError as Errno }, problems };
}
