// The kernel's livepatch interface in memory, rule for rule from
// docs/kernel.md: one transition at a time, per-task switching on a 1 s
// retry tick, the 15 s signal rule, reversal, atomic replace, refcnt, force,
// asynchronous removal of finished patches, module signatures and lockdown,
// and the EBUSY / EINVAL / ENOEXEC / EEXIST answers. What differs between
// kernel releases comes from the release's profile (profile.ts). Time comes
// from an injected clock and is advanced lazily on every call, so a test can
// run a minute of kernel time in a millisecond and an agent on kind runs it live.
import { readFile } from 'node:fs/promises';
import type { KernelRelease, PatchName } from '../../../src/api/names.js';
import type { Clock } from '../../../src/clock.js';
import { forceMarks, foreignBuildLogLine, kernelProfile, type KernelProfile } from '../profile.js';
import { parseSimModule, vermagicRelease, type SimModule } from './sim-module.js';
import { DEFAULT_SIM_KNOBS, type SimKnobs } from './sim-knobs.js';
import {
  blockingTasks,
  buildTasks,
  functionKey,
  reverseTasks,
  TICK_MS,
  tryComplete,
  type FunctionKey,
  type SimTask,
  type Sleeper,
  type TaskState,
  type TransitionScope,
} from './sim-tasks.js';
import {
  KernelError,
  type KernelBackend,
  type KernelPatch,
  type ModuleInfo,
  type TransitionTasks,
} from '../types.js';
import {
  TAINT_LIVEPATCH,
  TAINT_OOT_MODULE,
  TAINT_UNSIGNED_MODULE,
} from '../../../src/api/taint.js';

/** How long a finished patch's directory lingers (enabled=0, transition=0) before the kernel's worker removes it. */
const REMOVAL_DELAY_MS = 5;
const FIRST_KTHREAD_PID = 200;
/** The kernel's own timeline keeps its most recent events only: a long-lived simulated node must not grow its file without end. */
const TIMELINE_LIMIT = 1000;

/**
 * What the kernel did and when, by its own clock: an insmod of a patch (its
 * transition starts at once), a disable that starts one, a reversal, a
 * transition that ended (at the retry tick that completed it, even when
 * nobody looked until later), an rmmod. The fault suite judges by it.
 */
export type KernelEvent =
  | { readonly at: number; readonly event: 'insmod'; readonly patch: string }
  | { readonly at: number; readonly event: 'disable'; readonly patch: string }
  | {
      readonly at: number;
      readonly event: 'reverse';
      readonly patch: string;
      readonly target: 0 | 1;
    }
  | {
      readonly at: number;
      readonly event: 'settled';
      readonly patch: string;
      readonly enabled: boolean;
    }
  | { readonly at: number; readonly event: 'rmmod'; readonly patch: string };

interface SimPatch {
  readonly module: SimModule;
  enabled: boolean;
  /** Set when its disable completed or a replace patch superseded it: the directory goes at this time. */
  removeAt?: number;
}

interface Transition extends TransitionScope {
  readonly owner: SimPatch;
  phaseStart: number;
  lastTick: number;
  readonly spreadMs: number;
  readonly tasks: SimTask[];
}

interface InitWait {
  readonly patch: SimPatch;
  /** The module whose kthreads' release ends the wait. */
  readonly helper: string;
  readonly released: Promise<void>;
  readonly release: () => void;
}

interface LoadedModule {
  readonly module: SimModule;
  refcnt: number;
  forced: boolean;
}

export interface SimulatorOptions {
  readonly release: KernelRelease;
  readonly clock: Clock;
  /** Read when a transition starts (the agent reads the Node's annotations). */
  readonly knobs?: () => SimKnobs | Promise<SimKnobs>;
  readonly tainted?: number;
  /** false: a kernel built without CONFIG_LIVEPATCH. */
  readonly livepatch?: boolean;
  /** A kernel that was running before this process: a simulated node's kernel outlives its agent. */
  readonly state?: SimKernelState;
  /** Called with the whole state after every change, before the change is answered (to persist it). */
  readonly onChange?: (state: SimKernelState) => void;
}

