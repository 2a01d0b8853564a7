// Runs a host tool for the real-kernel harness (apt-get, dpkg-deb, make,
// modinfo) without a shell, and says what failed with the tail of its output.
import { spawn } from 'node:child_process';

export interface CommandOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export function runCommand(
  cmd: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: { ...process.env, LC_ALL: 'C', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err) => {
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.on('exit', (code) => {
      if (code === 0) resolve(stdout);
      else
        reject(
          new Error(`${cmd} ${args.join(' ')} failed (exit ${code}):\n${output.slice(-3000)}`),
        );
    });
  });
}
