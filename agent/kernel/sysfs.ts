// The real kernel backend: reads and writes /sys/kernel/livepatch, walks
// /proc for tasks blocking a transition, and runs insmod/rmmod. Every kernel
// refusal becomes a KernelError with the errno the kernel answered (see
// docs/kernel.md). Roots and commands are options so tests can point it at
// a fake tree and fake binaries.
import { execFile } from 'node:child_process';
import { open, readdir, readFile, stat, writeFile, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { BlockingTask } from '../../src/api/generated/types.js';
import {
  kernelModuleName,
  kernelRelease,
  patchName,
  type KernelRelease,
  type PatchName,
} from '../../src/api/names.js';
import { ELF_HEADER_BYTES, elfModuleProblem } from './elf.js';
import { moduleLoadLog, uptimeSeconds } from './kmsg.js';
import {
  KernelError,
  type Errno,
  type KernelBackend,
  type KernelPatch,
  type ModuleInfo,
  type TransitionTasks,
} from './types.js';

export interface SysfsOptions {
  /** Where sysfs is mounted. */
  readonly sysfsRoot: string;
  /** Where procfs is mounted. */
  readonly procRoot: string;
  /** insmod command (looked up on PATH unless absolute). */
  readonly insmod: string;
  /** rmmod command. */
  readonly rmmod: string;
  /** modinfo command, for what a module file says about itself. */
  readonly modinfo?: string;
  /** The kernel log, read for the kernel's own words when a load is refused. */
  readonly kmsg?: string;
  /** Injectable for tests: refcnt polling sleeps through it. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** How often unload() re-reads refcnt. */
  readonly pollMs?: number;
  /**
   * How long insmod, rmmod and modinfo may run. A module init that blocks (a
   * pre-patch callback that waits) keeps insmod in the kernel; the agent
   * stops waiting so its loop and stall guard go on.
   */
  readonly toolTimeoutMs?: number;
}

export const DEFAULT_SYSFS_OPTIONS: SysfsOptions = {
  sysfsRoot: '/sys',
  procRoot: '/proc',
  insmod: 'insmod',
  rmmod: 'rmmod',
  kmsg: '/dev/kmsg',
  pollMs: 500,
  toolTimeoutMs: 60_000,
};

const KNOWN_ERRNOS: readonly Errno[] = [
  'EINVAL',
  'EBUSY',
  'ENOEXEC',
  'EEXIST',
  'ENOENT',
  'EPERM',
  'EKEYREJECTED',
];

/** The module tools run in the C locale: their messages are matched as text. */
const TOOL_ENV = { ...process.env, LC_ALL: 'C', LANG: 'C' };

/** Maps a Node fs error (err.code) from a sysfs write to the errno the kernel answered. */
export function errnoFromFsError(err: unknown): Errno {
  const code = fsCode(err);
  if (code === undefined) return 'EIO';
  // A non-root agent gets EACCES from the 0644/0200 files: same meaning as EPERM here.
  if (code === 'EACCES') return 'EPERM';
  return KNOWN_ERRNOS.find((e) => e === code) ?? 'EIO';
}

// insmod/rmmod print strerror() text (in the C locale, see TOOL_ENV), not the errno name,
// except for the errnos kmod's insmod words itself (its mod_strerror): ENOEXEC is
// "Invalid module format", ENOENT "Unknown symbol in module", EINVAL "Invalid parameters".
const STDERR_ERRNOS: readonly (readonly [string, Errno])[] = [
  ['Device or resource busy', 'EBUSY'],
  ['is in use', 'EBUSY'],
  ['Invalid module format', 'ENOEXEC'],
  ['Exec format error', 'ENOEXEC'],
  ['File exists', 'EEXIST'],
  ['Key was rejected by service', 'EKEYREJECTED'],
  ['Required key not available', 'EKEYREJECTED'],
  ['Invalid argument', 'EINVAL'],
  ['Invalid parameters', 'EINVAL'],
  ['Unknown symbol', 'ENOENT'],
  ['No such file', 'ENOENT'],
  ['not currently loaded', 'ENOENT'],
  ['Operation not permitted', 'EPERM'],
];

/** Maps insmod/rmmod stderr to the errno behind it; EIO when unrecognised. */
export function errnoFromModuleToolStderr(stderr: string): Errno {
  return STDERR_ERRNOS.find(([text]) => stderr.includes(text))?.[1] ?? 'EIO';
}

function fsCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}

/** A file under /proc or /sys that went away while we looked (process exited, disable completed). */
function vanished(err: unknown): boolean {
  const code = fsCode(err);
  // /proc answers ESRCH for a task that exited between readdir and read.
  return code === 'ENOENT' || code === 'ESRCH' || code === 'ENOTDIR';
}