type TaskJson = Omit<SimTask, 'readyAt' | 'sleeper'> & { readyAt: number | null; sleeper?: number };

/** Everything a simulated kernel holds, as JSON: what a node's kernel keeps across agent restarts. */
export interface SimKernelState {
  readonly taint: number;
  readonly signaturesEnforced: boolean;
  readonly lockedDown: boolean;
  /** The sysctl kernel.ftrace_enabled; absent in older state files, where it was 1. */
  readonly ftraceEnabled?: boolean;
  readonly loaded: readonly { module: SimModule; enabled: boolean; removeAt?: number }[];
  readonly modules: readonly LoadedModule[];
  /** Successful insmods per module name since boot: a module loaded twice shows here. */
  readonly loads: Readonly<Record<string, number>>;
  readonly sleepers: readonly Sleeper[];
  /** The kernel's own timeline (see KernelEvent); absent in older state files. */
  readonly timeline?: readonly KernelEvent[];
  readonly transition?: {
    readonly patch: string;
    readonly target: TaskState;
    readonly phaseStart: number;
    readonly lastTick: number;
    readonly spreadMs: number;
    readonly functions: readonly FunctionKey[];
    readonly codeBelow: readonly (readonly [FunctionKey, string | null])[];
    readonly tasks: readonly TaskJson[];
  };
}

const patchedFunctions = (m: SimModule): FunctionKey[] =>
  m.objects.flatMap((o) => o.functions.map((f) => functionKey(o.name, f)));

export class SimulatedKernel implements KernelBackend {
  readonly kind = 'simulator' as const;
  readonly profile: KernelProfile;
  /** Patch directories in load order, which is stack order. */
  private readonly loaded: SimPatch[] = [];
  private readonly modules = new Map<string, LoadedModule>();
  private readonly sleepers: Sleeper[] = [];
  private transition: Transition | undefined;
  /** A patch whose pre-patch callback sleeps in module init (not kept in the state file: only the conformance suite makes one). */
  private initializing: InitWait | undefined;
  private readonly asleepWaiters: (() => void)[] = [];
  private taint: number;
  private signaturesEnforced = false;
  private lockedDown = false;
  private ftraceEnabled = true;
  private readonly loads = new Map<string, number>();
  private readonly timeline: KernelEvent[] = [];

  constructor(private readonly options: SimulatorOptions) {
    this.taint = options.tainted ?? 0;
    this.profile = kernelProfile(options.release);
    if (options.state) this.restore(options.state);
  }

  /** The whole kernel as JSON (see SimKernelState). */
  state(): SimKernelState {
    const t = this.transition;
    return {
      taint: this.taint,
      signaturesEnforced: this.signaturesEnforced,
      lockedDown: this.lockedDown,
      ftraceEnabled: this.ftraceEnabled,
      loaded: this.loaded.map((p) => ({ ...p })),
      modules: [...this.modules.values()].map((m) => ({ ...m })),
      loads: Object.fromEntries(this.loads),
      sleepers: this.sleepers.map((x) => ({ ...x })),
      timeline: [...this.timeline],
      ...(t
        ? {
            transition: {
              patch: t.patch,
              target: t.target,
              phaseStart: t.phaseStart,
              lastTick: t.lastTick,
              spreadMs: t.spreadMs,
              functions: [...t.functions],
              codeBelow: [...t.codeBelow].map(([k, v]) => [k, v ?? null] as const),
              tasks: t.tasks.map(({ sleeper, readyAt, ...task }) => ({
                ...task,
                readyAt: Number.isFinite(readyAt) ? readyAt : null,
                ...(sleeper ? { sleeper: sleeper.pid } : {}),
              })),
            },
          }
        : {}),
    };
  }

