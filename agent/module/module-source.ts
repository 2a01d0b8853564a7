// Gets a module file from where the LivePatch says (ConfigMap, http(s) URL,
// host path) and proves its size and sha256 before anything reaches the
// kernel. Every source is copied into the agent's module folder while it is
// hashed (never whole in memory); only a verified file, named by its
// checksum, is handed to insmod.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModuleSource } from '../../src/api/generated/types.js';
import type { KubeConfig } from '../../src/kube/config.js';
import { rawJson, RawApiError } from '../../src/kube/raw.js';
import { isDnsLabel, isDnsSubdomain, type PatchName } from '../../src/api/names.js';
import { download, type DownloadOptions } from './module-download.js';
import { ModuleSourceError } from './module-errors.js';
import { DEFAULT_URL_POLICY, shownUrl } from './module-policy.js';
import { decompressModule } from './module-decompress.js';
import { spool, tooLarge, type Spooled } from './module-spool.js';

export interface ModuleSourceOptions {
  readonly kubeConfig?: KubeConfig;
  /** Where verified modules are kept. */
  readonly moduleDir: string;
  /** Prefix for hostPath sources: the host's root as mounted in the agent's container ('/' on the host). */
  readonly hostRoot: string;
  /** The only namespace ConfigMap sources may be in; undefined: any. */
  readonly configMapNamespace?: string;
  /** Size limit, timeouts, redirects, extra CA; DEFAULT_URL_POLICY where absent. */
  readonly download?: Partial<DownloadOptions>;
}

/** Fetches a module into the module folder; `signal` abandons the fetch, leaving no file. */
export type ModuleFetcher = (
  name: PatchName,
  source: ModuleSource,
  signal?: AbortSignal,
) => Promise<string>;

/** In the name of a fetch's file until it is verified: `<patchName>.download-<pid>-<n>`. */
const DOWNLOAD_MARK = '.download-';

/** A spooled file and where it came from, for messages. */
interface Fetched extends Spooled {
  readonly where: string;
  /** A hint for a checksum mismatch particular to the source. */
  readonly hint?: string;
}

/**
 * What is wrong with a ConfigMap reference no object can have, or undefined.
 * Both names go into the API path: checked again here, in case the schema
 * that refuses them is missing or old.
 */
function badConfigMapName(ref: NonNullable<ModuleSource['configMap']>): string | undefined {
  if (!isDnsLabel(ref.namespace))
    return `namespace ${JSON.stringify(ref.namespace.slice(0, 80))} is not a DNS-1123 label`;
  if (!isDnsSubdomain(ref.name))
    return `name ${JSON.stringify(ref.name.slice(0, 260))} is not a DNS-1123 subdomain`;
  return undefined;
}

async function fromConfigMap(
  options: ModuleSourceOptions,
  ref: NonNullable<ModuleSource['configMap']>,
  path: string,
  maxBytes: number,
  signal: AbortSignal | undefined,
): Promise<Fetched> {
  const bad = badConfigMapName(ref);
  if (bad)
    throw new ModuleSourceError(
      `the module's ConfigMap ${bad}, so no ConfigMap can have it; nothing was loaded. ` +
        "Fix spec.kernels[].module.configMap, and install the operator's CRDs, which refuse it",
      false,
    );
  const kc = options.kubeConfig;
  const where = `ConfigMap ${ref.namespace}/${ref.name}`;
  if (!kc) throw new ModuleSourceError(`cannot read ${where}: no API access`, false);
  const allowed = options.configMapNamespace;
  if (allowed !== undefined && ref.namespace !== allowed) {
    throw new ModuleSourceError(
      `${where} is outside ${allowed}, the only namespace the agents read module ConfigMaps from ` +
        "(the chart's modules.configMapNamespace); nothing was loaded. Create the ConfigMap there and point the LivePatch at it",
      false,
    );
  }
  let cm: { data?: Record<string, string>; binaryData?: Record<string, string> };
  try {
    cm = await rawJson(
      kc,
      'GET',
      `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/configmaps/${encodeURIComponent(ref.name)}`,
    );
  } catch (err) {
    if (err instanceof RawApiError && err.code === 404)
      throw new ModuleSourceError(
        `${where} does not exist (deleted mid-rollout?); nothing was loaded. Create it again with the ` +
          `module under key ${ref.key}, then edit the LivePatch to retry the failed nodes`,
        false,
      );
    throw new ModuleSourceError(`cannot read ${where}: ${(err as Error).message}`, true);
  }
  const binary = cm.binaryData?.[ref.key];
  const text = cm.data?.[ref.key];
  const bytes =
    binary !== undefined
      ? Buffer.from(binary, 'base64')
      : text !== undefined
        ? Buffer.from(text, 'utf8')
        : undefined;
  if (bytes === undefined)
    throw new ModuleSourceError(
      `${where} has no key ${JSON.stringify(ref.key)} in binaryData or data`,
      false,
    );
  const hint =
    binary === undefined
      ? `the module is under data, which holds text: a binary module belongs under binaryData (kubectl create configmap --from-file puts it there)`
      : undefined;
  return {
    ...(await spool([bytes], path, maxBytes, where, signal)),
    where,
    ...(hint ? { hint } : {}),
  };
}

