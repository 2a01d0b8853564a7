// The mini cluster's network, inside its own network namespace (the host
// process runs in it, so nothing of the machine's network changes): a bridge
// for the pods, and the kubernetes Service's ClusterIP as a local address on
// which the API server listens, so that what a kubelet puts in a Pod's
// environment (KUBERNETES_SERVICE_HOST=10.0.0.1, port 443) reaches the API
// server as kube-proxy would make it. Each Pod gets a network namespace of
// its own, with a veth pair onto the bridge, as a CNI bridge plugin does.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { readFile, readlink } from 'node:fs/promises';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export const SERVICE_IP = '10.0.0.1';
export const SERVICE_RANGE = '10.0.0.0/24';
const BRIDGE = 'cbr0';
const GATEWAY = '10.244.0.1';
const PREFIX = 24;

export async function run(cmd: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await exec(cmd, [...args]);
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/** In this process's own network namespace: loopback, the Service IP, the pods' bridge. */
export async function setUpClusterNetwork(): Promise<void> {
  await run('ip', ['link', 'set', 'lo', 'up']);
  await run('ip', ['addr', 'add', `${SERVICE_IP}/32`, 'dev', 'lo']);
  await run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  await run('ip', ['addr', 'add', `${GATEWAY}/${PREFIX}`, 'dev', BRIDGE]);
  await run('ip', ['link', 'set', BRIDGE, 'up']);
}

export interface PodSandbox {
  readonly ip: string;
  /** A process holding the Pod's network namespace; containers join it by its pid. */
  readonly holder: ChildProcess;
  readonly pid: number;
}

let nextHost = 2;

/** A network namespace for one Pod, wired to the bridge; it goes away with its holder process. */
export async function createSandbox(): Promise<PodSandbox> {
  const host = nextHost++;
  if (host > 254) throw new Error('the mini cluster ran out of pod addresses');
  const ip = `10.244.0.${host}`;
  // The holder dies with this process (pdeathsig), and the namespace, its veth and routes with it.
  const holder = spawn(
    'setpriv',
    ['--pdeathsig', 'KILL', '--', 'unshare', '--net', '--', 'sleep', 'infinity'],
    {
      stdio: 'ignore',
    },
  );
  const pid = holder.pid;
  if (pid === undefined) throw new Error('cannot start a pod sandbox');
  await waitForOwnNetns(pid);
  const veth = `veth${host}`;
  await run('ip', [
    'link',
    'add',
    veth,
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    String(pid),
  ]);
  await run('ip', ['link', 'set', veth, 'master', BRIDGE, 'up']);
  const inPod = (...args: string[]): Promise<string> =>
    run('nsenter', ['-t', String(pid), '-n', '--', 'ip', ...args]);
  await inPod('link', 'set', 'lo', 'up');
  await inPod('addr', 'add', `${ip}/${PREFIX}`, 'dev', 'eth0');
  await inPod('link', 'set', 'eth0', 'up');
  await inPod('route', 'add', 'default', 'via', GATEWAY);
  return { ip, holder, pid };
}

/** setpriv and unshare exec in place: wait until the holder's namespace is no longer ours. */
async function waitForOwnNetns(pid: number): Promise<void> {
  const ours = await readlink('/proc/self/ns/net');
  for (let i = 0; i < 200; i++) {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    const ns = await readlink(`/proc/${pid}/ns/net`).catch(() => ours);
    if (comm.trim() === 'sleep' && ns !== ours) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`pod sandbox ${pid} did not get a network namespace`);
}

export function destroySandbox(sandbox: PodSandbox): void {
  sandbox.holder.kill('SIGKILL');
}
