// Runs the built `livepatch-operator` executable as a separate process, the
// way a user or a pod does, and waits for what it prints.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repositoryRoot } from '../../src/paths.js';

export interface Running {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves when the output matches, rejects when the process exits first or time runs out. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function runOperator(args: readonly string[], env: Record<string, string> = {}): Running {
  const main = join(repositoryRoot(), 'dist', 'src', 'cli', 'main.js');
  const child = spawn(process.execPath, [main, ...args], {
    env: { ...process.env, LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      resolve(code);
    }),
  );
  return {
    child,
    output: () => text,
    waitFor: async (pattern, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(text)) {
        if (child.exitCode !== null)
          throw new Error(`process exited (${child.exitCode}) before ${pattern}:\n${text}`);
        if (Date.now() > deadline)
          throw new Error(`no ${pattern} within ${timeoutMs / 1000}s:\n${text}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
