// One cgroup subtree per harness (the kubelets' --cgroup-root lives under it):
// the kubelet refuses a cgroup root that does not exist, and cgroup folders
// outlive their processes, so the harness makes them and removes them, deepest
// first, in every hierarchy of the machine (cgroup v1 has one per controller).
import { readdir, readFile, rmdir, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';

const CGROUP_FS = '/sys/fs/cgroup';

/** The mounted hierarchies: /sys/fs/cgroup itself on v2, each controller's folder on v1. */
export async function hierarchies(): Promise<string[]> {
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  const points = mounts
    .split('\n')
    .map((line) => line.split(' '))
    .filter(([, point, type]) => (type === 'cgroup' || type === 'cgroup2') && point)
    .map(([, point]) => point ?? '');
  return points.filter((p) => p.startsWith(CGROUP_FS));
}

/** Makes `path` (like /livepatch-x/node-a) in every hierarchy; cpuset folders get their parent's CPUs and memory nodes. */
export async function makeCgroup(path: string): Promise<void> {
  for (const root of await hierarchies()) {
    let dir = root;
    for (const part of path.split('/').filter(Boolean)) {
      const parent = dir;
      dir = join(dir, part);
      await mkdir(dir, { recursive: true });
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        const own = await readFile(join(dir, file), 'utf8').catch(() => undefined);
        if (own === undefined || own.trim() !== '') continue;
        await writeFile(join(dir, file), await readFile(join(parent, file), 'utf8'));
      }
    }
  }
}

async function removeTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await removeTree(join(dir, e.name));
  await rmdir(dir).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
}

/** Removes `path` and everything under it from every hierarchy; its processes must be gone. */
export async function removeCgroup(path: string): Promise<void> {
  for (const root of await hierarchies()) {
    const dir = join(root, path);
    if (await stat(dir).catch(() => undefined)) await removeTree(dir);
  }
}

/** The memory limit (bytes) of the cgroup `path`, as the kernel enforces it. */
export async function memoryLimit(path: string): Promise<number> {
  const roots = await hierarchies();
  const v1 = roots.find((r) => r.endsWith('/memory'));
  const file = v1 ? join(v1, path, 'memory.limit_in_bytes') : join(CGROUP_FS, path, 'memory.max');
  const text = (await readFile(file, 'utf8')).trim();
  return text === 'max' ? Infinity : Number(text);
}
