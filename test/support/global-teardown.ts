// Stops the shared control plane; its watchdog covers a runner that dies first.
import './global-setup.js';

export default async function globalTeardown(): Promise<void> {
  await globalThis.livepatchControlPlane?.stop();
  globalThis.livepatchControlPlane = undefined;
}
