// Tests drive the API the way a user does: the real kubectl binary with the
// kubeconfig of the shared control plane.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { commandOutcome, type CommandOutcome } from '../../lab/command.js';
import { repositoryRoot } from '../../src/paths.js';

export type KubectlResult = CommandOutcome;

const KUBECTL = process.env['KUBECTL'] ?? 'kubectl';

export function kubeconfigPath(): string {
  const path = process.env['KUBECONFIG'];
  if (!path)
    throw new Error(
      'KUBECONFIG is not set: run integration tests through jest (globalSetup starts the control plane)',
    );
  return path;
}

let pluginDir: string | undefined;

/** A folder with `kubectl-livepatch` (the built plugin), for kubectl's plugin lookup on PATH. */
function pluginPath(): string {
  if (!pluginDir) {
    pluginDir = mkdtempSync(join(tmpdir(), 'kubectl-plugins-'));
    const plugin = join(repositoryRoot(), 'dist', 'src', 'cli', 'kubectl-livepatch.js');
    const wrapper = join(pluginDir, 'kubectl-livepatch');
    writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${plugin}" "$@"\n`);
    chmodSync(wrapper, 0o755);
  }
  return pluginDir;
}

function kubectlEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KUBECONFIG: kubeconfigPath(),
    PATH: `${pluginPath()}${delimiter}${process.env['PATH'] ?? ''}`,
  };
}

/** A kubectl that keeps running (`-w`), with what it printed so far. */
export interface KubectlWatch {
  output(): string;
  stop(): Promise<void>;
}

/** `terminal`: run it on a pseudo-terminal (util-linux script), as in a person's shell. */
export function kubectlWatch(
  args: readonly string[],
  o: { readonly terminal?: boolean } = {},
): KubectlWatch {
  const quoted = [KUBECTL, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const [command, argv] = o.terminal
    ? ['script', ['--quiet', '--flush', '--return', '--command', quoted, '/dev/null']]
    : [KUBECTL, [...args]];
  const child = spawn(command, argv, { env: kubectlEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<void>((resolve) =>
    child.on('exit', () => {
      resolve();
    }),
  );
  return {
    output: () => text,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      await exited;
    },
  };
}

/** Runs kubectl (with the livepatch plugin installed); never throws on a non-zero exit, the caller asserts on it. */
export function kubectl(args: readonly string[], stdin?: string): Promise<KubectlResult> {
  // KUBECONFIG rather than --kubeconfig: kubectl refuses flags before a plugin's name.
  return commandOutcome(KUBECTL, args, {
    env: kubectlEnv(),
    ...(stdin === undefined ? {} : { input: stdin }),
  });
}

/** Runs kubectl and fails the test with kubectl's own words if it fails. */
export async function kubectlOk(args: readonly string[], stdin?: string): Promise<string> {
  const result = await kubectl(args, stdin);
  if (result.code !== 0)
    throw new Error(`kubectl ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

export async function kubectlJson<T>(args: readonly string[]): Promise<T> {
  return JSON.parse(await kubectlOk([...args, '-o', 'json'])) as T;
}
