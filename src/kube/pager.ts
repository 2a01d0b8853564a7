// A list in pages: `limit` items per request, following `continue` tokens, each
// page handed on as it arrives so its caller keeps only what it needs of it and
// the whole collection is never one response in memory.
import type { KubeConfig } from './config.js';
import { rawJson } from './raw.js';

interface ListResponse {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: unknown[];
}

export interface ListedPages {
  /** The resourceVersion the whole list is consistent at. */
  readonly resourceVersion: string;
  /** The server split it (it honours `limit` for this request). */
  readonly paginated: boolean;
}

/**
 * GET path?query in pages of `limit` (undefined: one request). A continue
 * token carries the snapshot, so the pages after the first send no
 * resourceVersion. An expired token (410) is thrown to the caller, which
 * decides where to list from.
 */
export async function listPages(
  kc: KubeConfig,
  path: string,
  query: Readonly<Record<string, string>>,
  limit: number | undefined,
  onPage: (items: readonly unknown[]) => void,
): Promise<ListedPages> {
  let paginated = false;
  let token = '';
  for (;;) {
    const params = new URLSearchParams(query);
    if (limit !== undefined) params.set('limit', String(limit));
    if (token) {
      params.delete('resourceVersion');
      params.set('continue', token);
    }
    const page = await rawJson<ListResponse>(kc, 'GET', `${path}?${params.toString()}`);
    onPage(page.items ?? []);
    const next = page.metadata?.continue ?? '';
    if (!next) return { resourceVersion: page.metadata?.resourceVersion ?? '', paginated };
    paginated = true;
    token = next;
  }
}
