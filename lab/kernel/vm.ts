// Boots one real kernel under qemu (TCG: software emulation, which boots
// reliably where KVM may not) with the harness's initramfs: the host's root
// shared read-only over 9p and a job folder read-write. The job is a shell
// script run on the VM's kernel, chrooted into the host's root, so it can run
// the project's own Node and code. The VM's only network, when asked for, is
// qemu's user-mode stack with restrict=on and one forward: 10.0.2.100:6443 in
// the VM reaches the test API server's port on the host's loopback.
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { poll } from '../wait.js';
import type { KernelAssets } from './kernel-assets.js';

/** Where a VM reaches the test API server. */
export const VM_API_SERVER = { address: '10.0.2.100', port: 6443 } as const;

export interface VmOptions {
  readonly name: string;
  readonly assets: KernelAssets;
  /** Run as root on the VM's kernel, chrooted into the host's root, with the job folder at /run/job. */
  readonly script: string;
  /** More files for the job folder, by name. */
  readonly files?: Readonly<Record<string, string>>;
  /** The host loopback port of the API server the VM should reach. */
  readonly apiServerPort?: number;
  readonly cpus?: number;
  readonly memoryMiB?: number;
  readonly timeoutMs: number;
  readonly log: Logger;
  /**
   * Boot on this job folder, a powered-off VM's: a reboot into the same kernel
   * keeps what the VM wrote there, as a node keeps its disk.
   */
  readonly jobDir?: string;
}

export interface VmOutcome {
  /** The job script's exit code; undefined when the VM died first. */
  readonly jobExit: number | undefined;
  readonly console: string;
  readonly seconds: number;
}

export interface Vm {
  /** The job folder on the host (/run/job in the VM). */
  readonly jobDir: string;
  /** Resolves when the VM has powered off; rejects when it ran out of time. */
  readonly done: Promise<VmOutcome>;
  console(): string;
  /** Resolves when the console shows the pattern; rejects when the VM stops first or time runs out. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
  /** Pulls the plug. */
  stop(): Promise<void>;
}

function networkArgs(port: number | undefined): string[] {
  if (port === undefined) return [];
  const forward = `${process.execPath} ${join(repositoryRoot(), 'dist', 'lab', 'kernel', 'forward.js')} 127.0.0.1 ${port}`;
  const { address, port: guestPort } = VM_API_SERVER;
  return [
    '-netdev',
    `user,id=net0,restrict=on,guestfwd=tcp:${address}:${guestPort}-cmd:${forward}`,
    '-device',
    'virtio-net-pci,netdev=net0',
  ];
}

function qemuArgs(o: VmOptions, jobDir: string): string[] {
  const share = (id: string, path: string, readonly: boolean): string[] => [
    '-fsdev',
    `local,id=${id},path=${path},security_model=none,multidevs=remap${readonly ? ',readonly=on' : ''}`,
    '-device',
    `virtio-9p-pci,fsdev=${id},mount_tag=${id}`,
  ];
  return [
    ...['-machine', 'q35,accel=tcg', '-cpu', 'max', '-smp', String(o.cpus ?? 1)],
    ...['-m', String(o.memoryMiB ?? 1024), '-nodefaults', '-no-reboot'],
    ...['-display', 'none', '-serial', 'stdio', '-monitor', 'none'],
    ...['-kernel', o.assets.vmlinuz, '-initrd', o.assets.initramfs],
    ...['-append', 'console=ttyS0 quiet panic=-1'],
    ...share('hostroot', '/', true),
    ...share('job', jobDir, false),
    ...networkArgs(o.apiServerPort),
  ];
}

/**
 * Reboots a VM into the same kernel: waits for it to power off (or pulls the
 * plug), then boots it again on the same job folder with the next job.
 */
export async function rebootVm(vm: Vm, o: Omit<VmOptions, 'jobDir'>): Promise<Vm> {
  await vm.stop();
  return bootVm({ ...o, jobDir: vm.jobDir });
}

export async function bootVm(o: VmOptions): Promise<Vm> {
  const jobDir = o.jobDir ?? (await mkdtemp(join(tmpdir(), `lpt-vm-${o.name}-`)));
  await writeFile(join(jobDir, 'job.sh'), o.script);
  for (const [name, content] of Object.entries(o.files ?? {}))
    await writeFile(join(jobDir, name), content, { mode: 0o600 });
  // qemu's 9p server runs as this user; the VM's root writes results here.
  await chmod(jobDir, 0o777);
  const started = Date.now();
  const child = spawn('qemu-system-x86_64', qemuArgs(o, jobDir), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  o.log.info(o.jobDir ? 'booting a VM again' : 'booting a VM', {
    vm: o.name,
    release: o.assets.line.release,
    jobDir,
  });
  const done = new Promise<VmOutcome>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `VM ${o.name} did not finish within ${o.timeoutMs / 1000}s:\n${text.slice(-6000)}`,
        ),
      );
    }, o.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start qemu-system-x86_64: ${err.message}`));
    });
    child.on('exit', () => {
      clearTimeout(timer);
      const exit = /lpt-vm: job exit (\d+)/.exec(text)?.[1];
      resolve({
        jobExit: exit === undefined ? undefined : Number(exit),
        console: text,
        seconds: (Date.now() - started) / 1000,
      });
    });
  });
  // A rejection nobody awaited yet must not crash the process; callers see it through `done`.
  done.catch(() => undefined);
  return {
    jobDir,
    done,
    console: () => text,
    waitFor: async (pattern, timeoutMs) => {
      const stopped = (): boolean => child.exitCode !== null || child.signalCode !== null;
      const r = await poll(
        () => Promise.resolve(pattern.test(text) ? 'seen' : stopped() ? 'stopped' : ''),
        (state) => state !== '',
        timeoutMs,
        { intervalMs: 200 },
      );
      if (r.last === 'stopped')
        throw new Error(`VM ${o.name} stopped before ${pattern}:\n${text.slice(-6000)}`);
      if (!r.ok)
        throw new Error(
          `VM ${o.name}: no ${pattern} within ${timeoutMs / 1000}s:\n${text.slice(-6000)}`,
        );
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await done.catch(() => undefined);
    },
  };
}
