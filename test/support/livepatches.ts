// LivePatch manifests for tests, pointing at simulated modules on disk, and
// what the nodes themselves report about them.
import type { LivePatch, LivePatchNode, ObservedPatch } from '../../src/api/generated/types.js';
import { kubectlJson, kubectlOk } from './kubectl.js';
import { writeSimModule } from '../../lab/sim-modules.js';

export interface LivePatchOptions {
  readonly kernel: string;
  readonly spec?: Record<string, unknown>;
}

/** `kubectl apply` of a LivePatch with this whole spec, as a user would. */
export async function applyLivePatchSpec(name: string, spec: object): Promise<void> {
  const manifest = {
    apiVersion: 'livepatch.io/v1alpha1',
    kind: 'LivePatch',
    metadata: { name },
    spec,
  };
  await kubectlOk(['apply', '-f', '-'], JSON.stringify(manifest));
}

export async function applyLivePatch(name: string, o: LivePatchOptions): Promise<void> {
  const patchName = `livepatch_${name.replaceAll('-', '_')}`;
  const module = await writeSimModule(patchName, o.kernel);
  await applyLivePatchSpec(name, {
    patchName,
    kernels: [{ release: o.kernel, module: { hostPath: module.hostPath, sha256: module.sha256 } }],
    ...o.spec,
  });
}

export function getLivePatch(name: string): Promise<LivePatch> {
  return kubectlJson<LivePatch>(['get', 'lp', name]);
}

/** Each node's own report on one LivePatch, by node name. */
export async function nodeReports(
  livePatch: string,
): Promise<Map<string, ObservedPatch | undefined>> {
  const list = await kubectlJson<{ items: LivePatchNode[] }>(['get', 'lpn']);
  return new Map(
    list.items.map((n) => [
      n.metadata.name ?? '',
      n.status?.patches?.find((p) => p.livePatch === livePatch),
    ]),
  );
}

export const IN_TRANSITION: ReadonlySet<string> = new Set([
  'Loading',
  'Transitioning',
  'Reversing',
  'Unpatching',
]);

export async function eventsFor(name: string): Promise<{ reason: string; message: string }[]> {
  const list = await kubectlJson<{
    items: { reason: string; message: string; involvedObject: { kind: string } }[];
  }>(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${name}`]);
  return list.items
    .filter((e) => e.involvedObject.kind === 'LivePatch')
    .map(({ reason, message }) => ({ reason, message }));
}
