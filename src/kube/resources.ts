// Typed paths and small writes for the operator's resources and the core
// objects it touches. All JSON goes through raw.ts: no serializer in between.
import type { KubeConfig } from './config.js';
import { FIELD_MANAGER, GROUP, LIVEPATCH, LIVEPATCH_NODE, VERSION } from '../api/constants.js';
import { rawJson, RawApiError } from './raw.js';

export const PATHS = {
  livePatches: `/apis/${GROUP}/${VERSION}/${LIVEPATCH.plural}`,
  livePatchNodes: `/apis/${GROUP}/${VERSION}/${LIVEPATCH_NODE.plural}`,
  nodes: '/api/v1/nodes',
  events: (namespace: string) => `/api/v1/namespaces/${namespace}/events`,
  pods: (namespace: string) => `/api/v1/namespaces/${namespace}/pods`,
} as const;

/** The fields of a core/v1 Pod the operator reads (an agent's Pod, for its liveness). */
export interface PodObject {
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    deletionTimestamp?: string;
  };
  spec?: { nodeName?: string };
  status?: {
    conditions?: { type: string; status: string }[];
    containerStatuses?: { started?: boolean; state?: { running?: object } }[];
  };
}

/**
 * Only what tells whether an agent's Pod is alive: name, uid, node, Ready,
 * and whether its containers run and have started. At 10,000 nodes a whole
 * Pod (managedFields, spec, volumes) would be most of the controller's heap.
 */
export function podEssentials(pod: PodObject): PodObject {
  const m = pod.metadata;
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  const containers = pod.status?.containerStatuses ?? [];
  return {
    metadata: {
      name: m.name,
      ...(m.namespace ? { namespace: m.namespace } : {}),
      ...(m.uid ? { uid: m.uid } : {}),
      ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
      ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
    },
    spec: pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {},
    status: {
      ...(ready ? { conditions: [{ type: ready.type, status: ready.status }] } : {}),
      containerStatuses: containers.map((c) => ({
        ...(c.started !== undefined ? { started: c.started } : {}),
        state: c.state?.running ? { running: {} } : {},
      })),
    },
  };
}

/** The fields of a core/v1 Node the operator reads. */
export interface NodeObject {
  metadata: {
    name: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: { providerID?: string };
  status?: {
    nodeInfo?: { kernelVersion?: string; bootID?: string };
    conditions?: { type: string; status: string }[];
  };
}

/** An object without metadata.managedFields: bookkeeping nobody here reads, often half the bytes. */
export function withoutManagedFields<T extends { metadata?: object }>(object: T): T {
  if (!object.metadata || !('managedFields' in object.metadata)) return object;
  const metadata: { managedFields?: unknown } = { ...object.metadata };
  delete metadata.managedFields;
  return { ...object, metadata };
}

/** Only the fields of a Node that the controller reads: name, labels, kernel, boot, Ready. */
export function nodeEssentials(node: NodeObject): NodeObject {
  const kernelVersion = node.status?.nodeInfo?.kernelVersion;
  const bootID = node.status?.nodeInfo?.bootID;
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  return {
    metadata: {
      name: node.metadata.name,
      ...(node.metadata.uid ? { uid: node.metadata.uid } : {}),
      ...(node.metadata.labels ? { labels: node.metadata.labels } : {}),
      ...(node.metadata.resourceVersion ? { resourceVersion: node.metadata.resourceVersion } : {}),
    },
    status: {
      ...(kernelVersion || bootID
        ? {
            nodeInfo: {
              ...(kernelVersion ? { kernelVersion } : {}),
              ...(bootID ? { bootID } : {}),
            },
          }
        : {}),
      ...(ready ? { conditions: [{ type: ready.type, status: ready.status }] } : {}),
    },
  };
}

export const isNotFound = (err: unknown): boolean => err instanceof RawApiError && err.code === 404;
export const isConflict = (err: unknown): boolean => err instanceof RawApiError && err.code === 409;

export type FieldManager = (typeof FIELD_MANAGER)[keyof typeof FIELD_MANAGER];

/** A JSON merge patch, recorded in managedFields under the component that wrote it. */
export function mergePatch<T>(
  kc: KubeConfig,
  path: string,
  patch: unknown,
  manager: FieldManager,
): Promise<T> {
  const query = `${path.includes('?') ? '&' : '?'}fieldManager=${manager}`;
  return rawJson<T>(kc, 'PATCH', path + query, patch, 'application/merge-patch+json');
}

/** Merge-patches the status subresource: only status changes, generation stays. */
export function patchStatus<T>(
  kc: KubeConfig,
  objectPath: string,
  status: unknown,
  manager: FieldManager,
): Promise<T> {
  return mergePatch<T>(kc, `${objectPath}/status`, { status }, manager);
}

export async function getOrUndefined<T>(kc: KubeConfig, path: string): Promise<T | undefined> {
  try {
    return await rawJson<T>(kc, 'GET', path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
