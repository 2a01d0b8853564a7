// A cluster of real kubelets and containerd on this machine, for one test file
// or one demo: everything runs in PID, mount and network namespaces of its own
// (host.ts is their PID 1), so stopping it, or the death of the process that
// started it, takes every process, mount and network device with it; the
// cgroup folders it made are removed here once their processes are gone.
// It is reached the way an administrator reaches a cluster, with kubectl and
// helm run in its network namespace with the admin's kubeconfig. Needs root.
import {
  execFile,
  spawn,
  type ChildProcess,
  type ChildProcessWithoutNullStreams,
} from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ensureClusterComponents, ensureHelm, ensureKubelet } from '../controlplane/assets.js';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { memoryLimit, removeCgroup } from './cgroups.js';
import type { HarnessNode, HostCommand, HostConfig, HostReady } from './host.js';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface KubeletCluster {
  readonly kubeconfig: string;
  readonly workDir: string;
  kubectl(args: readonly string[], stdin?: string): Promise<CommandResult>;
  kubectlOk(args: readonly string[], stdin?: string): Promise<string>;
  kubectlJson<T>(args: readonly string[]): Promise<T>;
  helm(args: readonly string[]): Promise<CommandResult>;
  /** Any command in the cluster's network (a request to the API server, say). */
  exec(command: string, args: readonly string[], stdin?: string): Promise<CommandResult>;
  /** Stops or starts the API server (etcd and everything else stay up). */
  control(command: HostCommand): Promise<void>;
  /** The memory limit the kernel enforces on a container (its cgroup's), in bytes. */
  containerMemoryLimit(
    node: string,
    podUid: string,
    qos: string,
    containerId: string,
  ): Promise<number>;
  /** The command lines of the processes in a node's cgroups: what runs on it, Pods included. */
  nodeProcesses(node: string): Promise<string[][]>;
  /** A container's output as its kubelet keeps it (the lines, without CRI's prefixes). */
  containerLog(node: string, pod: PodRef, container: string): Promise<string[]>;
  /** The last lines of every log (kubelets, containerd, control plane, containers), for a failed test. */
  diagnostics(): Promise<string>;
  stop(): Promise<void>;
}

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface KubeletClusterOptions {
  readonly nodes: readonly HarnessNode[];
  /** OCI archives to import into every node's containerd. */
  readonly images: readonly string[];
}

const STARTUP_TIMEOUT_MS = 300_000;

function waitForLine(
  host: ChildProcess,
  output: () => string,
  pattern: RegExp,
  timeoutMs: number,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      done();
      reject(
        new Error(`the kubelet harness did not answer within ${timeoutMs / 1000}s:\n${output()}`),
      );
    }, timeoutMs);
    const check = (): void => {
      const line = pattern.exec(output())?.[1];
      if (line === undefined) return;
      done();
      resolve(line);
    };
    const exited = (code: number | null): void => {
      done();
      reject(new Error(`the kubelet harness exited (${code ?? 'signal'}):\n${output()}`));
    };
    const done = (): void => {
      clearTimeout(timer);
      host.stdout?.off('data', check);
      host.off('exit', exited);
    };
    host.stdout?.on('data', check);
    host.on('exit', exited);
    check();
  });
}

function runIn(
  pid: number,
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<CommandResult> {
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

/** The command lines of the processes whose cgroup path starts with `prefix`, in any hierarchy. */
async function processesUnder(prefix: string): Promise<string[][]> {
  const found: string[][] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cgroups = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
    if (!cgroups.split('\n').some((line) => line.split(':')[2]?.startsWith(prefix))) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline) found.push(cmdline.split('\0').filter(Boolean));
  }
  return found;
}

/** A container's log lines from its kubelet's Pod log folder. */
async function containerLog(
  workDir: string,
  node: string,
  pod: PodRef,
  container: string,
): Promise<string[]> {
  const podDir = `${pod.namespace}_${pod.name}_${pod.uid}`;
  const dir = join(workDir, 'nodes', node, 'kubelet', 'pod-logs', podDir, container);
  const files = (await readdir(dir).catch(() => [])).sort();
  const text = await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
  // CRI log lines: "<time> <stream> <F|P> <text>".
  return text
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ').slice(3).join(' '));
}

async function diagnostics(workDir: string, hostOutput: string): Promise<string> {
  const { stdout } = await new Promise<{ stdout: string }>((resolve) => {
    execFile('find', [workDir, '-name', '*.log'], (_e, out) => {
      resolve({ stdout: out });
    });
  });
  const files = stdout.split('\n').filter(Boolean);
  const parts = await Promise.all(files.map(async (f) => `==> ${f}\n${await tail(f)}`));
  return [`==> host\n${hostOutput.split('\n').slice(-40).join('\n')}`, ...parts].join('\n\n');
}