  private restore(state: SimKernelState): void {
    this.taint = state.taint;
    this.signaturesEnforced = state.signaturesEnforced;
    this.lockedDown = state.lockedDown;
    this.ftraceEnabled = state.ftraceEnabled ?? true;
    this.loaded.push(...state.loaded.map((p) => ({ ...p })));
    for (const m of state.modules) this.modules.set(m.module.name, { ...m });
    for (const [name, n] of Object.entries(state.loads)) this.loads.set(name, n);
    this.sleepers.push(...state.sleepers.map((x) => ({ ...x })));
    this.timeline.push(...(state.timeline ?? []));
    const t = state.transition;
    const owner = t && this.loaded.find((p) => p.module.name === t.patch);
    if (!t || !owner) return;
    this.transition = {
      owner,
      patch: t.patch,
      target: t.target,
      phaseStart: t.phaseStart,
      lastTick: t.lastTick,
      spreadMs: t.spreadMs,
      functions: new Set(t.functions),
      codeBelow: new Map(t.codeBelow.map(([k, v]) => [k, v ?? undefined])),
      tasks: t.tasks.map(({ readyAt, sleeper, ...task }) => {
        const s = this.sleepers.find((x) => x.pid === sleeper);
        return { ...task, readyAt: readyAt ?? Infinity, ...(s ? { sleeper: s } : {}) };
      }),
    };
  }

  /** Hands the new state to whoever keeps it, before the caller sees the change. */
  private changed(): void {
    this.options.onChange?.(this.state());
  }

  release(): Promise<KernelRelease> {
    return Promise.resolve(this.options.release);
  }

  tainted(): Promise<number> {
    return Promise.resolve(this.taint);
  }

  livepatchSupported(): Promise<boolean> {
    return Promise.resolve(this.options.livepatch ?? true);
  }

  patches(): Promise<KernelPatch[]> {
    this.advance();
    return Promise.resolve(
      this.loaded
        .filter((p) => p.removeAt === undefined)
        .map((p, i) => ({
          name: p.module.name,
          enabled: p.enabled,
          transition: this.inTransition(p),
          ...(this.profile.replaceFile ? { replace: p.module.replace } : {}),
          ...(this.profile.stackOrderFile ? { stackOrder: i + 1 } : {}),
        })),
    );
  }

  /** A patch directory as `ls` and `cat` see it, lingering ones included (the conformance suite reads it). */
  sysfsEntry(name: string): { enabled: boolean; transition: boolean } | undefined {
    this.advance();
    const p = this.loaded.find((x) => x.module.name === name);
    return p && { enabled: p.enabled, transition: this.inTransition(p) };
  }

  /** `transition` reads 1 from klp_init_transition on: while a pre-patch callback runs, too. */
  private inTransition(p: SimPatch): boolean {
    return this.transition?.owner === p || this.initializing?.patch === p;
  }

  /** /sys/module/<name>/refcnt, or undefined when the module is not loaded. */
  refcnt(name: string): number | undefined {
    this.advance();
    return this.modules.get(name)?.refcnt;
  }

  isLoaded(name: PatchName): Promise<boolean> {
    this.advance();
    return Promise.resolve(this.modules.has(name));
  }

  async moduleInfo(modulePath: string): Promise<ModuleInfo> {
    const module = parseSimModule(await readFile(modulePath));
    if (!module)
      throw new KernelError('ENOEXEC', `modinfo ${modulePath}`, 'not a simulated kernel module');
    return { name: module.name, vermagic: module.vermagic, livepatch: module.livepatch };
  }

  async load(modulePath: string): Promise<void> {
    const bytes = await readFile(modulePath).catch((err: unknown) => {
      throw new KernelError('ENOENT', `insmod ${modulePath}`, (err as Error).message);
    });
    await this.insmod(modulePath, bytes);
  }

  /** What writing 1 to /sys/module/module/parameters/sig_enforce does: one way, unsigned modules are refused. */
  enforceModuleSignatures(): void {
    this.signaturesEnforced = true;
    this.changed();
  }

  /** What writing `integrity` to /sys/kernel/security/lockdown does: one way, unsigned modules are refused. */
  lockDown(): void {
    this.lockedDown = true;
    this.changed();
  }

