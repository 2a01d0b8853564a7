// Events on our cluster-scoped objects, for `kubectl describe` and `kubectl
// get events`. Cluster-scoped objects' events live in the default namespace.
import type { KubeConfig } from './config.js';
import type { Logger } from '../log.js';
import { rawJson } from './raw.js';
import { PATHS } from './resources.js';

export interface EventTarget {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid?: string;
}

export interface EventRecord {
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

const EVENT_NAMESPACE = 'default';

export class EventRecorder {
  constructor(
    private readonly kc: KubeConfig,
    private readonly component: string,
    private readonly host: string | undefined,
    private readonly log: Logger,
  ) {}

  /** Never throws: an event that cannot be written is logged, the decision stands. */
  async record(target: EventTarget, event: EventRecord): Promise<void> {
    const now = new Date().toISOString();
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${target.name}.`, namespace: EVENT_NAMESPACE },
      involvedObject: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        name: target.name,
        ...(target.uid ? { uid: target.uid } : {}),
      },
      type: event.type,
      reason: event.reason,
      message: event.message.slice(0, 1024),
      source: { component: this.component, ...(this.host ? { host: this.host } : {}) },
      reportingComponent: this.component,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await rawJson(this.kc, 'POST', PATHS.events(EVENT_NAMESPACE), body);
    } catch (err) {
      this.log.warn('cannot record event', {
        reason: event.reason,
        object: target.name,
        error: (err as Error).message,
      });
    }
  }
}
