// Simulated module files on disk, with their checksums, for LivePatch and
// LivePatchNode specs that point at them through hostPath.
import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSimModule, serializeSimModule } from '../../agent/kernel/sim-module.js';

export interface ModuleOnDisk {
  readonly hostPath: string;
  readonly sha256: string;
}

let dir: string | undefined;

export async function writeSimModule(
  name: string,
  kernel: string,
  replace = false,
): Promise<ModuleOnDisk> {
  dir ??= await mkdtemp(join(tmpdir(), 'livepatch-modules-'));
  const text = serializeSimModule(buildSimModule({ name, kernel, replace }));
  const hostPath = join(dir, `${name}-${kernel}.ko`);
  await writeFile(hostPath, text);
  return { hostPath, sha256: createHash('sha256').update(text).digest('hex') };
}