  /**
   * What writing the sysctl kernel.ftrace_enabled does. Livepatch's ftrace
   * handlers are permanent: ftrace cannot be turned off under a loaded
   * patch (EBUSY), and with it off no patch can register its handler.
   */
  setFtraceEnabled(enabled: boolean): void {
    this.advance();
    if (!enabled && this.loaded.length > 0)
      throw new KernelError(
        'EBUSY',
        'sysctl kernel.ftrace_enabled=0',
        'a livepatch holds a permanent ftrace handler',
      );
    this.ftraceEnabled = enabled;
    this.changed();
  }

  /** The kthreads modules started, as `ps` would list them. */
  kthreads(): { pid: number; comm: string }[] {
    return this.sleepers.map(({ pid, comm }) => ({ pid, comm }));
  }

  /** A module's kthreads go to sleep in their function (held) or leave it, like the test module's `hold` parameter. */
  holdKthreads(module: string, held: boolean): void {
    this.advance();
    for (const s of this.sleepers.filter((x) => x.module === module)) {
      if (held && !s.held) s.code = this.codeFor(s);
      s.held = held;
    }
    if (!held && this.initializing?.helper === module) this.initializing.release();
    this.advance();
    this.changed();
  }

  /** Whose code runs in a function now: the topmost enabled, settled patch that changes it, or undefined (the original). */
  functionOwner(object: string, fn: string): string | undefined {
    this.advance();
    const key = functionKey(object, fn);
    const live = this.loaded.filter(
      (p) => p.enabled && p.removeAt === undefined && patchedFunctions(p.module).includes(key),
    );
    return live.at(-1)?.module.name;
  }

  /** Resolves when an insmod next falls asleep in module init (ps would show it in D state). */
  insmodAsleep(): Promise<void> {
    return new Promise((resolve) => {
      this.asleepWaiters.push(resolve);
    });
  }

  /** The knobs of a load, after what they inject before it: an errno, or no return at all. */
  private async loadKnobs(op: string): Promise<SimKnobs> {
    const knobs = await this.knobs();
    if (knobs.loadError)
      throw new KernelError(knobs.loadError, op, 'injected by sim.livepatch.io/load-error');
    // An insmod stuck in uninterruptible sleep: no error, no return.
    if (knobs.loadHang) await new Promise<never>(() => undefined);
    return knobs;
  }

  private async insmod(path: string, bytes: Uint8Array): Promise<void> {
    this.advance();
    const startedAt = this.options.clock.now();
    const op = `insmod ${path}`;
    const knobs = await this.loadKnobs(op);
    const module = parseSimModule(bytes);
    if (!module) throw new KernelError('ENOEXEC', op, 'Invalid module format');
    this.checkAdmission(module, op);
    if (this.modules.has(module.name)) throw new KernelError('EEXIST', op, 'File exists');
    const missing = module.depends.find((d) => !this.modules.has(d));
    // The loader answers ENOENT for a symbol it cannot resolve; kmod words it "Unknown symbol in module".
    if (missing)
      throw new KernelError('ENOENT', op, `Unknown symbol in module (needs ${missing})`, [
        `${module.name}: Unknown symbol in module ${missing}`,
      ]);
    const enables = module.livepatch && module.init?.kind !== 'no-patch';
    // klp_enable_patch holds klp_mutex while a pre-patch callback sleeps: the next one waits for it.
    if (enables) await this.initializing?.released;
    if (enables) this.refuseEnable(module, op);
    this.admit(module);
    this.note({ at: startedAt, event: 'insmod', patch: module.name });
    if (enables) {
      // Module init calls klp_enable_patch: the patch is enabled and its transition starts at once.
      const patch: SimPatch = { module, enabled: false };
      this.loaded.push(patch);
      // sim.livepatch.io/load-taint: the patch damages the node as it loads.
      this.taint |= knobs.loadTaint ?? 0;
      if (module.init?.kind === 'pre-patch-waits')
        await this.prePatchWait(patch, module.init.helper);
      patch.enabled = true;
      this.transition = this.startTransition(patch, 1, knobs);
      this.advance();
    }
    this.changed();
  }

