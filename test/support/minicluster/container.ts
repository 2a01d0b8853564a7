// One container of a Pod, started as a container runtime starts it: in the
// Pod's network namespace, in mount, UTS (hostname: the Pod's name) and PID
// namespaces of its own, on an
// overlay of its image (read-only when the spec says so), with the Pod's
// volumes at their mount paths, /proc and a minimal /dev, as the user the
// spec (or the image) names, with the spec's environment only.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { UnpackedImage } from '../../../lab/image/unpack.js';

export interface Mount {
  readonly hostPath: string;
  readonly mountPath: string;
  readonly readOnly: boolean;
}

export interface ContainerLaunch {
  readonly sandboxPid: number;
  /** The Pod's name, which its containers see as their hostname. */
  readonly hostname: string;
  readonly image: UnpackedImage;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly mounts: readonly Mount[];
  readonly uid: number;
  readonly gid: number;
  readonly readOnlyRoot: boolean;
  readonly noNewPrivs: boolean;
  /** This container's own folder on the node: its overlay's upper layer and its log. */
  readonly dir: string;
}

export interface RunningContainer {
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs: number): Promise<void>;
}

const q = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** A mount path must not leave the container's root through a symlink of the image. */
async function checkMountPath(root: string, mountPath: string): Promise<void> {
  if (!mountPath.startsWith('/') || mountPath.split('/').includes('..'))
    throw new Error(`mount path ${mountPath} is not absolute and normalized`);
  let path = root;
  for (const part of mountPath.split('/').filter(Boolean)) {
    path = join(path, part);
    const st = await lstat(path).catch(() => undefined);
    if (!st) return;
    if (st.isSymbolicLink())
      throw new Error(`mount path ${mountPath} crosses a symlink in the image`);
  }
}

function script(l: ContainerLaunch, root: string): string {
  const upper = join(l.dir, 'upper');
  const work = join(l.dir, 'work');
  const lines = [
    'set -e',
    `hostname ${q(l.hostname)}`,
    'mount --make-rprivate /',
    `mount -t overlay overlay -o ${q(`lowerdir=${l.image.root},upperdir=${upper},workdir=${work}`)} ${q(root)}`,
    `mkdir -p ${q(`${root}/proc`)} ${q(`${root}/dev`)}`,
    `mount -t proc proc ${q(`${root}/proc`)}`,
    `mount -t tmpfs -o nosuid,mode=755 tmpfs ${q(`${root}/dev`)}`,
    `for d in null zero full random urandom tty; do : > ${q(root)}/dev/$d; mount --bind /dev/$d ${q(root)}/dev/$d; done`,
    `ln -s /proc/self/fd ${q(`${root}/dev/fd`)}`,
  ];
  for (const m of l.mounts) {
    const target = q(`${root}${m.mountPath}`);
    lines.push(`mkdir -p ${target}`, `mount --bind ${q(m.hostPath)} ${target}`);
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${target}`);
  }
  if (l.readOnlyRoot) lines.push(`mount -o remount,ro ${q(root)}`);
  const env = Object.entries(l.env).map(([k, v]) => q(`${k}=${v}`));
  const user = ['--setuid', String(l.uid), '--setgid', String(l.gid)];
  const nnp = l.noNewPrivs ? ['setpriv', '--no-new-privs', '--'] : [];
  const wd = l.image.config.WorkingDir ?? '/';
  const exec = [
    'env',
    '-i',
    ...env,
    ...nnp,
    'unshare',
    `--root=${q(root)}`,
    `--wd=${q(wd)}`,
    ...user,
    '--',
  ];
  lines.push(`exec ${[...exec, ...l.argv.map(q)].join(' ')}`);
  return lines.join('\n');
}

export async function startContainer(l: ContainerLaunch): Promise<RunningContainer> {
  const root = join(l.dir, 'rootfs');
  for (const d of ['upper', 'work', 'rootfs']) await mkdir(join(l.dir, d), { recursive: true });
  for (const m of l.mounts) await checkMountPath(l.image.root, m.mountPath);
  const logFile = join(l.dir, 'container.log');
  const log = createWriteStream(logFile, { flags: 'a' });
  // pdeathsig: the container dies with the kubelet; --kill-child: with its runtime process.
  const child: ChildProcess = spawn(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      'nsenter',
      '-t',
      String(l.sandboxPid),
      '-n',
      '--',
      'unshare',
      '--mount',
      '--uts',
      '--pid',
      '--fork',
      '--kill-child',
      '--',
      '/bin/sh',
      '-c',
      script(l, root),
    ],
    {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    },
  );
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const pid = child.pid;
  if (pid === undefined) throw new Error('cannot start the container');
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      resolve(code);
    });
  });
  const signal = (sig: NodeJS.Signals): void => {
    try {
      // The whole process group: the runtime process ignores SIGTERM, the container's init does not.
      process.kill(-pid, sig);
    } catch {
      // Already gone.
    }
  };
  return {
    pid,
    logFile,
    exited,
    stop: async (graceMs) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      signal('SIGTERM');
      const timer = setTimeout(() => {
        signal('SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
