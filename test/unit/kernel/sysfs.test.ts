import { afterEach, describe, expect, test, beforeEach } from '@jest/globals';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_SYSFS_OPTIONS,
  SysfsKernel,
  errnoFromFsError,
  errnoFromModuleToolStderr,
} from '../../../agent/kernel/sysfs.js';
import { KernelError } from '../../../agent/kernel/types.js';
import { minimalModuleElf } from '../../support/elf.js';
import { patchName, type PatchName } from '../../../src/api/names.js';

let root: string;
let sys: string;
let proc: string;
let sleeps: number[];

const P1 = patchName('lp_one');
const P2 = patchName('lp_two');

async function put(path: string, content: string): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
}

async function addPatch(name: string, files: Readonly<Record<string, string>>): Promise<void> {
  const dir = join(sys, 'kernel', 'livepatch', name);
  await mkdir(dir, { recursive: true });
  for (const [file, value] of Object.entries(files)) await put(join(dir, file), `${value}\n`);
}

async function addTask(pid: number, tid: number, state: number, comm: string): Promise<void> {
  const dir = join(proc, String(pid), 'task', String(tid));
  await put(join(dir, 'patch_state'), `${state}\n`);
  await put(join(dir, 'comm'), `${comm}\n`);
}

/** A fake module tool: a shell script run by execFile, so arguments arrive as real argv. */
async function script(name: string, body: string): Promise<string> {
  const path = join(root, 'bin', name);
  await put(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

function kernel(extra: Partial<ConstructorParameters<typeof SysfsKernel>[0]> = {}): SysfsKernel {
  return new SysfsKernel({
    sysfsRoot: sys,
    procRoot: proc,
    kmsg: join(root, 'dev', 'kmsg'),
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    ...extra,
  });
}

async function refusal(promise: Promise<unknown>): Promise<KernelError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof KernelError) return err;
    throw err;
  }
  throw new Error('expected a KernelError');
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sysfs-test-'));
  sys = join(root, 'sys');
  proc = join(root, 'proc');
  sleeps = [];
  await put(join(proc, 'sys', 'kernel', 'osrelease'), '6.1.0-26-amd64\n');
  await put(join(proc, 'sys', 'kernel', 'tainted'), '32768\n');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('SysfsKernel reads the node', () => {
  test('defaults point at the real /sys and /proc', () => {
    expect(DEFAULT_SYSFS_OPTIONS).toMatchObject({ sysfsRoot: '/sys', procRoot: '/proc' });
    expect(new SysfsKernel().kind).toBe('sysfs');
  });

  test('reads the kernel release and the taint mask', async () => {
    const k = kernel();
    expect(await k.release()).toBe('6.1.0-26-amd64');
    expect(await k.tainted()).toBe(1 << 15);
  });

  test('livepatch support is /sys/kernel/livepatch existing, with or without patches', async () => {
    expect(await kernel().livepatchSupported()).toBe(false);
    await mkdir(join(sys, 'kernel', 'livepatch'), { recursive: true });
    expect(await kernel().livepatchSupported()).toBe(true);
  });

  test('a directory whose disable completed (enabled=0, transition=0) is not listed: the kernel is removing it', async () => {
    await addPatch('lp_one', { enabled: '0', transition: '0' });
    await addPatch('lp_two', { enabled: '0', transition: '1' });
    expect(await kernel().patches()).toEqual([
      { name: 'lp_two', enabled: false, transition: true },
    ]);
  });

  test('no livepatch directory means no patches', async () => {
    expect(await kernel().patches()).toEqual([]);
  });

  test('lists patches with replace and stack_order on new kernels', async () => {
    await addPatch('lp_two', { enabled: '1', transition: '1', replace: '1', stack_order: '2' });
    await addPatch('lp_one', { enabled: '1', transition: '0', replace: '0', stack_order: '1' });
    expect(await kernel().patches()).toEqual([
      { name: 'lp_one', enabled: true, transition: false, replace: false, stackOrder: 1 },
      { name: 'lp_two', enabled: true, transition: true, replace: true, stackOrder: 2 },
    ]);
  });

  test('lists patches without replace and stack_order on older kernels', async () => {
    await addPatch('lp_one', { enabled: '0', transition: '1' });
    const [patch] = await kernel().patches();
    expect(patch).toEqual({ name: 'lp_one', enabled: false, transition: true });
    expect(patch).not.toHaveProperty('replace');
    expect(patch).not.toHaveProperty('stackOrder');
  });

  test('skips a patch directory that vanishes while being read', async () => {
    await addPatch('lp_one', { enabled: '1', transition: '0' });
    // A disable completing: the directory is (being) removed, its attributes are gone.
    await mkdir(join(sys, 'kernel', 'livepatch', 'lp_two'));
    expect((await kernel().patches()).map((p) => p.name)).toEqual(['lp_one']);
  });

  test('lists patches whose names no LivePatch could use, as the kernel shows them', async () => {
    await addPatch('kpatch_CVE-2024-1', { enabled: '1', transition: '0' });
    expect((await kernel().patches()).map((p) => p.name)).toEqual(['kpatch_CVE-2024-1']);
  });

  test('a module is loaded while /sys/module/<name> exists', async () => {
    await put(join(sys, 'module', 'lp_one', 'refcnt'), '1\n');
    const k = kernel();
    expect(await k.isLoaded(P1)).toBe(true);
    expect(await k.isLoaded(P2)).toBe(false);
  });
});

