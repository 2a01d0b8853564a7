// `livepatch-operator cluster`: a local control plane for trying things by
// hand. Prints the kubeconfig path and stays up until Ctrl-C.
import { parseArgs } from 'node:util';
import { createLogger } from '../../src/log.js';
import { startControlPlane } from '../controlplane/controlplane.js';
import { untilSignal } from '../../src/cli/signals.js';

const HELP = `Usage: livepatch-operator cluster [--keep]

Starts etcd and kube-apiserver on free loopback ports, installs the LivePatch
CRDs, prints KUBECONFIG=<path> and stays up until interrupted (Ctrl-C).
The first run builds the binaries from lab/go/controlplane (several minutes);
later runs reuse the cache. KUBEBUILDER_ASSETS=<dir> uses existing binaries.

  --keep    keep the data folder (logs, etcd data) after stopping
`;

export async function runCluster(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const log = createLogger({ component: 'cluster' });
  const cluster = await startControlPlane({ log, keepDir: values.keep ?? false });
  process.stdout.write(`KUBECONFIG=${cluster.kubeconfig}\n`);
  const signal = await untilSignal();
  log.info('stopping the local control plane', { signal });
  await cluster.stop();
  return 0;
}
