// What goes into each layer of the image, staged in a folder: the Debian
// base (the C libraries Node needs, kmod's insmod, rmmod and modinfo), the
// project's pinned Node binary, and the operator (compiled afresh from the
// sources, with the production dependencies only). Nothing a developer needs
// (TypeScript, jest, source maps, type declarations, tests) is copied.
import { chmod, cp, lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { DebianPackage } from './debian.js';
import { runCommand } from '../command.js';

/** The unprivileged user the image runs as; the chart's controller runs as it too. */
export const IMAGE_USER = { name: 'livepatch', uid: 1000, gid: 1000 } as const;

/**
 * Node's C libraries, kmod for the sysfs backend, xz for .ko.xz modules (Node
 * decompresses zstd and gzip itself), Debian's identity and /etc/services.
 */
export const DEBIAN_PACKAGES = [
  'base-files',
  'netbase',
  'libc6',
  'libstdc++6',
  'kmod',
  'xz-utils',
] as const;

/** Paths of the Debian packages no program in the image reads (documentation, locales, init scripts). */
const DEBIAN_PRUNED = [
  'usr/share/man',
  'usr/share/info',
  'usr/share/locale',
  'usr/share/lintian',
  'usr/share/gcc',
  'usr/share/gdb',
  'etc/init.d',
];

const PASSWD = `root:x:0:0:root:/root:/usr/sbin/nologin
${IMAGE_USER.name}:x:${IMAGE_USER.uid}:${IMAGE_USER.gid}:livepatch-operator:/nonexistent:/usr/sbin/nologin
`;
const GROUP = `root:x:0:
${IMAGE_USER.name}:x:${IMAGE_USER.gid}:
`;

/** Documentation goes, each package's copyright notice stays. */
async function pruneDocs(root: string): Promise<void> {
  const docs = join(root, 'usr', 'share', 'doc');
  for (const pkg of await readdir(docs).catch(() => [])) {
    for (const f of await readdir(join(docs, pkg)).catch(() => [])) {
      if (f !== 'copyright') await rm(join(docs, pkg, f), { recursive: true, force: true });
    }
  }
}

/** The Debian packages, unpacked (their maintainer scripts do nothing a container needs). */
export async function stageBase(debs: readonly DebianPackage[], root: string): Promise<void> {
  await mkdir(root, { recursive: true });
  const status: string[] = [];
  for (const deb of debs) {
    await runCommand('dpkg-deb', ['-x', deb.file, root]);
    // Scanners (trivy, grype) find the packages here, as in distroless images.
    const stdout = await runCommand('dpkg-deb', ['-f', deb.file]);
    status.push(`${stdout.trimEnd()}\nStatus: install ok installed\n`);
  }
  for (const p of DEBIAN_PRUNED) await rm(join(root, p), { recursive: true, force: true });
  await pruneDocs(root);
  await mkdir(join(root, 'var', 'lib', 'dpkg', 'status.d'), { recursive: true });
  for (const [i, deb] of debs.entries())
    await writeFile(join(root, 'var', 'lib', 'dpkg', 'status.d', deb.name), status[i] ?? '');
  await writeFile(join(root, 'etc', 'passwd'), PASSWD);
  await writeFile(join(root, 'etc', 'group'), GROUP);
  await writeFile(
    join(root, 'etc', 'nsswitch.conf'),
    'passwd: files\ngroup: files\nhosts: files dns\n',
  );
  await mkdir(join(root, 'tmp'), { recursive: true });
  await mkdir(join(root, 'root'), { recursive: true });
}

/** The pinned Node binary, unchanged (its checksum is nodejs.org's). */
export async function stageNode(binary: string, root: string): Promise<void> {
  await mkdir(join(root, 'usr', 'local', 'bin'), { recursive: true });
  await cp(binary, join(root, 'usr', 'local', 'bin', 'node'));
}

interface LockEntry {
  readonly version?: string;
  readonly dev?: boolean;
  readonly integrity?: string;
  readonly license?: string;
}

interface Lockfile {
  readonly packages: Readonly<Record<string, LockEntry>>;
}

/** A production dependency as package-lock.json records it, and where the image holds it. */
export interface NpmPackage {
  /** node_modules/…, under /app. */
  readonly path: string;
  readonly name: string;
  readonly version: string;
  /** The registry tarball's integrity (sha512, base64), as npm ci checked it. */
  readonly integrity?: string;
  /** The package's own license expression. */
  readonly license?: string;
}

/** Files of a dependency nothing loads at run time: TypeScript sources and declarations, maps, docs. */
const DEV_ONLY_FILE = /\.([cm]?ts|map|md|markdown)$|^(\.npmignore|\.eslintrc.*|tsconfig\.json)$/i;

async function copyRuntimeFiles(from: string, to: string): Promise<void> {
  await cp(from, to, {
    recursive: true,
    filter: (src) => !DEV_ONLY_FILE.test(src.slice(src.lastIndexOf('/') + 1)),
  });
}

/**
 * The production dependencies, as package-lock.json marks them (no `dev: true`),
 * that npm installed (optional packages for other platforms are in the lock but
 * not on disk), nested ones too: what the image holds and its SBOM lists.
 */
export async function runtimePackages(repo: string): Promise<NpmPackage[]> {
  const lock = JSON.parse(await readFile(join(repo, 'package-lock.json'), 'utf8')) as Lockfile;
  const prod: NpmPackage[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path.startsWith('node_modules/') || entry.dev === true) continue;
    if (!(await lstat(join(repo, path)).catch(() => undefined))) continue;
    prod.push({
      path,
      name: path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length),
      version: entry.version ?? '',
      ...(entry.integrity ? { integrity: entry.integrity } : {}),
      ...(entry.license ? { license: entry.license } : {}),
    });
  }
  return prod.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** Copies the production dependencies into `app`; returns them. */
