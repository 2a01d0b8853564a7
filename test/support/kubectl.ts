// Tests drive the API the way a user does: the real kubectl binary with the
// kubeconfig of the shared control plane.
import { execFile } from 'node:child_process';

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const KUBECTL = process.env['KUBECTL'] ?? 'kubectl';

export function kubeconfigPath(): string {
  const path = process.env['KUBECONFIG'];
  if (!path)
    throw new Error(
      'KUBECONFIG is not set: run integration tests through jest (globalSetup starts the control plane)',
    );
  return path;
}

/** Runs kubectl; never throws on a non-zero exit, the caller asserts on it. */
export function kubectl(args: readonly string[], stdin?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      KUBECTL,
      ['--kubeconfig', kubeconfigPath(), ...args],
      { maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
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