describe('SysfsKernel writes enabled and force', () => {
  test('writes 0 and 1 to enabled', async () => {
    await addPatch('lp_one', { enabled: '1', transition: '1' });
    const k = kernel();
    const file = join(sys, 'kernel', 'livepatch', 'lp_one', 'enabled');
    await k.setEnabled(P1, false);
    expect((await readFile(file, 'utf8'))[0]).toBe('0');
    await k.setEnabled(P1, true);
    expect((await readFile(file, 'utf8'))[0]).toBe('1');
  });

  test('a vanished patch directory answers ENOENT instead of creating a file', async () => {
    const err = await refusal(kernel().setEnabled(P1, false));
    expect(err.errno).toBe('ENOENT');
    expect(err.operation).toBe('write enabled=0 for lp_one');
  });

  test('an unwritable enabled (a directory here) becomes a KernelError', async () => {
    await mkdir(join(sys, 'kernel', 'livepatch', 'lp_one', 'enabled'), { recursive: true });
    const err = await refusal(kernel().setEnabled(P1, true));
    expect(err.errno).toBe('EIO');
    expect(err.message).toContain('EISDIR');
  });

  test('maps the kernel errno of a write: EINVAL, EBUSY, ENOENT, EPERM; else EIO', () => {
    const fsErr = (code: string): Error => Object.assign(new Error(code), { code });
    expect(errnoFromFsError(fsErr('EINVAL'))).toBe('EINVAL');
    expect(errnoFromFsError(fsErr('EBUSY'))).toBe('EBUSY');
    expect(errnoFromFsError(fsErr('ENOENT'))).toBe('ENOENT');
    expect(errnoFromFsError(fsErr('EPERM'))).toBe('EPERM');
    expect(errnoFromFsError(fsErr('EACCES'))).toBe('EPERM');
    expect(errnoFromFsError(fsErr('EISDIR'))).toBe('EIO');
    expect(errnoFromFsError(new Error('no code'))).toBe('EIO');
  });

  test('force writes 1 to the force file', async () => {
    await addPatch('lp_one', { enabled: '1', transition: '1', force: '0' });
    await kernel().force(P1);
    expect((await readFile(join(sys, 'kernel', 'livepatch', 'lp_one', 'force'), 'utf8'))[0]).toBe(
      '1',
    );
  });

  test('refuses a forged patch name before it becomes a path', async () => {
    await expect(kernel().setEnabled('../../etc' as PatchName, false)).rejects.toThrow(
      /invalid patch name/,
    );
  });
});