async function fromHostPath(
  hostRoot: string,
  path: string,
  to: string,
  maxBytes: number,
  signal: AbortSignal | undefined,
): Promise<Fetched> {
  const where = `hostPath ${path}`;
  // The CRD already refuses relative and '..' paths; check again, this is the node's filesystem.
  if (!path.startsWith('/') || path.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new ModuleSourceError(`${where} is not a normalized absolute path`, false);
  }
  const full = join(hostRoot, path);
  let info;
  try {
    info = await stat(full);
  } catch (err) {
    throw new ModuleSourceError(
      `cannot read ${where} on the node: ${(err as Error).message}`,
      false,
    );
  }
  // A device or a FIFO would never end (or never start): the kernel loop must not hang on it.
  if (!info.isFile())
    throw new ModuleSourceError(
      `${where} is not a regular file on the node (a directory, device or pipe); nothing was loaded`,
      false,
    );
  if (info.size > maxBytes) throw tooLarge(where, maxBytes, `${info.size} bytes`);
  return { ...(await spool(createReadStream(full), to, maxBytes, where, signal)), where };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function fetch(
  options: ModuleSourceOptions,
  dl: DownloadOptions,
  source: ModuleSource,
  tmp: string,
  signal: AbortSignal | undefined,
): Promise<Fetched> {
  if (source.url !== undefined) {
    const url = source.url;
    return download(url, dl, tmp, signal).then((s) => ({ ...s, where: shownUrl(url) }));
  }
  if (source.configMap !== undefined)
    return fromConfigMap(options, source.configMap, tmp, dl.maxBytes, signal);
  if (source.hostPath !== undefined)
    return fromHostPath(options.hostRoot, source.hostPath, tmp, dl.maxBytes, signal);
  return Promise.reject(new ModuleSourceError('the module has no source', false));
}

/** Size and checksum, in that order: an empty file is named as such, not as a checksum to fix. */
function verify(file: Fetched, expected: string): void {
  if (file.bytes === 0)
    throw new ModuleSourceError(
      `the module file from ${file.where} is empty (0 bytes); nothing was loaded. Publish the .ko there again`,
      false,
    );
  if (file.sha256 !== expected)
    throw new ModuleSourceError(
      `checksum mismatch: the module file from ${file.where} (${file.bytes} bytes) has sha256 ${file.sha256}, ` +
        `the LivePatch says ${expected}; nothing was loaded. The file is truncated or another build, ` +
        `or the checksum is stale: fix spec.kernels[].module.sha256 or the file${file.hint ? ` (${file.hint})` : ''}`,
      false,
    );
}

export function createModuleFetcher(options: ModuleSourceOptions): ModuleFetcher {
  const dl: DownloadOptions = { ...DEFAULT_URL_POLICY, ...options.download };
  // A fetch for an entry that changed may still run beside its successor's: each has its own file.
  let fetches = 0;
  return async (name, source, signal) => {
    await mkdir(options.moduleDir, { recursive: true });
    const tmp = join(options.moduleDir, `${name}${DOWNLOAD_MARK}${process.pid}-${++fetches}`);
    const plain = `${tmp}-plain`;
    try {
      const file = await fetch(options, dl, source, tmp, signal);
      verify(file, source.sha256);
      // The checksum is the published file's; what is checked and loaded is the plain .ko.
      const compressed = await decompressModule(tmp, plain, dl.maxBytes, file.where);
      const path = join(options.moduleDir, `${name}-${file.sha256.slice(0, 16)}.ko`);
      await rename(compressed ? plain : tmp, path);
      return path;
    } finally {
      await rm(tmp, { force: true });
      await rm(plain, { force: true });
    }
  };
}

/**
 * Removes the unverified files of fetches an earlier agent never finished: one
 * killed mid-download (SIGKILL skips its cleanup) leaves up to 16 MiB behind,
 * under a pid no later agent has. Call before this agent fetches anything.
 * Returns the names removed.
 */
export async function removeStaleDownloads(moduleDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(moduleDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const stale = names.filter((n) => n.includes(DOWNLOAD_MARK));
  await Promise.all(stale.map((n) => rm(join(moduleDir, n), { force: true })));
  return stale;
}