async function stageDependencies(repo: string, app: string): Promise<NpmPackage[]> {
  const prod = await runtimePackages(repo);
  for (const { path } of prod) {
    // A nested package is copied with its parent.
    if (prod.some((p) => p.path !== path && path.startsWith(`${p.path}/`))) continue;
    await copyRuntimeFiles(join(repo, path), join(app, path));
  }
  // Dev-only packages nested in production ones were copied with their parent: remove them.
  const lock = JSON.parse(await readFile(join(repo, 'package-lock.json'), 'utf8')) as Lockfile;
  for (const [path, entry] of Object.entries(lock.packages))
    if (entry.dev === true) await rm(join(app, path), { recursive: true, force: true });
  return prod;
}

/** The product's folders: all that the image runs. */
const PRODUCT_DIRS = ['src', 'agent'];

/** The product's executables, as the image's package.json names them. */
const PRODUCT_BIN = {
  'livepatch-operator': 'dist/src/cli/main.js',
  'kubectl-livepatch': 'dist/src/cli/kubectl-livepatch.js',
};

/** Compiles the product alone (tsconfig.product.json) into `out`; refuses a product that imports the lab. */
async function compileProduct(repo: string, out: string): Promise<void> {
  await rm(out, { recursive: true, force: true });
  // A fresh compile: dist/ may hold files of sources deleted since.
  await runCommand(
    process.execPath,
    [
      join(repo, 'node_modules', 'typescript', 'bin', 'tsc'),
      ...['-p', join(repo, 'tsconfig.product.json'), '--outDir', out],
      ...['--sourceMap', 'false', '--noCheck'],
    ],
    { cwd: repo },
  );
  // tsc follows imports out of `include`: anything else it wrote was imported by the product.
  const strays = (await readdir(out)).filter((d) => !PRODUCT_DIRS.includes(d));
  if (strays.length > 0)
    throw new Error(
      `the product imports ${strays.join(', ')}/: the image holds src/ and agent/ only (npm run lint names the import)`,
    );
}

/** The operator: the product compiled into `app`, with its production dependencies (returned). */
export async function stageApp(repo: string, root: string, scratch: string): Promise<NpmPackage[]> {
  const app = join(root, 'app');
  const out = join(scratch, 'tsc');
  await compileProduct(repo, out);
  for (const dir of PRODUCT_DIRS) await copyRuntimeFiles(join(out, dir), join(app, 'dist', dir));
  const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const keep = ['name', 'version', 'description', 'license', 'type', 'engines', 'dependencies'];
  const runtime = {
    ...Object.fromEntries(keep.filter((k) => k in pkg).map((k) => [k, pkg[k]])),
    bin: PRODUCT_BIN,
  };
  await writeFile(join(app, 'package.json'), `${JSON.stringify(runtime, null, 2)}\n`);
  return stageDependencies(repo, app);
}

/**
 * Permissions as a build machine's umask would not decide them: directories
 * and executables 0755, other files 0644, /tmp 1777.
 */
export async function normalizeModes(root: string, dir = root): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const st = await lstat(path);
    if (st.isSymbolicLink()) continue;
    if (st.isDirectory()) {
      await chmod(path, relative(root, path) === 'tmp' ? 0o1777 : 0o755);
      await normalizeModes(root, path);
    } else await chmod(path, st.mode & 0o111 ? 0o755 : 0o644);
  }
}