  /**
   * klp_enable_patch's refusals, in its order: states the loaded patches do
   * not allow (klp_is_patch_compatible), another transition, a pre-patch
   * callback that fails, ftrace refusing the handler. Module init fails and
   * the module is gone again.
   */
  private refuseEnable(module: SimModule, op: string): void {
    if (!this.compatible(module)) {
      const line = `livepatch: Livepatch patch (${module.name}) is not compatible with the already installed livepatches.`;
      throw new KernelError('EINVAL', op, `Invalid parameters; kernel: ${line}`, [line]);
    }
    if (this.transition) throw new KernelError('EBUSY', op, 'Device or resource busy');
    const object = module.objects[0]?.name ?? 'vmlinux';
    if (module.init?.kind === 'pre-patch-fails') {
      const log = [
        `livepatch: enabling patch '${module.name}'`,
        `livepatch: pre-patch callback failed for object '${object}'`,
        `livepatch: failed to enable patch '${module.name}'`,
      ];
      throw new KernelError('EINVAL', op, `Invalid parameters; kernel: ${log.join('; ')}`, log);
    }
    if (!this.ftraceEnabled) {
      // klp_enable_patch registers a permanent ftrace handler per function; ftrace refuses it.
      const fn = module.objects[0]?.functions[0] ?? '';
      const log = [
        `livepatch: failed to register ftrace handler for function '${fn}' (-16)`,
        `livepatch: failed to patch object '${object}'`,
        `livepatch: failed to enable patch '${module.name}'`,
      ];
      throw new KernelError('EBUSY', op, `Device or resource busy; kernel: ${log.join('; ')}`, log);
    }
  }

  /**
   * klp_is_patch_compatible: every state a loaded patch declares must be in
   * the new patch at the same or a higher version; a patch that is not an
   * atomic replace may leave a state out.
   */
  private compatible(module: SimModule): boolean {
    const listed = this.loaded.filter((p) => p.removeAt === undefined);
    return listed.every((old) =>
      (old.module.states ?? []).every((state) => {
        const own = module.states?.find((s) => s.id === state.id);
        return own ? own.version >= state.version : !module.replace;
      }),
    );
  }

  /**
   * A pre-patch callback asleep while the helper's kthreads are held: the
   * directory is there (enabled=0, transition=1: klp_init_transition ran) and
   * insmod does not return until they are released.
   */
  private async prePatchWait(patch: SimPatch, helper: string): Promise<void> {
    if (!this.sleepers.some((s) => s.module === helper && s.held)) return;
    let release = (): void => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.initializing = { patch, helper, released, release };
    for (const wake of this.asleepWaiters.splice(0)) wake();
    this.changed();
    await released;
    this.initializing = undefined;
  }

  /** The module loader's checks, in its order: signature, then vermagic, then livepatch support. */
  private checkAdmission(module: SimModule, op: string): void {
    if (!module.signed && this.signaturesEnforced)
      throw new KernelError('EKEYREJECTED', op, 'Key was rejected by service', [
        'Loading of unsigned module is rejected',
      ]);
    if (!module.signed && this.lockedDown)
      throw new KernelError('EPERM', op, 'Operation not permitted', [
        'Lockdown: insmod: unsigned module loading is restricted; see man kernel_lockdown.7',
      ]);
    if (vermagicRelease(module.vermagic) !== this.options.release) {
      const line = foreignBuildLogLine(this.profile, module.name);
      throw new KernelError('ENOEXEC', op, `Invalid module format; kernel: ${line}`, [line]);
    }
    if (module.livepatch && this.options.livepatch === false) {
      const line = `${module.name}: module is marked as livepatch module, but livepatch support is disabled`;
      throw new KernelError('ENOEXEC', op, `Invalid module format; kernel: ${line}`, [line]);
    }
  }

