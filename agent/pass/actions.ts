// Carries out one decision of the node state machine on the kernel, and turns
// a refusal into words a person can act on.
import type { KernelRelease } from '../../src/api/names.js';
import type { Logger } from '../../src/log.js';
import type { DesiredPatch } from '../../src/api/generated/types.js';
import { ModuleSourceError } from '../module/module-errors.js';
import type { NodeAction } from './node-machine.js';
import { KernelError, type KernelBackend, type ModuleInfo } from '../kernel/types.js';

export interface ActionFailure {
  readonly message: string;
  /** Worth another try later (a busy kernel, an unreachable mirror). */
  readonly retryable: boolean;
  /**
   * The kernel answered EBUSY to a load or a write of `enabled`: another
   * transition runs (kpatch.service, a vendor's agent), or ftrace refuses the
   * handler. The patch waits in flight rather than failing, up to
   * BUSY_GIVE_UP_MS (pass/cooldowns.ts). `answer`: what was asked and what
   * the kernel said, for the message that ends the wait.
   */
  readonly busy?: { readonly answer: string };
  /** Short CamelCase reason for the Event. */
  readonly reason: string;
}

export interface ActionDeps {
  readonly backend: KernelBackend;
  readonly release: KernelRelease;
  /** Starts fetching an entry's module beside the kernel loop (module/module-fetches.ts). */
  readonly startFetch: (entry: DesiredPatch) => void;
  readonly unloadTimeoutMs: number;
  readonly log: Logger;
  /** Set when this node can take no livepatch at all (kernel too old, no livepatch support): loads fail with it. */
  readonly refuseLoads?: string;
}

/** What the module file said about itself before insmod, for the words of a refusal. */
interface LoadContext {
  readonly release: KernelRelease;
  readonly info?: ModuleInfo;
}

const logSays = (err: KernelError, pattern: RegExp): boolean =>
  err.kernelLog.some((line) => pattern.test(line));

/** ENOEXEC stands for several causes; the kernel's own log line says which. */
function explainNoExec(err: KernelError, ctx: LoadContext): string {
  if (logSays(err, /livepatch support is disabled/))
    return `this node's kernel ${ctx.release} was built without livepatch support (CONFIG_LIVEPATCH); no livepatch can be applied here`;
  const built = ctx.info?.vermagic.split(' ')[0];
  const forOther = built && built !== ctx.release ? `it was built for ${built}, ` : '';
  return (
    `the kernel refused the module (${err.message}): ${forOther}this node runs ${ctx.release}. ` +
    "Build the livepatch against this kernel's exact headers and list it under spec.kernels for this release"
  );
}

function explainRefusal(err: KernelError, ctx: LoadContext): string | undefined {
  switch (err.errno) {
    case 'ENOEXEC':
      return explainNoExec(err, ctx);
    case 'EKEYREJECTED':
      return (
        `the kernel enforces module signatures and rejected this module (${err.message}). ` +
        "Sign the livepatch with a key the node trusts (the kernel's keyring or an enrolled MOK)"
      );
    case 'EPERM':
      return logSays(err, /lockdown/i)
        ? `the kernel is locked down and refuses unsigned modules (${err.message}). Sign the livepatch with a key the node trusts`
        : `the kernel did not permit the load (${err.message}): the agent needs CAP_SYS_MODULE (a privileged pod), or the kernel is locked down`;
    case 'ETIMEDOUT':
      return (
        `${err.message}. The module is left as the kernel has it; nothing more is tried for this generation. ` +
        "Read the node's kernel log (dmesg) for what its init waits on; a module stuck in init needs a reboot to go"
      );
    default:
      return explainLogged(err);
  }
}

/**
 * A load the kernel refused with a line of its own (a pre-patch callback that
 * failed, patch states the loaded patches do not allow): its words, quoted.
 */
function explainLogged(err: KernelError): string | undefined {
  if (logSays(err, /not compatible with the already installed livepatches/))
    return (
      `the kernel refused the patch (${err.message}): its klp_state list does not allow the livepatches already loaded on this node. ` +
      'Build it with states compatible with them, or make it an atomic-replace patch of them'
    );
  if (logSays(err, /pre-patch callback failed/))
    return (
      `the patch's own pre-patch callback refused to load it (${err.message}); nothing was patched. ` +
      'Its callback says why: fix what it checks on this node, or the patch'
    );
  if (err.kernelLog.length > 0 && err.errno !== 'EBUSY')
    return `the kernel refused the module (${err.message})`;
  return undefined;
}

/** A load or write the patch waits on: what was asked, and the kernel's line when it gave one. */
function busyWait(what: string, err: KernelError): ActionFailure {
  const why = err.kernelLog.length
    ? `kernel: ${err.kernelLog.join('; ')}`
    : 'another livepatch is in transition, or ftrace refuses the handler';
  const answer = `${what} answered EBUSY (${why})`;
  return {
    reason: 'KernelBusy',
    retryable: true,
    busy: { answer },
    message: `waiting: ${answer}; trying again`,
  };
}

function explainKernelError(action: NodeAction, err: KernelError, ctx: LoadContext): ActionFailure {
  const what = `${action.kind} ${action.patchName}`;
  const refusal = action.kind === 'load' ? explainRefusal(err, ctx) : undefined;
  if (refusal) return { reason: 'ModuleRefused', retryable: false, message: refusal };
  switch (err.errno) {
    case 'EBUSY':
      if (action.kind === 'load' || action.kind === 'setEnabled') return busyWait(what, err);
      return {
        reason: 'KernelBusy',
        retryable: true,
        message: `${what}: the kernel is busy (${err.message}); retrying`,
      };
    case 'EEXIST':
      return {
        reason: 'AlreadyLoaded',
        retryable: true,
        message: `${what}: a module of that name is already loaded`,
      };
    default:
      return {
        reason: 'KernelRefused',
        retryable: false,
        message: `${what} failed: ${err.message}`,
      };
  }
}

