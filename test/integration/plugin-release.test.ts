// The plugin's release as krew users get it: the archives and the manifest the
// release workflow publishes, checked by krew's own validator (which installs
// every platform from the manifest, checking each archive's sha256) and
// installed by krew, built from the Go module proxy.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  appendFile,
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  stat,
  symlink,
} from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { ensureKrew, type Krew } from '../../lab/plugin/krew.js';
import { OLDEST_NODE } from '../../lab/plugin/bundle.js';
import {
  buildLauncher,
  PLATFORMS,
  releasePlugin,
  type PluginRelease,
} from '../../lab/plugin/release.js';
import { createLogger } from '../../src/log.js';
import { onPath } from '../support/which.js';

const run = promisify(execFile);
const log = createLogger({ component: 'plugin-release', format: 'text', level: 'warn' });

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    version: string;
    platforms: {
      selector: { matchLabels: { os: string; arch: string } };
      uri: string;
      sha256: string;
      bin: string;
      files: { from: string; to: string }[];
    }[];
  };
}

let out = '';
let server: Server;
let baseUrl = '';
let release: PluginRelease;
let krew: Krew;
/** A folder holding krew as kubectl-krew, for `kubectl krew` and the validator. */
let krewPath = '';

/** Serves `out` over HTTP, as the release's download URL would. */
async function serve(dir: string): Promise<Server> {
  const s = createServer((req, res) => {
    const file = join(dir, basename(req.url ?? ''));
    const stream = createReadStream(file);
    stream.on('error', () => res.writeHead(404).end());
    stream.on('open', () => stream.pipe(res));
  });
  await new Promise<void>((resolve) => {
    s.listen(0, '127.0.0.1', resolve);
  });
  return s;
}

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'plugin-release-'));
  server = await serve(out);
  const address = server.address();
  baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`;
  release = await releasePlugin({
    version: 'v0.1.0',
    baseUrl,
    homepage: 'https://example.com/livepatch-operator',
    outDir: out,
  });
  krew = await ensureKrew(log);
  krewPath = await mkdtemp(join(tmpdir(), 'krew-bin-'));
  await copyFile(krew.krew, join(krewPath, 'kubectl-krew'));
}, 600_000);

afterAll(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
  for (const dir of [out, krewPath]) if (dir) await rm(dir, { recursive: true, force: true });
});

const pathWithKrew = (): string => `${krewPath}${delimiter}${process.env['PATH'] ?? ''}`;

describe('the plugin release', () => {
  test('one archive per platform, each listed with its own sha256 and download URL', async () => {
    const manifest = parse(await readFile(release.manifest, 'utf8')) as Manifest;
    expect(basename(release.manifest)).toBe('livepatch.yaml');
    expect(manifest.apiVersion).toBe('krew.googlecontainertools.github.com/v1alpha2');
    expect(manifest.kind).toBe('Plugin');
    expect(manifest.metadata.name).toBe('livepatch');
    expect(manifest.spec.version).toBe('v0.1.0');
    expect(manifest.spec.platforms.map((p) => p.selector.matchLabels)).toEqual(PLATFORMS);
    // The single file beside the archives is the one inside each.
    const single = await readFile(join(out, 'kubectl-livepatch'));
    expect((await stat(join(out, 'kubectl-livepatch'))).mode & 0o777).toBe(0o755);
    for (const [i, p] of manifest.spec.platforms.entries()) {
      const archive = release.archives[i];
      if (!archive) throw new Error(`no archive for platform ${i}`);
      const bytes = await readFile(archive.file);
      expect(p.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect(p.uri).toBe(`${baseUrl}${basename(archive.file)}`);
      const inside = await run('tar', ['-xzOf', archive.file, 'kubectl-livepatch'], {
        encoding: 'buffer',
        maxBuffer: 64 * 1024 * 1024,
      });
      expect(inside.stdout.equals(single)).toBe(true);
      const windows = p.selector.matchLabels.os === 'windows';
      expect(p.bin).toBe(windows ? 'kubectl-livepatch.exe' : 'kubectl-livepatch');
      const { stdout } = await run('tar', ['-tvzf', archive.file]);
      expect(stdout.trim().split('\n')).toEqual([
        expect.stringMatching(/^-rw-r--r-- 0\/0 .* LICENSE$/),
        expect.stringMatching(/^-rw-r--r-- 0\/0 .* THIRD-PARTY-LICENSES$/),
        expect.stringMatching(/^-rwxr-xr-x 0\/0 .* kubectl-livepatch$/),
        ...(windows ? [expect.stringMatching(/^-rwxr-xr-x 0\/0 .* kubectl-livepatch\.exe$/)] : []),
      ]);
    }
  });

  test("krew's validator accepts the manifest and installs every platform from it", async () => {
    const { stderr } = await run(krew.validator, ['-manifest', release.manifest], {
      env: { PATH: pathWithKrew() },
    });
    expect(stderr).toContain('structural validation OK');
    expect(stderr).toContain(`all ${PLATFORMS.length} spec.platforms installed fine`);
  }, 120_000);

  test('krew installs it and kubectl runs it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'krew-root-'));
    try {
      const env = { PATH: pathWithKrew(), KREW_ROOT: root, HOME: root };
      const kubectl = onPath(process.env['KUBECTL'] ?? 'kubectl');
      await run(kubectl, ['krew', 'install', `--manifest=${release.manifest}`], { env });
      // Only krew's bin folder and Node: the plugin comes from what krew installed.
      const { stdout } = await run(kubectl, ['livepatch', '--help'], {
        env: { ...env, PATH: `${join(root, 'bin')}${delimiter}${dirname(process.execPath)}` },
      });
      expect(stdout).toMatch(/^Usage: kubectl livepatch <command>/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 120_000);

  test('the Windows launcher, built for this machine, runs the script beside it through a link', async () => {
    const store = await mkdtemp(join(tmpdir(), 'launcher-store-'));
    const bin = await mkdtemp(join(tmpdir(), 'launcher-bin-'));
    try {
      const goos = process.platform === 'win32' ? 'windows' : process.platform;
      const goarch = process.arch === 'x64' ? 'amd64' : process.arch;
      const launcher = await buildLauncher(goos, goarch, store);
      await copyFile(join(out, 'kubectl-livepatch'), join(store, 'kubectl-livepatch'));
      // As krew installs it: a link in its bin folder to the launcher in its store.
      const link = join(bin, 'kubectl-livepatch.exe');
      await symlink(launcher, link);
      const env = { PATH: dirname(process.execPath) };
      const help = await run(link, ['--help'], { env });
      expect(help.stdout).toMatch(/^Usage: kubectl livepatch <command>/);
      // No command: the script prints its usage and exits 2, which the launcher passes on.
      await expect(run(link, [], { env })).rejects.toMatchObject({
        code: 2,
        stdout: expect.stringMatching(/^Usage: kubectl livepatch/),
      });
      const noNode = run(link, ['--help'], { env: { PATH: bin } });
      await expect(noNode).rejects.toMatchObject({
        code: 1,
        stderr: expect.stringContaining(`Node.js ${OLDEST_NODE} or later must be on PATH`),
      });
    } finally {
      for (const dir of [store, bin]) await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  test("krew's validator refuses an archive whose bytes are not the manifest's sha256", async () => {
    const tampered = await mkdtemp(join(tmpdir(), 'plugin-tampered-'));
    try {
      const copy = join(tampered, 'livepatch.yaml');
      await copyFile(release.manifest, copy);
      const first = release.archives[0];
      if (!first) throw new Error('no archive');
      await appendFile(first.file, Buffer.from([0]));
      await expect(
        run(krew.validator, ['-manifest', copy], { env: { PATH: pathWithKrew() } }),
      ).rejects.toThrow(/checksum does not match/);
    } finally {
      await rm(tampered, { recursive: true, force: true });
    }
  }, 120_000);

  test('a version krew cannot read is refused before anything is built', async () => {
    const dir = join(out, 'refused');
    await mkdir(dir);
    await expect(
      releasePlugin({ version: '0.1.0', baseUrl, homepage: 'https://example.com', outDir: dir }),
    ).rejects.toThrow(/semver with a leading v/);
  });
});
