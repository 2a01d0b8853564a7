// The kernel's livepatch interface in memory, rule for rule from
// design/KERNEL.md: one transition at a time, per-task switching on a 1 s
// retry tick, the 15 s signal rule, reversal, atomic replace, refcnt, force,
// and the EBUSY / EINVAL / ENOEXEC / EEXIST answers. Time comes from an
// injected clock and is advanced lazily on every call, so a test can run a
// minute of kernel time in a millisecond and an agent on kind runs it live.
import { readFile } from 'node:fs/promises';
import type { BlockingTask } from '../../src/api/generated/types.js';
import type { KernelRelease, PatchName } from '../../src/api/names.js';
import type { Clock } from '../../src/clock.js';
import { parseSimModule, vermagicRelease, type SimModule } from './sim-module.js';
import { DEFAULT_SIM_KNOBS, type SimKnobs } from './sim-knobs.js';
import {
  KernelError,
  retryOnBusy,
  TAINT_LIVEPATCH,
  type KernelBackend,
  type KernelPatch,
  type TransitionTasks,
} from './types.js';

/** The kernel retries switching tasks about once a second ... */
const TICK_MS = 1000;
/** ... and signals the remaining ones every 15 s of retries. */
const SIGNAL_EVERY_MS = 15_000;
const FIRST_PID = 1000;
const COMMS = ['systemd', 'kubelet', 'containerd', 'nginx', 'postgres', 'java', 'python3', 'sshd'];

type TaskKind = 'normal' | 'signal' | 'stuck';
/** patch_state of a task: 0 unpatched, 1 patched. */
type TaskState = 0 | 1;

interface SimTask {
  readonly pid: number;
  readonly comm: string;
  readonly kind: TaskKind;
  state: TaskState;
  /** When it can switch: after its spread time (normal), after a signal (signal), never (stuck). */
  readyAt: number;
}

interface SimPatch {
  readonly module: SimModule;
  enabled: boolean;
}

interface Transition {
  readonly patch: SimPatch;
  target: TaskState;
  phaseStart: number;
  lastTick: number;
  readonly spreadMs: number;
  readonly tasks: SimTask[];
}

interface LoadedModule {
  refcnt: number;
  forced: boolean;
}

export interface SimulatorOptions {
  readonly release: KernelRelease;
  readonly clock: Clock;
  /** Read when a transition starts (the agent reads the Node's annotations). */
  readonly knobs?: () => SimKnobs | Promise<SimKnobs>;
  readonly tainted?: number;
}

function buildTasks(knobs: SimKnobs, start: number, initial: TaskState): SimTask[] {
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
  return tasks;
}

export class SimulatedKernel implements KernelBackend {
  readonly kind = 'simulator' as const;
  /** In load order, which is stack order. */
  private readonly loaded: SimPatch[] = [];
  private readonly modules = new Map<PatchName, LoadedModule>();
  private transition: Transition | undefined;
  private taint: number;

  constructor(private readonly options: SimulatorOptions) {
    this.taint = options.tainted ?? 0;
  }

  release(): Promise<KernelRelease> {
    return Promise.resolve(this.options.release);
  }

  tainted(): Promise<number> {
    return Promise.resolve(this.taint);
  }

  patches(): Promise<KernelPatch[]> {
    this.advance();
    return Promise.resolve(
      this.loaded.map((p, i) => ({
        name: p.module.name,
        enabled: p.enabled,
        transition: this.transition?.patch === p,
        replace: p.module.replace,
        stackOrder: i + 1,
      })),
    );
  }

  isLoaded(name: PatchName): Promise<boolean> {
    return Promise.resolve(this.modules.has(name));
  }

  async moduleName(modulePath: string): Promise<string> {
    const module = parseSimModule(await readFile(modulePath));
    if (!module)
      throw new KernelError('ENOEXEC', `modinfo ${modulePath}`, 'not a simulated livepatch module');
    return module.name;
  }

  async load(modulePath: string): Promise<void> {
    const bytes = await readFile(modulePath).catch((err: unknown) => {
      throw new KernelError('ENOENT', `insmod ${modulePath}`, (err as Error).message);
    });
    await retryOnBusy(
      () => this.insmod(modulePath, bytes),
      (ms) => this.options.clock.sleep(ms),
    );
  }

  private async insmod(path: string, bytes: Uint8Array): Promise<void> {
    this.advance();
    const op = `insmod ${path}`;
    const knobs = await this.knobs();
    if (knobs.loadError)
      throw new KernelError(knobs.loadError, op, 'injected by sim.livepatch.io/load-error');
    const module = parseSimModule(bytes);
    if (!module) throw new KernelError('ENOEXEC', op, 'Invalid module format');
    if (vermagicRelease(module.vermagic) !== this.options.release) {
      throw new KernelError(
        'ENOEXEC',
        op,
        `Invalid module format: version magic '${module.vermagic}' should be '${this.options.release} SMP preempt mod_unload modversions'`,
      );
    }
    if (this.modules.has(module.name)) throw new KernelError('EEXIST', op, 'File exists');
    if (this.transition) throw new KernelError('EBUSY', op, 'Device or resource busy');
    // Module init calls klp_enable_patch: the patch is enabled and its transition starts at once.
    const patch: SimPatch = { module, enabled: true };
    this.modules.set(module.name, { refcnt: 1, forced: false });
    this.loaded.push(patch);
    this.taint |= TAINT_LIVEPATCH | (knobs.loadTaint ?? 0);
    this.transition = this.startTransition(patch, 1, knobs);
    this.advance();
  }