describe('SysfsKernel reads what a module file says about itself with modinfo', () => {
  /** A file that passes the ELF check, so modinfo (a script here) is what answers. */
  async function elf(name: string): Promise<string> {
    const path = join(root, name);
    await writeFile(path, minimalModuleElf());
    return path;
  }

  test('a file that is no ELF module is refused before modinfo, saying what it is', async () => {
    const modinfo = await script('modinfo', 'exit 7');
    const html = join(root, 'page.ko');
    await writeFile(html, '<html>404</html>');
    const err = await refusal(kernel({ modinfo }).moduleInfo(html));
    expect(err.errno).toBe('ENOEXEC');
    expect(err.message).toContain('it is not an ELF file (it starts with 3c 68 74 6d');
  });

  test('name, vermagic and the livepatch flag, read in the C locale', async () => {
    const modinfo = await script(
      'modinfo',
      `[ "$LC_ALL" = C ] || exit 9
cat <<OUT
filename:       $1
livepatch:      Y
license:        GPL
depends:
name:           livepatch_from_file
vermagic:       6.1.0-50-amd64 SMP preempt mod_unload modversions
OUT`,
    );
    expect(await kernel({ modinfo }).moduleInfo(await elf('whatever.ko'))).toEqual({
      name: 'livepatch_from_file',
      vermagic: '6.1.0-50-amd64 SMP preempt mod_unload modversions',
      livepatch: true,
    });
  });

  test('the name is the one the module loads under: case kept, a dash made an underscore', async () => {
    const modinfo = await script(
      'modinfo',
      `printf 'livepatch:      Y\nname:           livepatch-CVE_2024-1086\nvermagic:       6.1.0-50-amd64 SMP\n'`,
    );
    expect((await kernel({ modinfo }).moduleInfo(await elf('x.ko'))).name).toBe(
      'livepatch_CVE_2024_1086',
    );
  });

  test('an ordinary module has no livepatch flag', async () => {
    const modinfo = await script(
      'modinfo',
      `printf 'name:           e1000\nvermagic:       6.1.0-50-amd64 SMP\n'`,
    );
    expect((await kernel({ modinfo }).moduleInfo(await elf('e1000.ko'))).livepatch).toBe(false);
  });

  test('a file modinfo cannot read is ENOEXEC', async () => {
    const modinfo = await script(
      'modinfo',
      `echo "modinfo: ERROR: could not get modinfo from 'x': Exec format error" >&2; exit 1`,
    );
    const err = await refusal(kernel({ modinfo }).moduleInfo(await elf('garbage.ko')));
    expect(err.errno).toBe('ENOEXEC');
  });

  test('a file without name or vermagic is not a module: ENOEXEC', async () => {
    const modinfo = await script('modinfo', `echo "filename: $1"`);
    const err = await refusal(kernel({ modinfo }).moduleInfo(await elf('empty.ko')));
    expect(err.errno).toBe('ENOEXEC');
    expect(err.message).toContain('not a kernel module');
  });
});

