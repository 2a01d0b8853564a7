// Simulated module files on disk, with their checksums, for LivePatch and
// LivePatchNode specs that point at them through hostPath.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSimModuleFile, type SimModuleOptions } from '../agent/kernel/sim/sim-module.js';

export interface ModuleOnDisk {
  readonly hostPath: string;
  readonly sha256: string;
}

let dir: string | undefined;

export async function writeSimModule(
  name: string,
  kernel: string,
  replace = false,
  more: Partial<SimModuleOptions> = {},
): Promise<ModuleOnDisk> {
  dir ??= await mkdtemp(join(tmpdir(), 'livepatch-modules-'));
  const file = await writeSimModuleFile(dir, { ...more, name, kernel, replace });
  return { hostPath: file.path, sha256: file.sha256 };
}
