// Runs a host tool for the lab (go, apt-get, dpkg-deb, make, tar, git) without
// a shell, and says what failed with the tail of its output. The lab's one
// runner of short-lived commands; long-lived processes are the control plane's
// (lab/controlplane/processes.ts) and the operator's (lab/operator-process.ts).
import { spawn } from 'node:child_process';

export interface CommandOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Each chunk of stderr as it comes (a long build's progress). */
  readonly onStderr?: (text: string) => void;
  /** What to do when the command cannot be started at all (not installed). */
  readonly missingHint?: string;
  /** Written to its stdin, which is then closed; without it stdin is empty. */
  readonly input?: string;
}

/** How a command ended, for callers that assert on a failure rather than throw on it. */
export interface CommandOutcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface OutcomeOptions {
  /** Its whole environment: nothing of this process's is passed on (a test of what a user's shell has). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly input?: string;
}

/** Runs a command to its end and resolves with its exit code and output; never rejects on a non-zero exit. */
export function commandOutcome(
  cmd: string,
  args: readonly string[],
  options: OutcomeOptions = {},
): Promise<CommandOutcome> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: options.env ?? process.env, stdio: 'pipe' });
    child.stdin.on('error', () => {
      // A command that exits without reading its input: its exit code tells.
    });
    child.stdin.end(options.input ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => {
      resolve({ code: 127, stdout, stderr: `${stderr}cannot run ${cmd} (${err.message})` });
    });
    child.on('close', (code) => {
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

const TAIL_CHARS = 4000;

/** Resolves with stdout; rejects with the command line and the tail of its output. */
export function runCommand(
  cmd: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: { ...process.env, LC_ALL: 'C', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.on('error', () => {
      // A command that exits without reading its input: its exit code tells.
    });
    child.stdin.end(options.input ?? '');
    let stdout = '';
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
      options.onStderr?.(d.toString());
    });
    child.on('error', (err) => {
      const hint = options.missingHint ? `; ${options.missingHint}` : '';
      reject(new Error(`cannot run ${cmd} (${err.message})${hint}`));
    });
    // 'close', not 'exit': the process can exit before its last output is read.
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else
        reject(
          new Error(
            `${cmd} ${args.join(' ')} failed (exit ${code}):\n${output.slice(-TAIL_CHARS)}`,
          ),
        );
    });
  });
}
