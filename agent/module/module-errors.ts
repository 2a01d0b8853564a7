// The one error a module source raises: what went wrong in words a person can
// act on, and whether a later attempt may succeed.

/**
 * Why a module could not be used; `retryable` when a later attempt may
 * succeed. `reason` (the Event's): ModuleUnavailable when the file could not
 * be had as the LivePatch says, ModuleRejected when the file itself is no
 * livepatch for this node.
 */
export class ModuleSourceError extends Error {
  override readonly name = 'ModuleSourceError';
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly reason: 'ModuleUnavailable' | 'ModuleRejected' = 'ModuleUnavailable',
  ) {
    super(message);
  }
}
