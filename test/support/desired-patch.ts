// One desired entry of a LivePatchNode, as the controller writes it for an
// enabled patch: the agent's unit tests start from it and override a field or two.
import type { DesiredPatch } from '../../src/api/generated/types.js';
import type { LivePatchName, PatchName } from '../../src/api/names.js';

export function desiredPatch(o: Partial<DesiredPatch> = {}): DesiredPatch {
  return {
    livePatch: 'cve-a' as LivePatchName,
    patchName: 'livepatch_a' as PatchName,
    state: 'Enabled',
    module: { hostPath: '/m.ko', sha256: 'a'.repeat(64) },
    generation: 1,
    stallTimeout: '60s',
    allowForce: false,
    ...o,
  };
}
