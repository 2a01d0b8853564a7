// What an unpacked image holds, read the way a scanner reads it: the Debian
// packages of its dpkg status, the npm packages of its node_modules, the
// machine its executables are built for. And the Docker build context, as the
// Dockerfile's .dockerignore cuts it from the checkout.
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** name → "version architecture", from each file of var/lib/dpkg/status.d. */
export async function dpkgStatus(root: string): Promise<Map<string, string>> {
  const dir = join(root, 'var', 'lib', 'dpkg', 'status.d');
  const found = new Map<string, string>();
  for (const f of await readdir(dir)) {
    const text = await readFile(join(dir, f), 'utf8');
    const field = (name: string): string =>
      new RegExp(`^${name}: (.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
    found.set(field('Package'), `${field('Version')} ${field('Architecture')}`);
  }
  return found;
}

/** "node_modules/…/name@version" for every package folder under `app`/node_modules, nested ones too. */
export async function installedNpmPackages(app: string, under = ''): Promise<string[]> {
  const modules = join(app, under, 'node_modules');
  const entries = await readdir(modules).catch(() => [] as string[]);
  const found: string[] = [];
  for (const entry of entries.filter((e) => !e.startsWith('.'))) {
    const names = entry.startsWith('@')
      ? (await readdir(join(modules, entry))).map((s) => `${entry}/${s}`)
      : [entry];
    for (const name of names) {
      const path = join(under, 'node_modules', name);
      const pkg = JSON.parse(await readFile(join(app, path, 'package.json'), 'utf8')) as {
        name: string;
        version: string;
      };
      found.push(`${path}/${pkg.name}@${pkg.version}`);
      found.push(...(await installedNpmPackages(app, path)));
    }
  }
  return found;
}

/** ELF's e_machine of an executable: 0x3e x86-64, 0xb7 AArch64. */
export async function elfMachine(file: string): Promise<number> {
  const f = await open(file);
  try {
    const head = Buffer.alloc(20);
    await f.read(head, 0, 20, 0);
    return head.readUInt16LE(18);
  } finally {
    await f.close();
  }
}

/** A .dockerignore line as Docker matches it: against the whole path from the context's root. */
function dockerPattern(line: string): RegExp {
  const body = line
    .replace(/^\/+|\/+$/g, '')
    .split('/')
    .map((part) =>
      part === '**'
        ? '.*'
        : part
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
    )
    .join('/');
  return new RegExp(`^${body}$`);
}

/**
 * The files that `docker build .` sends from the checkout: every file under it
 * less what .dockerignore matches (a matched folder takes its contents; `!`
 * lines take paths back).
 */
export async function dockerContext(repo: string): Promise<Set<string>> {
  const rules = (await readFile(join(repo, '.dockerignore'), 'utf8'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => ({ keep: l.startsWith('!'), re: dockerPattern(l.replace(/^!/, '')) }));
  const ignored = (path: string): boolean => {
    let out = false;
    for (const r of rules) if (r.re.test(path)) out = !r.keep;
    return out;
  };
  const files = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(join(repo, dir), { withFileTypes: true })) {
      const path = dir === '' ? entry.name : `${dir}/${entry.name}`;
      // An ignored folder is not entered (this .dockerignore takes nothing back from inside one).
      if (ignored(path)) continue;
      if (entry.isDirectory()) await walk(path);
      else files.add(path);
    }
  };
  await walk('');
  return files;
}