/** Reads a file, or undefined when it does not exist. */
async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (vanished(err)) return undefined;
    throw err;
  }
}

function parseFlag(text: string | undefined): boolean | undefined {
  return text === undefined ? undefined : text.trim() === '1';
}

function parseIntStrict(text: string, what: string): number {
  const value = Number.parseInt(text.trim(), 10);
  if (Number.isNaN(value)) throw new KernelError('EIO', `read ${what}`, `not a number: ${text}`);
  return value;
}

const NUMERIC = /^\d+$/;

/** A task whose patch_state differs from the target, found while walking /proc. */
interface Candidate {
  readonly tid: number;
  readonly taskDir: string;
}

export class SysfsKernel implements KernelBackend {
  readonly kind = 'sysfs' as const;
  private readonly opts: SysfsOptions;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly pollMs: number;
  private readonly toolTimeoutMs: number;

  constructor(options: Partial<SysfsOptions> = {}) {
    this.opts = { ...DEFAULT_SYSFS_OPTIONS, ...options };
    this.sleep = this.opts.sleep ?? ((ms: number) => delay(ms));
    this.pollMs = this.opts.pollMs ?? 500;
    this.toolTimeoutMs = this.opts.toolTimeoutMs ?? 60_000;
  }

  async release(): Promise<KernelRelease> {
    return kernelRelease(await readFile(this.proc('sys', 'kernel', 'osrelease'), 'utf8'));
  }

  async tainted(): Promise<number> {
    const text = await readFile(this.proc('sys', 'kernel', 'tainted'), 'utf8');
    return parseIntStrict(text, 'tainted');
  }

  async livepatchSupported(): Promise<boolean> {
    try {
      // klp_init creates it at boot whenever CONFIG_LIVEPATCH=y, loaded patches or not.
      return (await stat(this.sys('kernel', 'livepatch'))).isDirectory();
    } catch (err) {
      if (vanished(err)) return false;
      throw err;
    }
  }

  async patches(): Promise<KernelPatch[]> {
    let entries: string[];
    try {
      entries = await readdir(this.sys('kernel', 'livepatch'));
    } catch (err) {
      // No livepatch support compiled in: livepatchSupported() says so.
      if (vanished(err)) return [];
      throw err;
    }
    const read = await Promise.all(entries.map((entry) => this.readPatch(entry)));
    const found = read.filter((p): p is KernelPatch => p !== undefined);
    // readdir order is arbitrary; stack order (when known) is the kernel's own order.
    return found.sort(
      (a, b) =>
        (a.stackOrder ?? Infinity) - (b.stackOrder ?? Infinity) || a.name.localeCompare(b.name),
    );
  }

  async isLoaded(name: PatchName): Promise<boolean> {
    try {
      await stat(this.sys('module', patchName(name)));
      return true;
    } catch (err) {
      if (vanished(err)) return false;
      throw err;
    }
  }

  async moduleInfo(modulePath: string): Promise<ModuleInfo> {
    const problem = await elfProblem(modulePath);
    if (problem) throw new KernelError('ENOEXEC', `read ${modulePath}`, problem);
    const op = `modinfo ${modulePath}`;
    let stdout: string;
    try {
      stdout = await this.runTool(this.opts.modinfo ?? 'modinfo', modulePath, op);
    } catch (err) {
      if (err instanceof KernelError && err.errno === 'ETIMEDOUT') throw err;
      const detail = err instanceof KernelError ? toolMessage(err) : String(err);
      throw new KernelError('ENOEXEC', op, detail);
    }
    return parseModinfo(stdout, modulePath);
  }

  async load(modulePath: string): Promise<void> {
    const op = `insmod ${modulePath}`;
    const since = await uptimeSeconds(this.opts.procRoot).catch(() => 0);
    try {
      await this.runTool(this.opts.insmod, modulePath, op);
    } catch (err) {
      // EBUSY too: ftrace refusing the handler says so only in the kernel log.
      if (!(err instanceof KernelError) || err.errno === 'ETIMEDOUT') throw err;
      const log = await moduleLoadLog(this.opts.kmsg ?? '/dev/kmsg', since);
      if (log.length === 0) throw err;
      throw new KernelError(err.errno, op, `${toolMessage(err)}; kernel: ${log.join('; ')}`, log);
    }
  }

  async setEnabled(name: PatchName, enabled: boolean): Promise<void> {
    const value = enabled ? '1' : '0';
    await this.writeAttr(name, 'enabled', value, `write enabled=${value} for ${name}`);
  }

  async force(name: PatchName): Promise<void> {
    await this.writeAttr(name, 'force', '1', `write force=1 for ${name}`);
  }

