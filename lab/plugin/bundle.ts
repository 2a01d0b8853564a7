// `kubectl-livepatch` as one file: the plugin and every package it uses
// (client-node for exec and auth-provider users included) bundled by esbuild
// into a single ES module that needs only `node` on PATH, plus the licence
// texts of what it holds. The oldest Node it claims is the newest `engines`
// floor among the bundled packages (undici's today).
import { build } from 'esbuild';
import { chmod, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { repositoryRoot } from '../../src/paths.js';

/** The oldest Node the bundle claims; test/integration/plugin-bundle.test.ts runs it on exactly this one. */
export const OLDEST_NODE = '22.19.0';

export interface PluginBundle {
  /** The single executable file. */
  readonly file: string;
  readonly bytes: number;
  /** The licence texts of the packages inside, one after another. */
  readonly thirdPartyLicenses: string;
}

/** The package folders (under node_modules) whose files went into the bundle. */
function bundledPackages(inputs: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const input of inputs) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m?.[1]) dirs.add(m[1]);
  }
  return [...dirs].sort();
}

async function licenseOf(dir: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    license?: string;
  };
  for (const name of ['LICENSE', 'LICENSE.md', 'LICENSE.txt', 'license', 'LICENCE', 'LICENSE-MIT'])
    try {
      const text = await readFile(join(dir, name), 'utf8');
      return `${pkg.name} ${pkg.version} (${pkg.license ?? 'see below'})\n\n${text.trim()}\n`;
    } catch {
      // Not this name; the next.
    }
  return `${pkg.name} ${pkg.version}: ${pkg.license ?? 'no licence stated'} (no licence file in the package)\n`;
}

/** Bundles dist/src/cli/kubectl-livepatch.js (run `npm run build` first) into `outDir`/kubectl-livepatch. */
export async function bundlePlugin(outDir: string): Promise<PluginBundle> {
  const root = repositoryRoot();
  const file = join(outDir, 'kubectl-livepatch');
  const result = await build({
    absWorkingDir: root,
    entryPoints: [join(root, 'dist', 'src', 'cli', 'kubectl-livepatch.js')],
    outfile: file,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: `node${OLDEST_NODE}`,
    minify: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    // Bundled CommonJS packages require Node's own modules; an ES module has no require of its own.
    banner: {
      js: "import { createRequire as __livepatchRequire } from 'node:module'; const require = __livepatchRequire(import.meta.url);",
    },
  });
  await chmod(file, 0o755);
  const packages = bundledPackages(Object.keys(result.metafile.inputs));
  const licenses = await Promise.all(packages.map((d) => licenseOf(join(root, d))));
  const { size: bytes } = await stat(file);
  return { file, bytes, thirdPartyLicenses: licenses.join(`\n${'-'.repeat(78)}\n\n`) };
}