  /** The module is in: taints, references on what it uses, its kthreads. */
  private admit(module: SimModule): void {
    // klp_enable_patch takes a reference on its own module: a livepatch=Y init that never calls it takes none.
    const enables = module.livepatch && module.init?.kind !== 'no-patch';
    this.modules.set(module.name, { module, refcnt: enables ? 1 : 0, forced: false });
    this.loads.set(module.name, (this.loads.get(module.name) ?? 0) + 1);
    for (const d of module.depends) {
      const dep = this.modules.get(d);
      if (dep) dep.refcnt++;
    }
    this.taint |= TAINT_OOT_MODULE | (module.signed ? 0 : TAINT_UNSIGNED_MODULE);
    if (module.livepatch) this.taint |= TAINT_LIVEPATCH;
    for (const k of module.kthreads) {
      const fn = functionKey(module.name, k.function);
      const pid = FIRST_KTHREAD_PID + this.sleepers.length;
      const sleeper: Sleeper = {
        pid,
        comm: k.comm,
        module: module.name,
        fn,
        ...(k.sleep ? { sleep: k.sleep } : {}),
        held: true,
        code: undefined,
      };
      sleeper.code = this.codeFor(sleeper);
      this.sleepers.push(sleeper);
    }
  }

  async setEnabled(name: PatchName, enabled: boolean): Promise<void> {
    // The write takes klp_mutex, which a sleeping pre-patch callback holds.
    await this.initializing?.released;
    this.advance();
    const op = `write enabled=${enabled ? 1 : 0} for ${name}`;
    const patch = this.loaded.find((p) => p.module.name === name);
    if (!patch) throw new KernelError('ENOENT', op, `/sys/kernel/livepatch/${name} does not exist`);
    if (patch.enabled === enabled) throw new KernelError('EINVAL', op, 'already has that value');
    if (this.transition?.owner === patch) {
      this.note({
        at: this.options.clock.now(),
        event: 'reverse',
        patch: name,
        target: this.transition.target === 1 ? 0 : 1,
      });
      this.reverse(this.transition);
      this.changed();
      return;
    }
    if (enabled)
      throw new KernelError(
        'EINVAL',
        op,
        'a disabled patch cannot be re-enabled; reload the module',
      );
    if (this.transition)
      throw new KernelError('EBUSY', op, `${this.transition.patch} is in transition`);
    // Read the knobs before touching any state: a failed read must leave the patch as it was.
    const knobs = await this.knobs();
    patch.enabled = false;
    this.note({ at: this.options.clock.now(), event: 'disable', patch: name });
    this.transition = this.startTransition(patch, 0, knobs);
    this.advance();
    this.changed();
  }

  transitionTasks(name: PatchName, limit: number): Promise<TransitionTasks> {
    this.advance();
    const t = this.transition;
    if (t?.patch !== name) return Promise.resolve({ pending: 0, blocking: [] });
    return Promise.resolve(blockingTasks(t.tasks, t.target, limit));
  }

  async force(name: PatchName): Promise<void> {
    // The write takes klp_mutex, which a sleeping pre-patch callback holds.
    await this.initializing?.released;
    this.advance();
    const t = this.transition;
    if (t?.patch !== name) {
      throw new KernelError('EINVAL', `write force for ${name}`, 'not the patch in transition');
    }
    for (const task of t.tasks) task.state = t.target;
    const marks = forceMarks(this.profile, {
      enabling: t.target === 1,
      replace: t.owner.module.replace,
    });
    for (const p of this.loaded) {
      const self = p === t.owner;
      const marked = marks === 'all' || (marks === 'self' && self) || (marks === 'others' && !self);
      const module = this.modules.get(p.module.name);
      if (marked && module) module.forced = true;
    }
    this.changed();
  }

