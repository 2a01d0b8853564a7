// Whether this node's kernel can take livepatches at all. Read once at start:
// the release does not change without a reboot, which restarts the agent.
import type { KernelBackend } from './types.js';
import { kernelProfile, unsupportedReason, type KernelProfile } from './profile.js';

export interface KernelCheck {
  readonly profile: KernelProfile;
  /** Why no livepatch can load here; the agent reports it and loads nothing. */
  readonly refusal?: { readonly reason: string; readonly message: string };
}

export async function checkKernel(backend: KernelBackend): Promise<KernelCheck> {
  const release = await backend.release();
  const profile = kernelProfile(release);
  const tooOld = unsupportedReason(profile);
  if (tooOld) return { profile, refusal: { reason: 'UnsupportedKernel', message: tooOld } };
  if (!(await backend.livepatchSupported())) {
    const message =
      `kernel ${release} has no /sys/kernel/livepatch: it was built without livepatch support ` +
      '(CONFIG_LIVEPATCH), so no livepatch can be applied to this node';
    return { profile, refusal: { reason: 'NoLivepatchSupport', message } };
  }
  return { profile };
}
