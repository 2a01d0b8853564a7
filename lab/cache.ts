// The lab's cache outside the tree (Go builds, kernels, image layers, Debian
// packages), each entry named by the versions it holds, and the lock that keeps two
// processes from building into the same entry.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../src/log.js';

/** $LIVEPATCH_CACHE_DIR, else $XDG_CACHE_HOME/livepatch-operator, else ~/.cache/livepatch-operator. */
export function cacheRoot(): string {
  const explicit = process.env['LIVEPATCH_CACHE_DIR'];
  if (explicit) return explicit;
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg && xdg !== '' ? xdg : join(homedir(), '.cache'), 'livepatch-operator');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes a directory lock so two processes never build into the same cache entry. */
export async function withLock<T>(
  lockDir: string,
  fn: () => Promise<T>,
  log: Logger,
  what: string,
): Promise<T> {
  for (let waited = 0; ; waited++) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => '0'));
      if (holder > 0 && !alive(holder)) {
        log.warn('removing a build lock left by a process that is gone', {
          lock: lockDir,
          pid: holder,
        });
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (waited % 30 === 0)
        log.info(`waiting for another process building ${what}`, { lock: lockDir });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}
