// The simulated kernel's tasks during a transition: who has switched, who
// blocks, and the kernel's rules for when a task may switch (docs/kernel.md,
// "Consistency model"). A task switches when none of the functions being changed
// is on its stack: ordinary tasks after a while, signal-only tasks after the
// fake signal, stuck tasks never, and a module's kthread sleeping inside a
// patched function for as long as it sleeps there (uninterruptibly) or until
// the fake signal wakes it out of the function (interruptibly).
import type { BlockingTask } from '../../../src/api/generated/types.js';
import type { SimKnobs } from './sim-knobs.js';
import type { KthreadSleep } from './sim-module.js';

/** The kernel retries switching tasks about once a second ... */
export const TICK_MS = 1000;
/** ... and signals the remaining ones every 15 s of retries. */
export const SIGNAL_EVERY_MS = 15_000;
const FIRST_PID = 1000;
const COMMS = ['systemd', 'kubelet', 'containerd', 'nginx', 'postgres', 'java', 'python3', 'sshd'];

/** patch_state of a task: 0 unpatched, 1 patched. */
export type TaskState = 0 | 1;

/** `object:function`, as a patch names what it changes. */
export type FunctionKey = string;

export const functionKey = (object: string, fn: string): FunctionKey => `${object}:${fn}`;

/**
 * A kthread of a loaded (non-livepatch) module that sleeps inside one of its
 * own functions while `held`. It sleeps in the code that was current when it
 * went to sleep: the original (`undefined`) or a patch's new function.
 */
export interface Sleeper {
  readonly pid: number;
  readonly comm: string;
  readonly module: string;
  readonly fn: FunctionKey;
  /** Absent: 'idle'. */
  readonly sleep?: KthreadSleep;
  held: boolean;
  /** The patch whose code it sleeps in; undefined for the module's own code. */
  code: string | undefined;
}

type TaskKind = 'normal' | 'signal' | 'stuck' | 'sleeper';

export interface SimTask {
  readonly pid: number;
  readonly comm: string;
  readonly kind: TaskKind;
  state: TaskState;
  /** When it can switch: after its spread time (normal), after a signal (signal), never (stuck). */
  readyAt: number;
  readonly sleeper?: Sleeper;
  /** An interruptible sleeper the fake signal woke: off its function at the next try. */
  woken?: boolean;
}

/** What a transition changes, for the stack check of sleepers. */
export interface TransitionScope {
  readonly patch: string;
  readonly functions: ReadonlySet<FunctionKey>;
  target: TaskState;
  /** For each changed function, the code a task runs there before this patch (patching direction). */
  readonly codeBelow: ReadonlyMap<FunctionKey, string | undefined>;
}

export function buildTasks(
  knobs: SimKnobs,
  start: number,
  initial: TaskState,
  sleepers: readonly Sleeper[],
): SimTask[] {
  const tasks: SimTask[] = [];
  const normal = Math.max(0, knobs.tasks - knobs.signalTasks - knobs.stuckTasks);
  const spread = knobs.transitionSeconds * 1000;
  const add = (kind: TaskKind, comm: string, readyAt: number): void => {
    tasks.push({ pid: FIRST_PID + tasks.length, comm, kind, state: initial, readyAt });
  };
  for (let i = 0; i < normal; i++)
    add(
      'normal',
      COMMS[i % COMMS.length] ?? 'task',
      start + Math.round((spread * (i + 1)) / normal),
    );
  for (let i = 0; i < knobs.signalTasks; i++) add('signal', 'sleep', Infinity);
  for (let i = 0; i < knobs.stuckTasks; i++)
    add('stuck', i % 2 ? 'kworker/u8:2+events' : 'qemu-kvm', Infinity);
  for (const s of sleepers)
    tasks.push({
      pid: s.pid,
      comm: s.comm,
      kind: 'sleeper',
      state: initial,
      readyAt: start,
      sleeper: s,
    });
  return tasks;
}

/**
 * klp_check_stack for a sleeping kthread: patching checks the code below the
 * patch (what the task may be running now), unpatching checks the patch's own
 * new code.
 */
export function sleeperBlocks(s: Sleeper, scope: TransitionScope): boolean {
  if (!s.held || !scope.functions.has(s.fn)) return false;
  const checked = scope.target === 1 ? scope.codeBelow.get(s.fn) : scope.patch;
  return s.code === checked;
}

/** On reversal, tasks that had switched must go back, spread over the same time as before. */
export function reverseTasks(
  tasks: readonly SimTask[],
  oldTarget: TaskState,
  now: number,
  spreadMs: number,
): void {
  const goingBack = tasks.filter((task) => task.state === oldTarget);
  goingBack.forEach((task, i) => {
    if (task.kind === 'normal')
      task.readyAt = now + Math.round((spreadMs * (i + 1)) / goingBack.length);
    else if (task.kind === 'sleeper') task.readyAt = now;
    else task.readyAt = Infinity;
  });
  for (const task of tasks) task.woken = false;
}

/** The code the kthread runs in its function once switched to the transition's target. */
function codeAfterSwitch(s: Sleeper, scope: TransitionScope): string | undefined {
  return scope.target === 1 ? scope.patch : scope.codeBelow.get(s.fn);
}

/** Whether a kthread that has not switched yet blocks this try. */
function sleeperStillBlocks(task: SimTask, scope: TransitionScope): boolean {
  if (!task.sleeper || !sleeperBlocks(task.sleeper, scope)) return false;
  if (!task.woken) return true;
  // Woken by the signal, it stepped out of the function and is switched; it goes back into the new code.
  task.sleeper.code = codeAfterSwitch(task.sleeper, scope);
  return false;
}

/** One klp_try_complete_transition at time `now`; true when every task has switched. */
export function tryComplete(
  tasks: readonly SimTask[],
  scope: TransitionScope,
  now: number,
  phaseStart: number,
): boolean {
  let blocking = 0;
  for (const task of tasks) {
    if (task.state === scope.target) continue;
    const blocked = task.sleeper ? sleeperStillBlocks(task, scope) : task.readyAt > now;
    if (blocked) blocking++;
    else task.state = scope.target;
  }
  if (blocking === 0) return true;
  const elapsed = now - phaseStart;
  if (elapsed > 0 && elapsed % SIGNAL_EVERY_MS === 0) {
    // The fake signal: signal-only tasks switch on their way back to user space, at the next try;
    // kthreads asleep interruptibly are woken (wake_up_state) and leave their function. Kthreads in
    // uninterruptible sleep (stuck tasks, idle sleepers) are not woken by it.
    for (const task of tasks) {
      if (task.state === scope.target) continue;
      if (task.kind === 'signal') task.readyAt = now;
      if (task.sleeper?.sleep === 'interruptible' && task.sleeper.held) task.woken = true;
    }
  }
  return false;
}

export function blockingTasks(
  tasks: readonly SimTask[],
  target: TaskState,
  limit: number,
): { pending: number; blocking: BlockingTask[] } {
  const pending = tasks.filter((task) => task.state !== target);
  return {
    pending: pending.length,
    blocking: pending.slice(0, limit).map(({ pid, comm }) => ({ pid, comm })),
  };
}
