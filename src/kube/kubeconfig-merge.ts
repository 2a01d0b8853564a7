// Several kubeconfig files read as one, as kubectl reads $KUBECONFIG: for a
// cluster, user or context name the first file that has it wins, and the
// current-context is the first file's that sets one. File paths inside each
// file are relative to that file's folder, so they are made absolute first.
import { dirname, isAbsolute, join } from 'node:path';

export type Entry = Readonly<Record<string, unknown>>;

interface Named {
  readonly name: string;
}

export interface KubeconfigFile {
  readonly 'current-context'?: string;
  readonly clusters?: readonly (Named & { readonly cluster?: Entry })[];
  readonly users?: readonly (Named & { readonly user?: Entry })[];
  readonly contexts?: readonly (Named & {
    readonly context?: { readonly cluster?: string; readonly user?: string };
  })[];
}

/** The fields of each kind of entry that name files. */
const FILE_FIELDS = {
  cluster: ['certificate-authority'],
  user: ['client-certificate', 'client-key', 'tokenFile'],
} as const;

function absolute(entry: Entry | undefined, fields: readonly string[], base: string): Entry {
  const out: Record<string, unknown> = { ...entry };
  for (const f of fields) {
    const v = out[f];
    if (typeof v === 'string' && v !== '' && !isAbsolute(v)) out[f] = join(dirname(base), v);
  }
  return out;
}

function firstByName<T extends Named>(lists: readonly (readonly T[])[]): T[] {
  const seen = new Map<string, T>();
  for (const list of lists) for (const e of list) if (!seen.has(e.name)) seen.set(e.name, e);
  return [...seen.values()];
}

export function mergeKubeconfigs(
  files: readonly { readonly path: string; readonly file: KubeconfigFile }[],
): KubeconfigFile {
  const current = files.map((f) => f.file['current-context']).find((c) => c);
  return {
    ...(current ? { 'current-context': current } : {}),
    clusters: firstByName(
      files.map(({ path, file }) =>
        (file.clusters ?? []).map((c) => ({
          name: c.name,
          cluster: absolute(c.cluster, FILE_FIELDS.cluster, path),
        })),
      ),
    ),
    users: firstByName(
      files.map(({ path, file }) =>
        (file.users ?? []).map((u) => ({
          name: u.name,
          user: absolute(u.user, FILE_FIELDS.user, path),
        })),
      ),
    ),
    contexts: firstByName(files.map(({ file }) => file.contexts ?? [])),
  };
}
