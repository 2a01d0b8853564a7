// A list-then-watch cache that never stays stopped: it re-watches from the
// last resourceVersion after any end, relists on 410 Gone, and backs off while
// the server is away. Consumers are level-triggered: `onChange` only says
// which key to look at. `transform` keeps only what its consumer reads
// (managedFields alone can be half of an object), for every copy it stores.
import type { KubeConfig } from './config.js';
import type { Logger } from '../log.js';
import { rawJson } from './raw.js';
import { watch, WatchIdleError } from './watch.js';

export interface KubeObject {
  metadata?: { name?: string; resourceVersion?: string };
}

export interface ReflectorOptions<T = unknown> {
  /** Collection path, e.g. /apis/livepatch.io/v1alpha1/livepatches. */
  readonly path: string;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  readonly log: Logger;
  /** Called with the name of every object that was added, changed or deleted. */
  readonly onChange: (name: string) => void;
  /** What is kept of each object (default: all of it). */
  readonly transform?: (object: T) => T;
}

interface ListResponse<T> {
  metadata?: { resourceVersion?: string };
  items: T[];
}

const MAX_BACKOFF_MS = 30_000;

export class Reflector<T extends KubeObject> {
  private readonly objects = new Map<string, T>();
  private resourceVersion = '';
  /** The resourceVersion each object was deleted at, since the last list. */
  private readonly deletedAt = new Map<string, number>();
  private stopped = false;
  private abort: AbortController | undefined;
  private backoffMs = 500;
  private synced = false;
  private readonly syncWaiters: (() => void)[] = [];

  constructor(
    private readonly kc: KubeConfig,
    private readonly options: ReflectorOptions<T>,
  ) {}

  get(name: string): T | undefined {
    return this.objects.get(name);
  }

  /**
   * Records an object this process just wrote (the server's answer), so reads
   * see the write before its watch event arrives. An older copy never replaces
   * a newer one: etcd's resourceVersions grow.
   */
  observe(object: T): void {
    const name = object.metadata?.name ?? '';
    const rv = Number(object.metadata?.resourceVersion ?? 0);
    // An answer that arrives after the object's deletion event must not bring it back.
    const deletedAt = this.deletedAt.get(name);
    if (deletedAt !== undefined && rv <= deletedAt) return;
    const known = Number(this.objects.get(name)?.metadata?.resourceVersion ?? 0);
    if (rv >= known) this.objects.set(name, this.keep(object));
  }

  /** One watch event into the cache; says whether the consumer should look at the object. */
  applyEvent(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T): void {
    const name = object.metadata?.name ?? '';
    if (type === 'DELETED') {
      this.objects.delete(name);
      this.deletedAt.set(name, Number(object.metadata?.resourceVersion ?? 0));
    } else {
      this.deletedAt.delete(name);
      this.observe(object);
    }
    this.options.onChange(name);
  }

  private keep(object: T): T {
    return this.options.transform ? this.options.transform(object) : object;
  }

  list(): T[] {
    return [...this.objects.values()];
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first list has filled the cache. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** A method, not the field: the loop's narrowing of `stopped` must not outlive an await. */
  private isStopped(): boolean {
    return this.stopped;
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  private query(extra: Record<string, string>): string {
    const params = new URLSearchParams(extra);
    if (this.options.fieldSelector) params.set('fieldSelector', this.options.fieldSelector);
    if (this.options.labelSelector) params.set('labelSelector', this.options.labelSelector);
    return params.toString();
  }

  private async relist(): Promise<void> {
    const response = await rawJson<ListResponse<T>>(
      this.kc,
      'GET',
      `${this.options.path}?${this.query({})}`,
    );
    const seen = new Set<string>();
    // A list is the whole truth: deletions seen before it need no memory.
    this.deletedAt.clear();
    for (const item of response.items) {
      const name = item.metadata?.name ?? '';
      seen.add(name);
      const before = this.objects.get(name);
      this.objects.set(name, this.keep(item));
      if (before?.metadata?.resourceVersion !== item.metadata?.resourceVersion)
        this.options.onChange(name);
    }
    for (const name of [...this.objects.keys()]) {
      if (!seen.has(name)) {
        this.objects.delete(name);
        this.options.onChange(name);
      }
    }
    this.resourceVersion = response.metadata?.resourceVersion ?? '';
    if (!this.synced) {
      this.synced = true;
      this.syncWaiters.splice(0).forEach((resolve) => {
        resolve();
      });
    }
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) await this.relist();
        needList = false;
        const outcome = await this.watchOnce();
        if (outcome === 'gone') needList = true;
        this.backoffMs = 500;
      } catch (err) {
        if (this.isStopped()) return;
        this.options.log.warn('watch failed; retrying', {
          path: this.options.path,
          error: (err as Error).message,
          retryInMs: this.backoffMs,
        });
        await new Promise((r) => setTimeout(r, this.backoffMs));
        this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
        needList = true;
      }
    }
  }

  /** One watch connection; resolves when it ends ('gone' when the resourceVersion expired). */
  private watchOnce(): Promise<'ended' | 'gone'> {
    return new Promise((resolve, reject) => {
      let gone = false;
      let failure: Error | undefined;
      const onEvent = (type: string, obj: unknown): void => {
        if (type === 'ERROR') {
          // 410: the resourceVersion expired, relist at once. Any other error: back off, then relist.
          const status = obj as { code?: number; message?: string };
          if (status.code === 410) gone = true;
          else failure = new Error(`watch error ${status.code ?? '?'}: ${status.message ?? ''}`);
          this.abort?.abort();
          return;
        }
        const object = obj as T;
        const rv = object.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (type === 'BOOKMARK') return;
        this.applyEvent(type as 'ADDED' | 'MODIFIED' | 'DELETED', object);
      };
      const onDone = (err: unknown): void => {
        if (failure) reject(failure);
        else if (gone) resolve('gone');
        else if (err && !this.stopped && !isIdleEnd(err))
          reject(err instanceof Error ? err : new Error(JSON.stringify(err)));
        else resolve('ended');
      };
      const query = {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: 'true',
        ...(this.options.fieldSelector ? { fieldSelector: this.options.fieldSelector } : {}),
        ...(this.options.labelSelector ? { labelSelector: this.options.labelSelector } : {}),
      };
      watch(this.kc, this.options.path, query, onEvent, onDone).then(
        (controller) => {
          this.abort = controller;
          if (this.stopped) controller.abort();
        },
        (err: unknown) => {
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }
}

/** A silent connection we closed, or our own abort: neither is a failure. */
function isIdleEnd(err: unknown): boolean {
  return err instanceof WatchIdleError || (err as { name?: string }).name === 'AbortError';
}