describe('SysfsKernel loads modules with insmod', () => {
  test('insmod gets the module path and the patch appears', async () => {
    const insmod = await script(
      'insmod',
      `n=$(basename "$1" .ko); mkdir -p "${sys}/kernel/livepatch/$n" "${sys}/module/$n"
echo 1 > "${sys}/kernel/livepatch/$n/enabled"; echo 1 > "${sys}/kernel/livepatch/$n/transition"`,
    );
    const k = kernel({ insmod });
    await k.load(join(root, 'lp_one.ko'));
    expect(await k.isLoaded(P1)).toBe(true);
    expect(await k.patches()).toEqual([{ name: 'lp_one', enabled: true, transition: true }]);
  });

  test("insmod is tried once on EBUSY: the agent's pass waits it out, not the backend", async () => {
    const counter = join(root, 'attempts');
    const insmod = await script(
      'insmod',
      `c=$(cat "${counter}" 2>/dev/null || echo 0); echo $((c+1)) > "${counter}"
echo "insmod: ERROR: could not insert module $1: Device or resource busy" >&2; exit 1`,
    );
    const err = await refusal(kernel({ insmod }).load('/x/lp_one.ko'));
    expect(err.errno).toBe('EBUSY');
    expect(err.message).toContain('Device or resource busy');
    expect((await readFile(counter, 'utf8')).trim()).toBe('1');
    expect(sleeps).toEqual([]);
  });

  test('an EBUSY carries the kernel line of ftrace refusing the handler', async () => {
    await put(join(proc, 'uptime'), '100.50 80.00\n');
    await put(
      join(root, 'dev', 'kmsg'),
      "3,902,100700000,-;livepatch: failed to register ftrace handler for function 'cmdline_proc_show' (-16)\n",
    );
    const insmod = await script(
      'insmod',
      `echo "insmod: ERROR: could not insert module $1: Device or resource busy" >&2; exit 1`,
    );
    const err = await refusal(kernel({ insmod }).load('/x/lp_one.ko'));
    expect(err.errno).toBe('EBUSY');
    expect(err.kernelLog).toEqual([
      "livepatch: failed to register ftrace handler for function 'cmdline_proc_show' (-16)",
    ]);
  });

  test('an insmod that does not return (a blocking pre-patch callback) times out with ETIMEDOUT and says so', async () => {
    const insmod = await script('insmod', 'sleep 30');
    const started = Date.now();
    const err = await refusal(kernel({ insmod, toolTimeoutMs: 300 }).load('/x/lp_one.ko'));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err.errno).toBe('ETIMEDOUT');
    expect(err.message).toContain('insmod did not return within 0.3s');
    expect(err.message).toContain("the module's init or exit is blocked in the kernel");
  });

  test('an rmmod that does not return times out too', async () => {
    await put(join(sys, 'module', 'lp_one', 'refcnt'), '0\n');
    const rmmod = await script('rmmod', 'sleep 30');
    const err = await refusal(kernel({ rmmod, toolTimeoutMs: 300 }).unload(P1, 1000));
    expect(err.errno).toBe('ETIMEDOUT');
    expect(err.message).toContain('rmmod did not return within 0.3s');
  });

  test('maps a vermagic refusal to ENOEXEC without retrying', async () => {
    const insmod = await script(
      'insmod',
      `echo "insmod: ERROR: could not insert module $1: Invalid module format" >&2; exit 1`,
    );
    const err = await refusal(kernel({ insmod }).load('/x/lp_one.ko'));
    expect(err.errno).toBe('ENOEXEC');
    expect(err.operation).toBe('insmod /x/lp_one.ko');
    expect(err.message).toContain('Invalid module format');
    expect(sleeps).toEqual([]);
  });

  test('a refusal carries the lines the kernel logged since the load started', async () => {
    await put(join(proc, 'uptime'), '100.50 80.00\n');
    await put(
      join(root, 'dev', 'kmsg'),
      [
        "3,900,99000000,-;lp_one: version magic '6.1.0-1-amd64 SMP' should be '6.1.0-26-amd64 SMP'",
        '6,901,100600000,-;eth0: link becomes ready',
        "3,902,100700000,-;lp_one: version magic '6.12.95+deb12-amd64 SMP' should be '6.1.0-26-amd64 SMP'",
        ' SUBSYSTEM=module',
      ].join('\n') + '\n',
    );
    const insmod = await script(
      'insmod',
      `echo "insmod: ERROR: could not insert module $1: Invalid module format" >&2; exit 1`,
    );
    const err = await refusal(kernel({ insmod }).load('/x/lp_one.ko'));
    expect(err.kernelLog).toEqual([
      "lp_one: version magic '6.12.95+deb12-amd64 SMP' should be '6.1.0-26-amd64 SMP'",
    ]);
    expect(err.message).toContain('Invalid module format; kernel: lp_one: version magic');
  });

  test('runs insmod in the C locale, whose messages it matches', async () => {
    const insmod = await script(
      'insmod',
      `[ "$LC_ALL" = C ] || { echo "insmod: FEHLER: Modul konnte nicht eingefügt werden" >&2; exit 1; }`,
    );
    await kernel({ insmod }).load('/x/lp_one.ko');
  });

  test('maps insmod and rmmod messages to errno', () => {
    const cases: [string, string][] = [
      ['could not insert module x.ko: Key was rejected by service', 'EKEYREJECTED'],
      ['could not insert module x.ko: Invalid module format', 'ENOEXEC'],
      ['could not insert module x.ko: File exists', 'EEXIST'],
      ['could not insert module x.ko: Invalid argument', 'EINVAL'],
      ['could not insert module x.ko: Unknown symbol in module', 'ENOENT'],
      ['could not insert module x.ko: Invalid parameters', 'EINVAL'],
      ['could not load module x.ko: No such file or directory', 'ENOENT'],
      ['could not insert module x.ko: Operation not permitted', 'EPERM'],
      ['rmmod: ERROR: Module x is in use', 'EBUSY'],
      ['rmmod: ERROR: Module x is not currently loaded', 'ENOENT'],
      ['something else', 'EIO'],
    ];
    for (const [stderr, errno] of cases) expect(errnoFromModuleToolStderr(stderr)).toBe(errno);
  });

  test('a missing insmod binary is EIO, not ENOENT of the module', async () => {
    const err = await refusal(kernel({ insmod: join(root, 'no-such-insmod') }).load('/x/a.ko'));
    expect(err.errno).toBe('EIO');
  });
});