  async transitionTasks(name: PatchName, limit: number): Promise<TransitionTasks> {
    const dir = this.patchDir(name);
    const [enabled, transition] = await Promise.all([
      readOptional(join(dir, 'enabled')),
      readOptional(join(dir, 'transition')),
    ]);
    // patch_state is system-wide: it only speaks for this patch while this patch is
    // the one in transition. No directory or no transition: nothing blocks it.
    if (enabled === undefined || parseFlag(transition) !== true)
      return { pending: 0, blocking: [] };
    const target = parseFlag(enabled) ? 1 : 0;
    const candidates = await this.walkTasks(target);
    candidates.sort((a, b) => a.tid - b.tid);
    return this.describe(candidates, limit);
  }

  async unload(name: PatchName, timeoutMs: number): Promise<void> {
    const module = patchName(name);
    const refcntPath = this.sys('module', module, 'refcnt');
    const rmmod = `rmmod ${module}`;
    for (let waited = 0; ;) {
      const text = await readOptional(refcntPath);
      if (text === undefined && !(await this.isLoaded(module))) return;
      // A loaded module without refcnt is odd; let rmmod give the verdict.
      const refcnt = text === undefined ? 0 : parseIntStrict(text, `refcnt of ${module}`);
      if (refcnt === 0) break;
      if (waited >= timeoutMs) {
        throw new KernelError(
          'EBUSY',
          `unload ${module}`,
          `module ${module} still in use (refcnt ${refcnt}) after ${timeoutMs / 1000}s`,
        );
      }
      // Count slept time rather than wall time, so an injected sleep drives the timeout.
      const step = Math.min(this.pollMs, timeoutMs - waited);
      await this.sleep(step);
      waited += step;
    }
    try {
      await this.runTool(this.opts.rmmod, module, rmmod);
    } catch (err) {
      // Gone between the refcnt read and rmmod: what was asked for is done.
      if (err instanceof KernelError && err.errno === 'ENOENT') return;
      throw err;
    }
  }

  /**
   * One patch directory, or undefined when it vanished or its disable has
   * completed. Any directory name is read: readdir gives single path segments,
   * and patches no LivePatch could name still belong in the node's inventory.
   */
  private async readPatch(name: string): Promise<KernelPatch | undefined> {
    const dir = this.sys('kernel', 'livepatch', name);
    const [enabled, transition, replace, stackOrder] = await Promise.all(
      ['enabled', 'transition', 'replace', 'stack_order'].map((f) => readOptional(join(dir, f))),
    );
    // enabled/transition always exist while the directory does: absent means a disable completed.
    if (enabled === undefined || transition === undefined) return undefined;
    const isEnabled = parseFlag(enabled) === true;
    const inTransition = parseFlag(transition) === true;
    // Disabled and settled: klp_free_patch_async is removing it (a completed disable or a replaced patch).
    if (!isEnabled && !inTransition) return undefined;
    const patch: KernelPatch = {
      name,
      enabled: isEnabled,
      transition: inTransition,
      ...(replace === undefined ? {} : { replace: parseFlag(replace) === true }),
      ...(stackOrder === undefined
        ? {}
        : { stackOrder: parseIntStrict(stackOrder, `stack_order of ${name}`) }),
    };
    return patch;
  }

  /** Every task (thread) under /proc whose patch_state is neither -1 nor the target. */
  private async walkTasks(target: number): Promise<Candidate[]> {
    const pids = (await readdir(this.opts.procRoot)).filter((e) => NUMERIC.test(e));
    const found: Candidate[] = [];
    // One process at a time: a node can have tens of thousands of threads, and
    // reading all of them at once would exhaust file descriptors.
    for (const pid of pids) {
      found.push(...(await this.processTasks(pid, target)));
    }
    return found;
  }

  private async processTasks(pid: string, target: number): Promise<Candidate[]> {
    const taskRoot = join(this.opts.procRoot, pid, 'task');
    let tids: string[];
    try {
      tids = (await readdir(taskRoot)).filter((e) => NUMERIC.test(e));
    } catch (err) {
      if (vanished(err)) return [];
      throw this.procError(err, taskRoot);
    }
    const states = await Promise.all(
      tids.map(async (tid) => {
        const taskDir = join(taskRoot, tid);
        const state = await this.readProc(join(taskDir, 'patch_state'));
        return { tid: Number(tid), taskDir, state };
      }),
    );
    return states.filter(({ state }) => {
      if (state === undefined) return false;
      const value = Number.parseInt(state.trim(), 10);
      return !Number.isNaN(value) && value !== -1 && value !== target;
    });
  }

