// Carries out one decision of the node state machine on the kernel, and turns
// a refusal into words a person can act on.
import type { Logger } from '../src/log.js';
import type { ModuleFetcher } from './module-source.js';
import { ModuleSourceError } from './module-source.js';
import type { NodeAction } from './node-machine.js';
import { KernelError, type KernelBackend } from './kernel/types.js';

export interface ActionFailure {
  readonly message: string;
  /** Worth another try later (a busy kernel, an unreachable mirror). */
  readonly retryable: boolean;
  /** Short CamelCase reason for the Event. */
  readonly reason: string;
}

export interface ActionDeps {
  readonly backend: KernelBackend;
  readonly fetchModule: ModuleFetcher;
  readonly unloadTimeoutMs: number;
  readonly log: Logger;
}

function explainKernelError(action: NodeAction, err: KernelError): ActionFailure {
  const what = `${action.kind} ${action.patchName}`;
  switch (err.errno) {
    case 'ENOEXEC':
      return {
        reason: 'ModuleRefused',
        retryable: false,
        message: `the kernel refused the module (${err.message}): it was built for another kernel; check spec.kernels for this node's release`,
      };
    case 'EBUSY':
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

export function explainFailure(action: NodeAction, err: unknown): ActionFailure {
  if (err instanceof ModuleSourceError) {
    return { reason: 'ModuleUnavailable', retryable: err.retryable, message: err.message };
  }
  if (err instanceof KernelError) return explainKernelError(action, err);
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
  try {
    switch (action.kind) {
      case 'load': {
        const path = await deps.fetchModule(action.patchName, action.entry.module);
        // insmod loads a module under its own name: a mismatch would load a patch nobody manages.
        const name = await deps.backend.moduleName(path);
        if (name !== action.patchName) {
          throw new ModuleSourceError(
            `the module file is named ${name} but spec.patchName is ${action.patchName}; nothing was loaded. ` +
              'Point the LivePatch at the right build, or create a LivePatch with that patchName',
            false,
          );
        }
        log.info('loading module', { path });
        await deps.backend.load(path);
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
    const failure = explainFailure(action, err);
    log.warn(failure.message, { reason: failure.reason, retryable: failure.retryable });
    return failure;
  }
}
