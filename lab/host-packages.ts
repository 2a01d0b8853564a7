// What the lab needs installed on the host, and getting it: each harness names
// the commands (or files) it needs and the Debian package of each; as root on a
// Debian host the missing ones are installed with apt-get, elsewhere the
// harness says what is missing and its tests are skipped (or, where .ci/run
// requires them, fail).
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Logger } from '../src/log.js';
import { runCommand } from './command.js';

/** A command on PATH (or an absolute file) → the Debian package that brings it. */
export type HostNeeds = Readonly<Record<string, string>>;

const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

async function accessible(path: string, mode: number): Promise<boolean> {
  return access(path, mode).then(
    () => true,
    () => false,
  );
}

/** Whether a command is on PATH (or in the system folders), or an absolute file is readable. */
export async function present(what: string): Promise<boolean> {
  if (what.startsWith('/')) return accessible(what, constants.R_OK);
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), ...SYSTEM_DIRS];
  for (const dir of dirs)
    if (dir && (await accessible(join(dir, what), constants.X_OK))) return true;
  return false;
}

async function missingPackages(needs: HostNeeds): Promise<string[]> {
  const missing = new Set<string>();
  for (const [what, pkg] of Object.entries(needs)) if (!(await present(what))) missing.add(pkg);
  return [...missing];
}

/** Installs what is missing where it can; undefined when all is there, else why not. */
export async function ensureHostPackages(
  needs: HostNeeds,
  log: Logger,
  purpose: string,
): Promise<string | undefined> {
  let missing = await missingPackages(needs);
  if (missing.length === 0) return undefined;
  if (process.getuid?.() !== 0 || !(await present('apt-get')))
    return `missing host packages: ${missing.join(' ')} (install them, e.g. sudo apt-get install ${missing.join(' ')})`;
  log.info(`installing host packages for ${purpose}`, { packages: missing });
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  await runCommand('apt-get', ['update'], { env });
  await runCommand('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env });
  missing = await missingPackages(needs);
  return missing.length ? `apt-get could not install ${missing.join(' ')}` : undefined;
}