  async unload(name: PatchName, timeoutMs: number): Promise<void> {
    const op = `rmmod ${name}`;
    const deadline = this.options.clock.now() + timeoutMs;
    for (;;) {
      this.advance();
      const module = this.modules.get(name);
      if (!module) return;
      if (module.refcnt === 0) {
        this.remove(module);
        this.note({ at: this.options.clock.now(), event: 'rmmod', patch: name });
        this.changed();
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

  private remove(module: LoadedModule): void {
    this.modules.delete(module.module.name);
    for (const d of module.module.depends) {
      const dep = this.modules.get(d);
      if (dep) dep.refcnt--;
    }
    for (let i = this.sleepers.length - 1; i >= 0; i--)
      if (this.sleepers[i]?.module === module.module.name) this.sleepers.splice(i, 1);
  }

  private note(e: KernelEvent): void {
    this.timeline.push(e);
    if (this.timeline.length > TIMELINE_LIMIT) this.timeline.shift();
  }

  private async knobs(): Promise<SimKnobs> {
    return (await this.options.knobs?.()) ?? DEFAULT_SIM_KNOBS;
  }

  /** The code a task entering the sleeper's function runs now: the topmost settled patch of it, or the module's own. */
  private codeFor(s: Sleeper): string | undefined {
    const [object = '', fn = ''] = s.fn.split(':');
    return this.functionOwner(object, fn);
  }

  private startTransition(patch: SimPatch, target: TaskState, knobs: SimKnobs): Transition {
    const now = this.options.clock.now();
    const functions = new Set(patchedFunctions(patch.module));
    const below = this.loaded.slice(0, this.loaded.indexOf(patch)).filter((p) => p.enabled);
    const codeBelow = new Map<FunctionKey, string | undefined>();
    for (const fn of functions)
      codeBelow.set(
        fn,
        below.filter((p) => patchedFunctions(p.module).includes(fn)).at(-1)?.module.name,
      );
    // lastTick one tick back: the kernel tries to complete at once, before the first retry.
    return {
      owner: patch,
      patch: patch.module.name,
      functions,
      codeBelow,
      target,
      phaseStart: now,
      lastTick: now - TICK_MS,
      spreadMs: knobs.transitionSeconds * 1000,
      tasks: buildTasks(knobs, now, target === 1 ? 0 : 1, this.sleepers),
    };
  }

  /** klp_reverse_transition: flip the target; tasks already switched must go back; signals restart. */
  private reverse(t: Transition): void {
    const now = this.options.clock.now();
    const oldTarget = t.target;
    t.target = oldTarget === 1 ? 0 : 1;
    t.owner.enabled = t.target === 1;
    t.phaseStart = now;
    t.lastTick = now - TICK_MS;
    reverseTasks(t.tasks, oldTarget, now, t.spreadMs);
    this.advance();
  }

  /**
   * Runs every retry tick between the last one and now, and the removal of
   * finished patches. A transition that ended or a patch that went is a
   * change like any other: whoever keeps the state hears of it.
   */
  private advance(): void {
    const now = this.options.clock.now();
    const t = this.transition;
    let changed = false;
    if (t) {
      for (let tick = t.lastTick + TICK_MS; tick <= now; tick += TICK_MS) {
        t.lastTick = tick;
        if (tryComplete(t.tasks, t, tick, t.phaseStart)) {
          this.complete(t, tick);
          changed = true;
          break;
        }
      }
    }
    for (const p of this.loaded.filter((x) => x.removeAt !== undefined && x.removeAt <= now)) {
      this.free(p);
      changed = true;
    }
    if (changed) this.changed();
  }

  private complete(t: Transition, at: number): void {
    this.transition = undefined;
    this.note({ at, event: 'settled', patch: t.patch, enabled: t.target === 1 });
    const removeAt = at + REMOVAL_DELAY_MS;
    if (t.target === 1) {
      // Atomic replace: the older patches are disabled now and removed a moment later.
      if (t.owner.module.replace)
        for (const old of this.loaded.filter((p) => p !== t.owner)) {
          old.enabled = false;
          old.removeAt = removeAt;
        }
      return;
    }
    t.owner.removeAt = removeAt;
  }

  /** klp_free_patch_async: the sysfs directory goes, then the module reference unless it was forced. */
  private free(patch: SimPatch): void {
    this.loaded.splice(this.loaded.indexOf(patch), 1);
    const module = this.modules.get(patch.module.name);
    if (module && !module.forced) module.refcnt = Math.max(0, module.refcnt - 1);
  }
}
