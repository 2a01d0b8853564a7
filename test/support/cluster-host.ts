// What the image test and the chart's mini cluster need from this machine:
// root (network, mount, UTS and PID namespaces, chroot), iproute2 and
// util-linux for them, and apt with Debian's archive keyring to build the
// image. Run as root on Debian, missing packages are installed with apt-get;
// elsewhere these tests are skipped with one line saying what is missing,
// unless LIVEPATCH_CLUSTER_TESTS=require (.ci/run sets it): then a skip fails.
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Command (or file) → the Debian package that brings it. */
const NEEDED: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  unshare: 'util-linux',
  nsenter: 'util-linux',
  setpriv: 'util-linux',
  chroot: 'coreutils',
  tar: 'tar',
  'dpkg-deb': 'dpkg',
  'apt-get': 'apt',
  '/usr/share/keyrings/debian-archive-keyring.gpg': 'debian-archive-keyring',
};

async function present(what: string): Promise<boolean> {
  const candidates = what.startsWith('/')
    ? [what]
    : (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin')
        .split(delimiter)
        .concat(['/usr/sbin', '/sbin'])
        .map((dir) => join(dir, what));
  for (const path of candidates) {
    if (
      await access(path, what.startsWith('/') ? constants.R_OK : constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return true;
  }
  return false;
}

async function missingPackages(): Promise<string[]> {
  const missing = new Set<string>();
  for (const [what, pkg] of Object.entries(NEEDED)) if (!(await present(what))) missing.add(pkg);
  return [...missing];
}

let problem: Promise<string | undefined> | undefined;

/** Why this machine cannot run the image and cluster tests, or undefined when it can. */
export function clusterHostProblem(): Promise<string | undefined> {
  problem ??= (async () => {
    if (process.getuid?.() !== 0) return 'they need root (namespaces, chroot)';
    let missing = await missingPackages();
    if (missing.length === 0) return undefined;
    if (!(await present('apt-get'))) return `missing host packages: ${missing.join(' ')}`;
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    await run('apt-get', ['update'], { env });
    await run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env });
    missing = await missingPackages();
    return missing.length ? `apt-get could not install ${missing.join(' ')}` : undefined;
  })();
  return problem;
}

/** Set by .ci/run: there, a skipped image or cluster test is a failure. */
export function clusterTestsRequired(): boolean {
  return process.env['LIVEPATCH_CLUSTER_TESTS'] === 'require';
}
