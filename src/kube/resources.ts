// Typed paths and small writes for the operator's resources and the core
// objects it touches. All JSON goes through raw.ts: no serializer in between.
import type { KubeConfig } from '@kubernetes/client-node';
import { GROUP, LIVEPATCH, LIVEPATCH_NODE, VERSION } from '../api/constants.js';
import { rawJson, RawApiError } from './raw.js';

export const PATHS = {
  livePatches: `/apis/${GROUP}/${VERSION}/${LIVEPATCH.plural}`,
  livePatchNodes: `/apis/${GROUP}/${VERSION}/${LIVEPATCH_NODE.plural}`,
  nodes: '/api/v1/nodes',
  events: (namespace: string) => `/api/v1/namespaces/${namespace}/events`,
} as const;

export const isNotFound = (err: unknown): boolean => err instanceof RawApiError && err.code === 404;
export const isConflict = (err: unknown): boolean => err instanceof RawApiError && err.code === 409;
export const isAlreadyExists = isConflict;

export function mergePatch<T>(kc: KubeConfig, path: string, patch: unknown): Promise<T> {
  return rawJson<T>(kc, 'PATCH', path, patch, 'application/merge-patch+json');
}

/** Merge-patches the status subresource: only status changes, generation stays. */
export function patchStatus<T>(kc: KubeConfig, objectPath: string, status: unknown): Promise<T> {
  return mergePatch<T>(kc, `${objectPath}/status`, { status });
}

export async function getOrUndefined<T>(kc: KubeConfig, path: string): Promise<T | undefined> {
  try {
    return await rawJson<T>(kc, 'GET', path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
