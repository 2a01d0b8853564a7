// The API server's watch history of the LivePatchNodes during a scenario:
// every change of an entry's phase, with the moment the suite received it.
// Where the agent's Loading begins (before its kernel's insmod) is read from
// here; a watch sees each write, where the 4-a-second sampler may miss a
// short one. The reflector re-watches from its last resourceVersion after an
// outage, so a restart of the API server or etcd delays events, never drops
// them (unless the server answers 410 Gone and it lists again).
import type { LivePatchNode } from '../../src/api/generated/types.js';
import type { KubeConfig } from '../../src/kube/config.js';
import { Reflector } from '../../src/kube/reflector.js';
import { PATHS } from '../../src/kube/resources.js';
import { createLogger } from '../../src/log.js';
import type { PhaseSeen } from './evidence.js';

export class WatchHistory {
  readonly seen: PhaseSeen[] = [];
  private readonly last = new Map<string, string>();
  private readonly reflector: Reflector<LivePatchNode>;

  constructor(kc: KubeConfig) {
    this.reflector = new Reflector<LivePatchNode>(kc, {
      path: PATHS.livePatchNodes,
      log: createLogger({ component: 'chaos-watch', format: 'text', level: 'error' }),
      onChange: (name) => {
        this.record(name, this.reflector.get(name));
      },
    });
  }

  private record(node: string, lpn: LivePatchNode | undefined): void {
    const at = Date.now();
    for (const p of lpn?.status?.patches ?? []) {
      const key = `${node}/${p.livePatch}/${p.patchName}`;
      if (this.last.get(key) === p.phase) continue;
      this.last.set(key, p.phase);
      this.seen.push({ at, node, livePatch: p.livePatch, patchName: p.patchName, phase: p.phase });
    }
  }

  /** Resolves once the first list is in: changes after it are seen. */
  async start(): Promise<void> {
    this.reflector.start();
    await this.reflector.waitForSync();
  }

  stop(): void {
    this.reflector.stop();
  }
}