/** Removes the harness's cgroups, waiting for the kernel to let the killed processes go. */
async function removeCgroupSoon(path: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await removeCgroup(path);
      return;
    } catch (err) {
      if (attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The host process, PID 1 of new PID, mount and network namespaces. */
function spawnHost(config: HostConfig): ChildProcessWithoutNullStreams {
  const hostScript = join(repositoryRoot(), 'dist', 'lab', 'kubelet', 'host.js');
  // unshare dies with this process (pdeathsig), and the host, PID 1 of the new namespace, with
  // unshare (--kill-child): the kernel then kills every process in it.
  return spawn(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      'unshare',
      '--net',
      '--mount',
      '--pid',
      '--fork',
      '--mount-proc',
      '--kill-child',
      '--',
      process.execPath,
      hostScript,
      JSON.stringify(config),
    ],
    // The control plane's own temporary folder lands in workDir too, and goes with it.
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: config.workDir } },
  );
}

interface RunningHost {
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<void>;
  readonly output: () => string;
}

function startHost(config: HostConfig): RunningHost {
  const child = spawnHost(config);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => {
    child.on('exit', () => {
      resolve();
    });
  });
  return { child, exited, output: () => output };
}

function clusterHandle(
  host: RunningHost,
  ready: HostReady,
  config: HostConfig,
  helmBinary: string,
  cleanUp: () => Promise<void>,
): KubeletCluster {
  const { child } = host;
  const pid = child.pid ?? 0;
  const kubeEnv = { KUBECONFIG: ready.kubeconfig };
  const helmEnv = {
    ...kubeEnv,
    HELM_CACHE_HOME: join(config.workDir, 'helm', 'cache'),
    HELM_CONFIG_HOME: join(config.workDir, 'helm', 'config'),
    HELM_DATA_HOME: join(config.workDir, 'helm', 'data'),
  };
  const kubectl = (args: readonly string[], stdin?: string): Promise<CommandResult> =>
    runIn(pid, process.env['KUBECTL'] ?? 'kubectl', args, kubeEnv, stdin);
  const kubectlOk = async (args: readonly string[], stdin?: string): Promise<string> => {
    const r = await kubectl(args, stdin);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  };
  return {
    kubeconfig: ready.kubeconfig,
    workDir: config.workDir,
    kubectl,
    kubectlOk,
    kubectlJson: async <T>(args: readonly string[]) =>
      JSON.parse(await kubectlOk([...args, '-o', 'json'])) as T,
    helm: (args) => runIn(pid, helmBinary, args, helmEnv),
    exec: (command, args, stdin) => runIn(pid, command, args, {}, stdin),
    control: async (command) => {
      const seen = host.output().length;
      child.stdin.write(`${command}\n`);
      const answer = await waitForLine(
        child,
        () => host.output().slice(seen),
        /^((?:DONE|FAILED) .*)$/m,
        120_000,
      );
      if (!answer.startsWith('DONE')) throw new Error(`the harness: ${answer}`);
    },
    containerMemoryLimit: (node, podUid, qos, containerId) =>
      memoryLimit(
        [
          config.cgroupRoot,
          node,
          'kubepods',
          ...(qos === 'guaranteed' ? [] : [qos]),
          `pod${podUid}`,
          containerId,
        ].join('/'),
      ),
    nodeProcesses: (node) => processesUnder(`${config.cgroupRoot}/${node}/`),
    containerLog: (node, pod, container) => containerLog(config.workDir, node, pod, container),
    diagnostics: () => diagnostics(config.workDir, host.output()),
    stop: async () => {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await host.exited;
      clearTimeout(timer);
      await cleanUp();
    },
  };
}

export async function startKubeletCluster(o: KubeletClusterOptions): Promise<KubeletCluster> {
  if (process.getuid?.() !== 0)
    throw new Error('the kubelet harness needs root: kubelets, containerd and namespaces');
  const log = createLogger({
    component: 'kubelet-harness',
    format: 'text',
    level: process.env['LOG_LEVEL'] ?? 'warn',
  });
  // Built here, before the host starts, so that a first run's long builds are not its startup.
  await ensureClusterComponents(log);
  await ensureKubelet(log);
  const helmBinary = await ensureHelm(log);
  const workDir = await mkdtemp(join(tmpdir(), 'livepatch-kubelets-'));
  const config: HostConfig = {
    workDir,
    cgroupRoot: `/${basename(workDir)}`,
    nodes: o.nodes,
    images: o.images,
  };
  // The host mounts over /run/netns and /run/containerd (containerd.ts), making them
  // first where they are missing. They stay after it (empty folders on /run, a tmpfs):
  // removing one from here would detach the private mounts of another harness.
  const cleanUp = async (): Promise<void> => {
    await removeCgroupSoon(config.cgroupRoot);
    await rm(workDir, { recursive: true, force: true });
  };
  const host = startHost(config);
  try {
    const line = await waitForLine(host.child, host.output, /^HARNESS (.*)$/m, STARTUP_TIMEOUT_MS);
    return clusterHandle(host, JSON.parse(line) as HostReady, config, helmBinary, cleanUp);
  } catch (err) {
    host.child.kill('SIGKILL');
    await host.exited;
    await cleanUp();
    throw err;
  }
}
