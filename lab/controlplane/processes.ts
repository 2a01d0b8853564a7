// Child processes of the local control plane: started with their output in a
// log file, stopped gently then firmly, and never outliving their owner: a
// detached watchdog kills them if the owning process dies without cleaning up
// (SIGKILL, a crashed test runner).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';

export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<string>;
}

export function startManaged(
  name: string,
  command: string,
  args: readonly string[],
  logFile: string,
): Managed {
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const exited = new Promise<string>((resolve) => {
    child.on('exit', (code, signal) => {
      resolve(signal ?? `exit ${code ?? '?'}`);
    });
    child.on('error', (err) => {
      resolve(`failed to start: ${err.message}`);
    });
  });
  return { name, child, logFile, exited };
}

export async function logTail(managed: Managed, lines = 30): Promise<string> {
  const text = await readFile(managed.logFile, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export async function stopManaged(managed: Managed, graceMs = 10_000): Promise<void> {
  if (managed.child.exitCode !== null || managed.child.signalCode !== null) return;
  managed.child.kill('SIGTERM');
  const timer = setTimeout(() => managed.child.kill('SIGKILL'), graceMs);
  await managed.exited;
  clearTimeout(timer);
}

// Runs as `node -e`, so it needs no file on disk and works from src or dist.
const WATCHDOG = `
const [owner, dir, ...pids] = process.argv.slice(1).map((v, i) => (i === 1 ? v : Number(v)));
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const kill = (sig) => pids.forEach((pid) => { try { process.kill(pid, sig); } catch {} });
let dying = false;
setInterval(() => {
  if (dying) return;
  if (alive(owner)) {
    if (pids.every((pid) => !alive(pid))) process.exit(0);
    return;
  }
  dying = true;
  kill('SIGTERM');
  setTimeout(() => { kill('SIGKILL'); require('fs').rmSync(dir, { recursive: true, force: true }); process.exit(0); }, 5000);
}, 1000);
`;

/** Kills `children` and removes `dir` if this process dies first. */
export function startWatchdog(dir: string, children: readonly Managed[]): ChildProcess {
  const pids = children.map((c) => String(c.child.pid ?? 0));
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG, String(process.pid), dir, ...pids], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();
  return watchdog;
}
