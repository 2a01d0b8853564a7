// Where the repository's own files are, whether running from src (jest) or dist (node).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The checkout's root: the nearest folder above this file whose package.json is ours. */
export function repositoryRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string };
      if (pkg.name === 'livepatch-operator') return (cached = dir);
    }
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error('cannot find the livepatch-operator checkout above ' + import.meta.url);
    dir = parent;
  }
}

/** The package version, reported by the agent and the controller. */
export function operatorVersion(): string {
  const pkg = JSON.parse(readFileSync(join(repositoryRoot(), 'package.json'), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