describe('SysfsKernel finds tasks blocking a transition', () => {
  test('finds blocking tasks across threads, with comm, sorted and limited', async () => {
    await addPatch('lp_one', { enabled: '1', transition: '1' });
    await addTask(300, 300, 0, 'qemu-kvm');
    await addTask(300, 302, 0, 'CPU 0/KVM');
    await addTask(300, 301, 1, 'qemu-worker');
    await addTask(20, 20, 0, 'kworker/0:1');
    await put(join(proc, 'self'), 'not a pid');
    const k = kernel();
    expect(await k.transitionTasks(P1, 10)).toEqual({
      pending: 3,
      blocking: [
        { pid: 20, comm: 'kworker/0:1' },
        { pid: 300, comm: 'qemu-kvm' },
        { pid: 302, comm: 'CPU 0/KVM' },
      ],
    });
    expect(await k.transitionTasks(P1, 1)).toEqual({
      pending: 3,
      blocking: [{ pid: 20, comm: 'kworker/0:1' }],
    });
  });

  test('ignores -1 and tasks already in the target state; a reversal targets 0', async () => {
    await addPatch('lp_one', { enabled: '0', transition: '1' });
    await addTask(10, 10, -1, 'idle');
    await addTask(11, 11, 0, 'switched-back');
    await addTask(12, 12, 1, 'still-patched');
    expect(await kernel().transitionTasks(P1, 10)).toEqual({
      pending: 1,
      blocking: [{ pid: 12, comm: 'still-patched' }],
    });
  });

  test('skips tasks whose files vanish mid-walk', async () => {
    await addPatch('lp_one', { enabled: '1', transition: '1' });
    await addTask(10, 10, 0, 'alive');
    await mkdir(join(proc, '11', 'task', '11'), { recursive: true }); // exited: no files left
    await mkdir(join(proc, '12'), { recursive: true }); // exited: no task dir
    await put(join(proc, '13', 'task', '13', 'patch_state'), '0\n'); // comm gone before read
    expect(await kernel().transitionTasks(P1, 10)).toEqual({
      pending: 1,
      blocking: [{ pid: 10, comm: 'alive' }],
    });
  });

  test('nothing blocks a patch that is not in transition', async () => {
    await addPatch('lp_one', { enabled: '1', transition: '0' });
    await addTask(10, 10, 0, 'other-patch');
    expect(await kernel().transitionTasks(P1, 10)).toEqual({ pending: 0, blocking: [] });
    expect(await kernel().transitionTasks(P2, 10)).toEqual({ pending: 0, blocking: [] });
  });
});

