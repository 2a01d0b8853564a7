// A Pod's volumes on the node, as a kubelet makes them: emptyDir folders, the
// projected service-account volume (a token the API server binds to this Pod
// through TokenRequest, the cluster's CA from the kube-root-ca.crt ConfigMap,
// the namespace from the downward API), host paths. Requests go out with the
// node's own identity, which the Node authorizer limits to this node's Pods.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { KubeConfig } from '../../../src/kube/config.js';
import { rawJson } from '../../../src/kube/raw.js';
import type { FieldRef, Pod, ProjectedSource, Volume } from './pod-types.js';

/** What the downward API says about a Pod (env and volumes). */
export function fieldValue(pod: Pod, ref: FieldRef, podIP: string, hostIP: string): string {
  const path = ref.fieldPath;
  const keyed = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (keyed) {
    const map = keyed[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations;
    return map?.[keyed[2] ?? ''] ?? '';
  }
  const values: Record<string, string | undefined> = {
    'metadata.name': pod.metadata.name,
    'metadata.namespace': pod.metadata.namespace,
    'metadata.uid': pod.metadata.uid,
    'spec.nodeName': pod.spec.nodeName,
    'spec.serviceAccountName': pod.spec.serviceAccountName,
    'status.podIP': podIP,
    'status.hostIP': hostIP,
  };
  const value = values[path];
  if (value === undefined) throw new Error(`the test kubelet does not know fieldPath ${path}`);
  return value;
}

interface TokenRequest {
  status: { token: string };
}

async function projectedFile(dir: string, path: string, content: string): Promise<void> {
  const file = join(dir, path);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content, { mode: 0o644 });
}

async function project(
  kc: KubeConfig,
  pod: Pod,
  source: ProjectedSource,
  dir: string,
  ips: { podIP: string; hostIP: string },
): Promise<void> {
  const ns = pod.metadata.namespace;
  const sat = source.serviceAccountToken;
  if (sat) {
    const sa = pod.spec.serviceAccountName ?? 'default';
    const request = await rawJson<TokenRequest>(
      kc,
      'POST',
      `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          audiences: sat.audience ? [sat.audience] : [],
          expirationSeconds: sat.expirationSeconds ?? 3600,
          boundObjectRef: {
            apiVersion: 'v1',
            kind: 'Pod',
            name: pod.metadata.name,
            uid: pod.metadata.uid,
          },
        },
      },
    );
    await projectedFile(dir, sat.path, request.status.token);
  }
  if (source.configMap) {
    const cm = await rawJson<{ data?: Record<string, string> }>(
      kc,
      'GET',
      `/api/v1/namespaces/${ns}/configmaps/${source.configMap.name}`,
    );
    const items =
      source.configMap.items ?? Object.keys(cm.data ?? {}).map((key) => ({ key, path: key }));
    for (const item of items) await projectedFile(dir, item.path, cm.data?.[item.key] ?? '');
  }
  for (const item of source.downwardAPI?.items ?? []) {
    if (item.fieldRef)
      await projectedFile(dir, item.path, fieldValue(pod, item.fieldRef, ips.podIP, ips.hostIP));
  }
}

/** Makes every volume of `pod` under `podDir`; returns the host folder of each, by name. */
export async function makeVolumes(
  kc: KubeConfig,
  pod: Pod,
  podDir: string,
  ips: { podIP: string; hostIP: string },
): Promise<Map<string, string>> {
  const made = new Map<string, string>();
  for (const volume of pod.spec.volumes ?? [])
    made.set(volume.name, await makeVolume(kc, pod, volume, podDir, ips));
  return made;
}

async function makeVolume(
  kc: KubeConfig,
  pod: Pod,
  volume: Volume,
  podDir: string,
  ips: { podIP: string; hostIP: string },
): Promise<string> {
  if (volume.hostPath) return volume.hostPath.path;
  const dir = join(podDir, 'volumes', volume.name);
  await mkdir(dir, { recursive: true });
  if (volume.emptyDir) {
    // As the kubelet does: any user of the Pod may write its emptyDir.
    await chmod(dir, 0o777);
    return dir;
  }
  if (volume.projected) {
    for (const source of volume.projected.sources) await project(kc, pod, source, dir, ips);
    return dir;
  }
  throw new Error(
    `volume ${volume.name}: the test kubelet makes emptyDir, hostPath and projected volumes only`,
  );
}
