// A cluster as a cluster runs the chart, for one test file: control plane,
// controller-manager, scheduler, test kubelets for simulated nodes, all in a
// network namespace of their own (host.ts). The test reaches it the way an
// administrator does, with kubectl and helm, run in that namespace with the
// admin's kubeconfig; the operator's own processes only ever get the tokens
// of their Pods. Needs root (network, mount and PID namespaces).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureClusterComponents, ensureHelm } from '../../../lab/controlplane/assets.js';
import { createLogger } from '../../../src/log.js';
import { repositoryRoot } from '../../../src/paths.js';
import type { KubectlResult } from '../kubectl.js';
import type { HostConfig, HostReady } from './host.js';
import type { SimulatedNode } from './kubelet.js';

export interface MiniCluster {
  readonly kubeconfig: string;
  readonly workDir: string;
  kubectl(args: readonly string[], stdin?: string): Promise<KubectlResult>;
  kubectlOk(args: readonly string[], stdin?: string): Promise<string>;
  kubectlJson<T>(args: readonly string[]): Promise<T>;
  helm(args: readonly string[]): Promise<KubectlResult>;
  /** Any command in the cluster's network (curl to the API server, say). */
  exec(command: string, args: readonly string[], stdin?: string): Promise<KubectlResult>;
  /** The last lines of every container's log and of the cluster's own, for a failed test. */
  diagnostics(): Promise<string>;
  stop(): Promise<void>;
}

export interface MiniClusterOptions {
  readonly nodes: readonly SimulatedNode[];
  readonly images: HostConfig['images'];
}

const STARTUP_TIMEOUT_MS = 180_000;

function waitForReady(host: ChildProcess, output: () => string): Promise<HostReady> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new Error(
          `the mini cluster did not start within ${STARTUP_TIMEOUT_MS / 1000}s:\n${output()}`,
        ),
      );
    }, STARTUP_TIMEOUT_MS);
    const check = (): void => {
      const line = /^MINICLUSTER (.*)$/m.exec(output())?.[1];
      if (!line) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as HostReady);
    };
    host.stdout?.on('data', check);
    host.on('exit', (code) => {
      clearTimeout(timer);
      reject(
        new Error(`the mini cluster exited (${code ?? 'signal'}) before it was up:\n${output()}`),
      );
    });
  });
}

function runIn(
  pid: number,
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'nsenter',
      [`--net=/proc/${pid}/ns/net`, '--', command, ...args],
      { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

async function tail(file: string, lines = 40): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export async function startMiniCluster(o: MiniClusterOptions): Promise<MiniCluster> {
  if (process.getuid?.() !== 0)
    throw new Error('the mini cluster needs root: it makes network, mount and PID namespaces');
  const log = createLogger({
    component: 'minicluster',
    format: 'text',
    level: process.env['LOG_LEVEL'] ?? 'warn',
  });
  // Built here, before the host starts, so that a first run's long builds are not its startup.
  await ensureClusterComponents(log);
  const helmBinary = await ensureHelm(log);
  const workDir = await mkdtemp(join(tmpdir(), 'livepatch-minicluster-'));
  const config: HostConfig = { workDir, nodes: o.nodes, images: o.images };
  const hostScript = join(repositoryRoot(), 'dist', 'test', 'support', 'minicluster', 'host.js');
  const host = spawn(
    'setpriv',
    [
      '--pdeathsig',
      'TERM',
      '--',
      'unshare',
      '--net',
      '--',
      process.execPath,
      hostScript,
      JSON.stringify(config),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let output = '';
  host.stdout.on('data', (d: Buffer) => (output += d.toString()));
  host.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => {
    host.on('exit', () => {
      resolve();
    });
  });
  const ready = await waitForReady(host, () => output);
  const pid = host.pid ?? 0;
  const kubeEnv = { KUBECONFIG: ready.kubeconfig };
  const helmEnv = {
    ...kubeEnv,
    HELM_CACHE_HOME: join(workDir, 'helm', 'cache'),
    HELM_CONFIG_HOME: join(workDir, 'helm', 'config'),
    HELM_DATA_HOME: join(workDir, 'helm', 'data'),
  };
  const kubectl = (args: readonly string[], stdin?: string): Promise<KubectlResult> =>
    runIn(pid, process.env['KUBECTL'] ?? 'kubectl', args, kubeEnv, stdin);
  const kubectlOk = async (args: readonly string[], stdin?: string): Promise<string> => {
    const r = await kubectl(args, stdin);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  };
  return {
    kubeconfig: ready.kubeconfig,
    workDir,
    kubectl,
    kubectlOk,
    kubectlJson: async <T>(args: readonly string[]) =>
      JSON.parse(await kubectlOk([...args, '-o', 'json'])) as T,
    helm: (args) => runIn(pid, helmBinary, args, helmEnv),
    exec: (command, args, stdin) => runIn(pid, command, args, {}, stdin),
    diagnostics: async () => {
      const { stdout } = await new Promise<{ stdout: string }>((resolve) => {
        execFile('find', [workDir, ready.controlPlaneDir, '-name', '*.log'], (_e, out) => {
          resolve({ stdout: out });
        });
      });
      const files = stdout.split('\n').filter(Boolean);
      const parts = await Promise.all(files.map(async (f) => `==> ${f}\n${await tail(f)}`));
      return [`==> host\n${output.split('\n').slice(-40).join('\n')}`, ...parts].join('\n\n');
    },
    stop: async () => {
      host.kill('SIGTERM');
      const timer = setTimeout(() => host.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
