// Gets a module file from where the LivePatch says (ConfigMap, http(s) URL,
// host path) and proves its sha256 before anything reaches the kernel. The
// verified file is written under the agent's module folder, named by its
// checksum, and only that path is handed to insmod.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { ModuleSource } from '../src/api/generated/types.js';
import type { PatchName } from '../src/api/names.js';

const MAX_BYTES = 64 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 60_000;

/** Why a module could not be used; `retryable` when a later attempt may succeed. */
export class ModuleSourceError extends Error {
  override readonly name = 'ModuleSourceError';
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export interface ModuleSourceOptions {
  readonly kubeConfig?: KubeConfig;
  /** Where verified modules are kept. */
  readonly moduleDir: string;
  /** Prefix for hostPath sources: the host's root as mounted in the agent's container ('/' on the host). */
  readonly hostRoot: string;
  /** The only namespace ConfigMap sources may be in; undefined: any. */
  readonly configMapNamespace?: string;
}

export type ModuleFetcher = (name: PatchName, source: ModuleSource) => Promise<string>;

async function fromUrl(url: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, {
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      redirect: 'follow',
    });
  } catch (err) {
    throw new ModuleSourceError(`cannot download ${url}: ${(err as Error).message}`, true);
  }
  if (!response.ok) {
    throw new ModuleSourceError(
      `cannot download ${url}: HTTP ${response.status}`,
      response.status >= 500,
    );
  }
  const length = Number(response.headers.get('content-length') ?? 0);
  if (length > MAX_BYTES)
    throw new ModuleSourceError(`${url} is ${length} bytes, over the ${MAX_BYTES} limit`, false);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length > MAX_BYTES)
    throw new ModuleSourceError(`${url} is over the ${MAX_BYTES}-byte limit`, false);
  return bytes;
}

async function fromConfigMap(
  options: ModuleSourceOptions,
  ref: NonNullable<ModuleSource['configMap']>,
): Promise<Uint8Array> {
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
  let cm;
  try {
    cm = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ namespace: ref.namespace, name: ref.name });
  } catch (err) {
    const code = (err as { code?: number }).code;
    const missing = code === 404;
    throw new ModuleSourceError(
      missing ? `${where} does not exist` : `cannot read ${where}: ${(err as Error).message}`,
      !missing,
    );
  }
  const binary = cm.binaryData?.[ref.key];
  if (binary !== undefined) return Buffer.from(binary, 'base64');
  const text = cm.data?.[ref.key];
  if (text !== undefined) return Buffer.from(text, 'utf8');
  throw new ModuleSourceError(
    `${where} has no key ${JSON.stringify(ref.key)} in binaryData or data`,
    false,
  );
}

async function fromHostPath(hostRoot: string, path: string): Promise<Uint8Array> {
  // The CRD already refuses relative and '..' paths; check again, this is the node's filesystem.
  if (!path.startsWith('/') || path.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new ModuleSourceError(`hostPath ${path} is not a normalized absolute path`, false);
  }
  try {
    return await readFile(join(hostRoot, path));
  } catch (err) {
    throw new ModuleSourceError(
      `cannot read hostPath ${path} on the node: ${(err as Error).message}`,
      false,
    );
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function createModuleFetcher(options: ModuleSourceOptions): ModuleFetcher {
  return async (name, source) => {
    let bytes: Uint8Array;
    if (source.url !== undefined) bytes = await fromUrl(source.url);
    else if (source.configMap !== undefined) bytes = await fromConfigMap(options, source.configMap);
    else if (source.hostPath !== undefined)
      bytes = await fromHostPath(options.hostRoot, source.hostPath);
    else throw new ModuleSourceError('the module has no source', false);
    const actual = sha256(bytes);
    if (actual !== source.sha256) {
      throw new ModuleSourceError(
        `checksum mismatch: the module file has sha256 ${actual}, the LivePatch says ${source.sha256}; ` +
          'nothing was loaded. Fix spec.kernels[].module.sha256 or the file.',
        false,
      );
    }
    await mkdir(options.moduleDir, { recursive: true });
    const path = join(options.moduleDir, `${name}-${actual.slice(0, 16)}.ko`);
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, bytes, { mode: 0o600 });
    await rename(tmp, path);
    return path;
  };
}