  async setEnabled(name: PatchName, enabled: boolean): Promise<void> {
    this.advance();
    const op = `write enabled=${enabled ? 1 : 0} for ${name}`;
    const patch = this.loaded.find((p) => p.module.name === name);
    if (!patch) throw new KernelError('ENOENT', op, `/sys/kernel/livepatch/${name} does not exist`);
    if (patch.enabled === enabled) throw new KernelError('EINVAL', op, 'already has that value');
    if (this.transition?.patch === patch) {
      this.reverse(this.transition);
      return;
    }
    if (enabled)
      throw new KernelError(
        'EINVAL',
        op,
        'a disabled patch cannot be re-enabled; reload the module',
      );
    if (this.transition)
      throw new KernelError('EBUSY', op, `${this.transition.patch.module.name} is in transition`);
    // Read the knobs before touching any state: a failed read must leave the patch as it was.
    const knobs = await this.knobs();
    patch.enabled = false;
    this.transition = this.startTransition(patch, 0, knobs);
    this.advance();
  }

  transitionTasks(name: PatchName, limit: number): Promise<TransitionTasks> {
    this.advance();
    const t = this.transition;
    if (t?.patch.module.name !== name) return Promise.resolve({ pending: 0, blocking: [] });
    const blocking = t.tasks.filter((task) => task.state !== t.target);
    const tasks: BlockingTask[] = blocking.slice(0, limit).map(({ pid, comm }) => ({ pid, comm }));
    return Promise.resolve({ pending: blocking.length, blocking: tasks });
  }

  force(name: PatchName): Promise<void> {
    this.advance();
    const t = this.transition;
    if (t?.patch.module.name !== name) {
      return Promise.reject(
        new KernelError('EINVAL', `write force for ${name}`, 'not the patch in transition'),
      );
    }
    for (const task of t.tasks) task.state = t.target;
    // klp_force_transition marks every loaded patch forced: none of their modules may ever go.
    for (const module of this.modules.values()) module.forced = true;
    return Promise.resolve();
  }

  async unload(name: PatchName, timeoutMs: number): Promise<void> {
    const op = `rmmod ${name}`;
    const deadline = this.options.clock.now() + timeoutMs;
    for (;;) {
      this.advance();
      const module = this.modules.get(name);
      if (!module) throw new KernelError('ENOENT', op, `Module ${name} is not currently loaded`);
      if (module.refcnt === 0) {
        this.modules.delete(name);
        return;
      }
      if (this.options.clock.now() >= deadline) {
        const why = module.forced
          ? 'it was forced and can never be removed'
          : `refcnt ${module.refcnt}`;
        throw new KernelError('EBUSY', op, `Module ${name} is in use (${why})`);
      }
      await this.options.clock.sleep(500);
    }
  }

  private async knobs(): Promise<SimKnobs> {
    return (await this.options.knobs?.()) ?? DEFAULT_SIM_KNOBS;
  }

  private startTransition(patch: SimPatch, target: TaskState, knobs: SimKnobs): Transition {
    const now = this.options.clock.now();
    const tasks = buildTasks(knobs, now, target === 1 ? 0 : 1);
    // lastTick one tick back: the kernel tries to complete at once, before the first retry.
    return {
      patch,
      target,
      phaseStart: now,
      lastTick: now - TICK_MS,
      spreadMs: knobs.transitionSeconds * 1000,
      tasks,
    };
  }

  /** klp_reverse_transition: flip the target; tasks already switched must go back; signals restart. */
  private reverse(t: Transition): void {
    const now = this.options.clock.now();
    const oldTarget = t.target;
    t.target = oldTarget === 1 ? 0 : 1;
    t.patch.enabled = t.target === 1;
    t.phaseStart = now;
    t.lastTick = now - TICK_MS;
    const goingBack = t.tasks.filter((task) => task.state === oldTarget);
    goingBack.forEach((task, i) => {
      task.readyAt =
        task.kind === 'normal'
          ? now + Math.round((t.spreadMs * (i + 1)) / goingBack.length)
          : Infinity;
    });
    this.advance();
  }

  /** Runs every retry tick between the last one and now. */
  private advance(): void {
    const t = this.transition;
    if (!t) return;
    const now = this.options.clock.now();
    for (let tick = t.lastTick + TICK_MS; tick <= now; tick += TICK_MS) {
      t.lastTick = tick;
      if (this.tick(t, tick)) {
        this.complete(t);
        return;
      }
    }
  }

  /** One klp_try_complete_transition; true when every task has switched. */
  private tick(t: Transition, now: number): boolean {
    let blocking = 0;
    for (const task of t.tasks) {
      if (task.state === t.target) continue;
      if (task.readyAt <= now) task.state = t.target;
      else blocking++;
    }
    if (blocking === 0) return true;
    const elapsed = now - t.phaseStart;
    if (elapsed > 0 && elapsed % SIGNAL_EVERY_MS === 0) {
      // The fake signal: signal-only tasks switch on their way back to user space, at the next try.
      for (const task of t.tasks)
        if (task.kind === 'signal' && task.state !== t.target) task.readyAt = now;
    }
    return false;
  }

  private complete(t: Transition): void {
    this.transition = undefined;
    if (t.target === 1) {
      // Atomic replace: the older patches are disabled and removed only once the new one is complete.
      if (t.patch.module.replace)
        for (const old of this.loaded.filter((p) => p !== t.patch)) this.remove(old);
      return;
    }
    this.remove(t.patch);
  }

  /** A completed disable: the sysfs directory goes, the module stays loaded until rmmod. */
  private remove(patch: SimPatch): void {
    patch.enabled = false;
    this.loaded.splice(this.loaded.indexOf(patch), 1);
    const module = this.modules.get(patch.module.name);
    if (module && !module.forced) module.refcnt = 0;
  }
}