describe('SysfsKernel unloads modules', () => {
  test('waits for refcnt 0, then calls rmmod with the module name', async () => {
    const refcnt = join(sys, 'module', 'lp_one', 'refcnt');
    await put(refcnt, '2\n');
    const log = join(root, 'rmmod.log');
    const rmmod = await script('rmmod', `echo "$1" > "${log}"; rm -r "${sys}/module/$1"`);
    let polls = 0;
    const k = kernel({
      rmmod,
      pollMs: 100,
      // The kernel drops the reference asynchronously: one less per poll.
      sleep: async (ms) => {
        sleeps.push(ms);
        polls++;
        await writeFile(refcnt, `${2 - polls}\n`);
      },
    });
    await k.unload(P1, 10_000);
    expect(polls).toBe(2);
    expect(sleeps).toEqual([100, 100]);
    expect((await readFile(log, 'utf8')).trim()).toBe('lp_one');
    expect(await k.isLoaded(P1)).toBe(false);
  });

  test('waits for a refcnt decremented in the background with real sleeps', async () => {
    const refcnt = join(sys, 'module', 'lp_one', 'refcnt');
    await put(refcnt, '1\n');
    const log = join(root, 'rmmod.log');
    const rmmod = await script('rmmod', `echo "$1" > "${log}"`);
    const k = new SysfsKernel({ sysfsRoot: sys, procRoot: proc, rmmod, pollMs: 10 });
    const release = new Promise<void>((resolve) => {
      setTimeout(() => {
        void writeFile(refcnt, '0\n').then(resolve);
      }, 50);
    });
    await Promise.all([k.unload(P1, 5000), release]);
    expect((await readFile(log, 'utf8')).trim()).toBe('lp_one');
  });

  test('returns at once when the module is already gone', async () => {
    const rmmod = await script('rmmod', 'exit 1');
    await kernel({ rmmod }).unload(P1, 1000);
    expect(sleeps).toEqual([]);
  });

  test('a module that goes away just before rmmod counts as unloaded', async () => {
    await put(join(sys, 'module', 'lp_one', 'refcnt'), '0\n');
    const rmmod = await script(
      'rmmod',
      `echo "rmmod: ERROR: Module $1 is not currently loaded" >&2; exit 1`,
    );
    await kernel({ rmmod }).unload(P1, 1000);
  });

  test('times out with EBUSY while the module is still in use', async () => {
    await put(join(sys, 'module', 'lp_one', 'refcnt'), '1\n');
    const rmmod = await script('rmmod', 'exit 1');
    const err = await refusal(kernel({ rmmod, pollMs: 500 }).unload(P1, 1200));
    expect(err.errno).toBe('EBUSY');
    expect(err.message).toContain('module lp_one still in use (refcnt 1) after 1.2s');
    expect(sleeps).toEqual([500, 500, 200]);
  });

  test('maps an rmmod failure like insmod', async () => {
    await put(join(sys, 'module', 'lp_one', 'refcnt'), '0\n');
    const rmmod = await script('rmmod', 'echo "rmmod: ERROR: Module lp_one is in use" >&2; exit 1');
    const err = await refusal(kernel({ rmmod }).unload(P1, 1000));
    expect(err.errno).toBe('EBUSY');
    expect(err.operation).toBe('rmmod lp_one');
  });
});