export function explainFailure(action: NodeAction, err: unknown, ctx: LoadContext): ActionFailure {
  if (err instanceof ModuleSourceError) {
    return { reason: err.reason, retryable: err.retryable, message: err.message };
  }
  if (err instanceof KernelError) return explainKernelError(action, err, ctx);
  return {
    reason: 'AgentError',
    retryable: true,
    message: `${action.kind} ${action.patchName}: ${(err as Error).message}`,
  };
}

export async function runAction(
  action: NodeAction,
  deps: ActionDeps,
): Promise<ActionFailure | undefined> {
  const log = deps.log.child({
    livePatch: action.livePatch,
    patchName: action.patchName,
    action: action.kind,
  });
  const ctx: { release: KernelRelease; info?: ModuleInfo } = { release: deps.release };
  try {
    switch (action.kind) {
      case 'fetch':
        if (deps.refuseLoads)
          return { reason: 'NodeUnsupported', retryable: false, message: deps.refuseLoads };
        deps.startFetch(action.entry);
        break;
      case 'load': {
        if (deps.refuseLoads)
          return { reason: 'NodeUnsupported', retryable: false, message: deps.refuseLoads };
        ctx.info = await readModuleInfo(deps.backend, action.path);
        checkModule(ctx.info, action, deps.release);
        log.info('loading module', { path: action.path, vermagic: ctx.info.vermagic });
        await deps.backend.load(action.path);
        await expectPatchDirectory(deps, action);
        break;
      }
      case 'setEnabled':
        log.info(`writing enabled=${action.enabled ? 1 : 0}`, { why: action.why });
        await deps.backend.setEnabled(action.patchName, action.enabled);
        break;
      case 'force':
        log.warn('writing force: the module can never be unloaded afterwards');
        await deps.backend.force(action.patchName);
        break;
      case 'unload':
        log.info('unloading module');
        await deps.backend.unload(action.patchName, deps.unloadTimeoutMs);
        break;
    }
    return undefined;
  } catch (err) {
    const failure = explainFailure(action, err, ctx);
    log.warn(failure.message, { reason: failure.reason, retryable: failure.retryable });
    return failure;
  }
}

/**
 * A livepatch's init calls klp_enable_patch, which creates its sysfs
 * directory before insmod returns. A module marked livepatch=Y whose init
 * does not is no patch the agent can drive: it is unloaded again and the
 * load fails for this generation, rather than loaded, unloaded and loaded anew.
 */
async function expectPatchDirectory(deps: ActionDeps, action: NodeAction): Promise<void> {
  const patches = await deps.backend.patches();
  if (patches.some((p) => p.name === action.patchName)) return;
  const unloaded = await deps.backend
    .unload(action.patchName, deps.unloadTimeoutMs)
    .then(() => 'it was unloaded again')
    .catch((err: unknown) => `unloading it failed too (${(err as Error).message})`);
  throw new ModuleSourceError(
    `the module ${action.patchName} loaded but created no /sys/kernel/livepatch/${action.patchName}: its init did not ` +
      `enable a livepatch (klp_enable_patch), though modinfo says livepatch=Y; ${unloaded}. ` +
      "Build it with kpatch-build or klp-build, or check its init in the node's kernel log (dmesg)",
    false,
    'ModuleRejected',
  );
}

/** modinfo of the verified file; a file it cannot read is not a module at all, and never reaches insmod. */
async function readModuleInfo(backend: KernelBackend, path: string): Promise<ModuleInfo> {
  try {
    return await backend.moduleInfo(path);
  } catch (err) {
    throw new ModuleSourceError(
      `the module file is not a kernel module (${(err as Error).message}); nothing was loaded. ` +
        'Point the LivePatch at a .ko built for this kernel',
      false,
      'ModuleRejected',
    );
  }
}

/** Gates before insmod: the file must be the livepatch the LivePatch names, nothing else. */
function checkModule(info: ModuleInfo, action: NodeAction, release: KernelRelease): void {
  // insmod loads a module under its own name: a mismatch would load a patch nobody manages.
  if (info.name !== action.patchName) {
    throw new ModuleSourceError(
      `the module file is named ${info.name} but spec.patchName is ${action.patchName}; nothing was loaded. ` +
        'Point the LivePatch at the right build, or create a LivePatch with that patchName',
      false,
      'ModuleRejected',
    );
  }
  // An ordinary module would run its init with no patch to reverse or unload: never load one.
  if (!info.livepatch) {
    throw new ModuleSourceError(
      `the module file ${info.name} is not a livepatch (modinfo shows no livepatch=Y); nothing was loaded. ` +
        'Point the LivePatch at a livepatch module (kpatch-build or MODULE_INFO(livepatch, "Y"))',
      false,
      'ModuleRejected',
    );
  }
  // With CONFIG_MODVERSIONS the kernel skips the release in vermagic and loads a build for a
  // sibling release whose symbol CRCs match: a livepatch of code this kernel does not have.
  const built = info.vermagic.split(' ')[0];
  if (built !== release) {
    throw new ModuleSourceError(
      `the module file was built for kernel ${built ?? '(none)'} (vermagic "${info.vermagic}"), this node runs ${release}; ` +
        'nothing was loaded. A livepatch replaces functions of one exact build: list a build for this release under spec.kernels',
      false,
      'ModuleRejected',
    );
  }
}