  /** Reads comm for the first `limit` candidates; tasks that exited meanwhile drop out. */
  private async describe(
    candidates: readonly Candidate[],
    limit: number,
  ): Promise<TransitionTasks> {
    const blocking: BlockingTask[] = [];
    let gone = 0;
    for (const c of candidates) {
      if (blocking.length >= limit) break;
      const comm = await this.readProc(join(c.taskDir, 'comm'));
      if (comm === undefined) gone++;
      else blocking.push({ pid: c.tid, comm: comm.trim() });
    }
    return { pending: candidates.length - gone, blocking };
  }

  /** A /proc read that tolerates the task exiting, and reports lack of access as EPERM. */
  private async readProc(path: string): Promise<string | undefined> {
    try {
      return await readOptional(path);
    } catch (err) {
      throw this.procError(err, path);
    }
  }

  private procError(err: unknown, path: string): KernelError {
    // patch_state is 0400: a non-root agent would silently see no blocking tasks.
    return new KernelError(errnoFromFsError(err), `read ${path}`, String(err));
  }

  private async writeAttr(name: PatchName, attr: string, value: string, op: string): Promise<void> {
    try {
      // O_WRONLY without O_CREAT: a vanished patch directory must answer ENOENT,
      // not create a file (matters on the fake tree; sysfs refuses creation anyway).
      await writeFile(join(this.patchDir(name), attr), value, { flag: constants.O_WRONLY });
    } catch (err) {
      throw new KernelError(errnoFromFsError(err), op, fsCode(err) ?? String(err));
    }
  }

  /**
   * Runs insmod/rmmod/modinfo without a shell and gives its stdout; a
   * non-zero exit becomes a KernelError from its stderr. A tool still running
   * after toolTimeoutMs is ETIMEDOUT at once: it is sent SIGKILL, but a
   * process blocked in a module's init may not die, and nothing waits for it.
   */
  private runTool(command: string, arg: string, op: string): Promise<string> {
    const tool = command.split('/').at(-1) ?? command;
    const limitMs = this.toolTimeoutMs;
    return new Promise((resolve, reject) => {
      const child = execFile(command, [arg], { env: TOOL_ENV }, (err, stdout, stderr) => {
        clearTimeout(timer);
        if (!err) {
          resolve(stdout);
          return;
        }
        const text = stderr.trim();
        reject(
          new KernelError(errnoFromModuleToolStderr(text), op, text !== '' ? text : err.message),
        );
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(toolTimedOut(tool, op, limitMs));
      }, limitMs);
    });
  }

  private patchDir(name: PatchName): string {
    // Re-checked here: the brand can be forged with a cast, and this string becomes a path.
    return this.sys('kernel', 'livepatch', patchName(name));
  }

  private sys(...parts: string[]): string {
    return join(this.opts.sysfsRoot, ...parts);
  }

  private proc(...parts: string[]): string {
    return join(this.opts.procRoot, ...parts);
  }
}

/** What the agent says when insmod, rmmod or modinfo outlasts its timeout. */
export function toolTimedOut(tool: string, op: string, limitMs: number): KernelError {
  return new KernelError(
    'ETIMEDOUT',
    op,
    `${tool} did not return within ${limitMs / 1000}s: the module's init or exit is blocked in the kernel (a livepatch callback that waits, say); the agent stopped waiting for it`,
  );
}

/** The detail of a KernelError without the "op: ERRNO: " prefix its message starts with. */
function toolMessage(err: KernelError): string {
  const prefix = `${err.operation}: ${err.errno}: `;
  return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}

/** The ELF header check of elf.ts on the file itself: its first bytes and its size. */
async function elfProblem(path: string): Promise<string | undefined> {
  const file = await open(path, 'r');
  try {
    const head = new Uint8Array(ELF_HEADER_BYTES);
    const { bytesRead } = await file.read(head, 0, ELF_HEADER_BYTES, 0);
    const { size } = await file.stat();
    return elfModuleProblem(head.subarray(0, bytesRead), size, process.arch);
  } finally {
    await file.close();
  }
}

/** modinfo's "field:   value" lines; a file without name or vermagic is not a kernel module. */
export function parseModinfo(stdout: string, modulePath: string): ModuleInfo {
  const fields = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^([a-z_]+):\s*(.*)$/.exec(line);
    if (m?.[1] && !fields.has(m[1])) fields.set(m[1], (m[2] ?? '').trim());
  }
  const name = fields.get('name');
  const vermagic = fields.get('vermagic');
  if (!name || !vermagic)
    throw new KernelError(
      'ENOEXEC',
      `modinfo ${modulePath}`,
      'not a kernel module: modinfo shows no name or vermagic',
    );
  // The name it loads under: a dash modinfo shows is an underscore to the kernel.
  return { name: kernelModuleName(name), vermagic, livepatch: fields.get('livepatch') === 'Y' };
}
