// Runs the built `livepatch-operator` executable of the checkout (product and
// lab commands) as a separate process, the way a user or a pod does, and waits
// for what it prints. Tests, the benchmark and the fault suite share it.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repositoryRoot } from '../src/paths.js';
import { poll } from './wait.js';

export interface Running {
  readonly child: ChildProcess;
  /** What it printed (the last `keepChars` characters, when set). */
  output(): string;
  /** Resolves when the output matches, rejects when the process exits first or time runs out. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface RunOptions {
  /** Keep only the newest output: a long run at 1,000 nodes prints without end. */
  readonly keepChars?: number;
}

export function runOperator(
  args: readonly string[],
  env: Record<string, string> = {},
  o: RunOptions = {},
): Running {
  const main = join(repositoryRoot(), 'dist', 'lab', 'cli', 'main.js');
  const child = spawn(process.execPath, [main, ...args], {
    env: { ...process.env, LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const keep = (d: Buffer): void => {
    text += d.toString();
    if (o.keepChars !== undefined) text = text.slice(-o.keepChars);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      resolve(code);
    }),
  );
  const name = args[0] ?? '';
  return {
    child,
    output: () => text,
    waitFor: async (pattern, timeoutMs = 30_000) => {
      const r = await poll(
        () =>
          Promise.resolve(pattern.test(text) ? 'seen' : child.exitCode !== null ? 'exited' : ''),
        (state) => state !== '',
        timeoutMs,
        { intervalMs: 100 },
      );
      if (r.last === 'exited')
        throw new Error(`${name} exited (${child.exitCode}) before ${pattern}:\n${text}`);
      if (!r.ok)
        throw new Error(`no ${pattern} from ${name} within ${timeoutMs / 1000}s:\n${text}`);
    },
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
