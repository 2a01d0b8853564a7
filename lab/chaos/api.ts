// What the fault suite writes and reads as a user would, through the API
// server: LivePatches, LivePatchNode specs (for agent-only scenarios), node
// annotations, the leader Lease. Its writes carry their own field manager.
import type { DesiredPatch, LivePatch } from '../../src/api/generated/types.js';
import type { KubeConfig } from '../../src/kube/config.js';
import { rawJson } from '../../src/kube/raw.js';
import { getOrUndefined, isNotFound, PATHS } from '../../src/kube/resources.js';
import { writeSimModule, type ModuleOnDisk } from '../sim-modules.js';
import { poll, type Polled } from '../wait.js';

const MANAGER = 'livepatch-chaos';
export const KERNEL = '6.1.0-26-amd64';

function mergePatch(kc: KubeConfig, path: string, patch: unknown): Promise<unknown> {
  return rawJson(
    kc,
    'PATCH',
    `${path}?fieldManager=${MANAGER}`,
    patch,
    'application/merge-patch+json',
  );
}

export const patchNameOf = (livePatch: string): string =>
  `livepatch_${livePatch.replaceAll('-', '_')}`;

export function simModule(patchName: string): Promise<ModuleOnDisk> {
  return writeSimModule(patchName, KERNEL);
}

/** Creates a LivePatch for the simulated kernel, its module on disk, with the given spec fields. */
export async function createLivePatch(
  kc: KubeConfig,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  const patchName = patchNameOf(name);
  const module = await simModule(patchName);
  await rawJson(kc, 'POST', PATHS.livePatches, {
    apiVersion: 'livepatch.io/v1alpha1',
    kind: 'LivePatch',
    metadata: { name },
    spec: {
      patchName,
      kernels: [{ release: KERNEL, module: { hostPath: module.hostPath, sha256: module.sha256 } }],
      ...spec,
    },
  });
}

export function editLivePatch(
  kc: KubeConfig,
  name: string,
  spec: Record<string, unknown>,
): Promise<unknown> {
  return mergePatch(kc, `${PATHS.livePatches}/${name}`, { spec });
}

export function readLivePatch(kc: KubeConfig, name: string): Promise<LivePatch | undefined> {
  return getOrUndefined<LivePatch>(kc, `${PATHS.livePatches}/${name}`);
}

export async function deleteLivePatch(kc: KubeConfig, name: string): Promise<void> {
  try {
    await rawJson(kc, 'DELETE', `${PATHS.livePatches}/${name}`);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** Sets a node's simulator annotations; null removes one. */
export function annotateNode(
  kc: KubeConfig,
  node: string,
  annotations: Record<string, string | null>,
): Promise<unknown> {
  return mergePatch(kc, `${PATHS.nodes}/${node}`, { metadata: { annotations } });
}

/** Sets a node's labels; null removes one. */
export function labelNode(
  kc: KubeConfig,
  node: string,
  labels: Record<string, string | null>,
): Promise<unknown> {
  return mergePatch(kc, `${PATHS.nodes}/${node}`, { metadata: { labels } });
}

/** Replaces a LivePatchNode's spec.patches, as the controller would (for scenarios without one). */
export function setNodePatches(
  kc: KubeConfig,
  node: string,
  patches: readonly DesiredPatch[],
): Promise<unknown> {
  return mergePatch(kc, `${PATHS.livePatchNodes}/${node}`, { spec: { patches } });
}

export async function leaseHolder(kc: KubeConfig): Promise<string | undefined> {
  const lease = await getOrUndefined<{ spec?: { holderIdentity?: string | null } }>(
    kc,
    '/apis/coordination.k8s.io/v1/namespaces/default/leases/livepatch-controller',
  );
  return lease?.spec?.holderIdentity ?? undefined;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `ok`; a failed read counts as none: the API server may be down on purpose. */
export const until = <T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs: number,
  intervalMs = 200,
): Promise<Polled<T>> => poll(read, ok, timeoutMs, { intervalMs, retryErrors: true });
