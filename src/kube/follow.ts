// Watches one LivePatch until its status satisfies a predicate: the demo and
// the benchmark follow a rollout as it happens, without polling the API.
import type { KubeConfig } from './config.js';
import type { LivePatch } from '../api/generated/types.js';
import type { Logger } from '../log.js';
import { Reflector } from './reflector.js';
import { PATHS } from './resources.js';

export function followLivePatch(
  kc: KubeConfig,
  name: string,
  log: Logger,
  until: (lp: LivePatch) => boolean,
  onUpdate: (lp: LivePatch) => void = () => undefined,
): Promise<LivePatch> {
  return new Promise((resolve) => {
    const reflector: Reflector<LivePatch> = new Reflector<LivePatch>(kc, {
      path: PATHS.livePatches,
      fieldSelector: `metadata.name=${name}`,
      log,
      onChange: () => {
        const lp = reflector.get(name);
        if (!lp) return;
        onUpdate(lp);
        if (until(lp)) {
          reflector.stop();
          resolve(lp);
        }
      },
    });
    reflector.start();
  });
}
