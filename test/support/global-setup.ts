// Integration tests share one real control plane per jest run. Its kubeconfig
// reaches the test workers through KUBECONFIG, which they inherit.
import { createLogger } from '../../src/log.js';
import { startControlPlane, type LocalControlPlane } from '../../lab/controlplane/controlplane.js';

declare global {
  var livepatchControlPlane: LocalControlPlane | undefined;
}

export default async function globalSetup(): Promise<void> {
  const log = createLogger({
    component: 'test-controlplane',
    format: 'text',
    level: process.env['LOG_LEVEL'] ?? 'warn',
  });
  const cluster = await startControlPlane({
    log,
    keepDir: process.env['KEEP_CONTROLPLANE'] === '1',
  });
  globalThis.livepatchControlPlane = cluster;
  process.env['KUBECONFIG'] = cluster.kubeconfig;
  process.env['LIVEPATCH_TEST_SERVER'] = cluster.server;
}
