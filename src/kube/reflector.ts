// A list-then-watch cache that never stays stopped. It lists in pages at the
// latest resourceVersion, keeping each page through `transform` as it arrives; it re-watches from the last
// resourceVersion after any end or transient error, relists only when that
// resourceVersion is gone (410), and backs off with jitter while the server is
// away, never sooner than its Retry-After. Consumers are level-triggered:
// `onChange` says which key to look at, and what the cache held for it
// before, so a consumer can tell which of its work a change concerns. `transform` keeps only what its
// consumer reads (managedFields alone can be half of an object).
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from './config.js';
import type { Logger } from '../log.js';
import { NO_BACKOFF_YET, nextBackoff, WATCH_BACKOFF, type BackoffPolicy } from './backoff.js';
import { listPages } from './pager.js';
import { RawApiError } from './raw.js';
import { watch, WatchHttpError, WatchIdleError } from './watch.js';

export interface KubeObject {
  metadata?: { name?: string; resourceVersion?: string };
}

export interface ReflectorOptions<T = unknown> {
  /** Collection path, e.g. /apis/livepatch.io/v1alpha1/livepatches. */
  readonly path: string;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  readonly log: Logger;
  /**
   * Called with the name of every object that was added, changed or deleted,
   * and what the cache held for it before (kept through `transform`).
   */
  readonly onChange: (name: string, before: T | undefined) => void;
  /** Called for every watch event that reaches the cache (bookmarks aside), e.g. to count them. */
  readonly onEvent?: (type: 'ADDED' | 'MODIFIED' | 'DELETED') => void;
  /** What is kept of each object (default: all of it). */
  readonly transform?: (object: T) => T;
  /** Items per list request (default 500, as client-go). */
  readonly pageSize?: number;
  /** How long to wait between failed attempts (default: client-go's). */
  readonly backoff?: BackoffPolicy;
  /**
   * Where the first list is read: `latest` (default) at resourceVersion "",
   * paged; `cache` at "0", whatever state the watch cache holds, as client-go
   * does. `cache` is for a selector that picks a handful of objects (an
   * agent's own LivePatchNode): a list at "" with a field selector reads the
   * whole collection from etcd on servers that do not list consistently from
   * their cache (before Kubernetes 1.31), once per agent that starts.
   */
  readonly firstList?: 'latest' | 'cache';
}

const PAGE_SIZE = 500;
/** A watch that ends this soon with no event is a failure to back off from, not a normal end. */
const SHORT_WATCH_MS = 1000;
/** A watch open this long, or one that delivered an event, was served: the backoff starts over. */
const SERVED_WATCH_MS = 10_000;

export class Reflector<T extends KubeObject> {
  private readonly objects = new Map<string, T>();
  private resourceVersion = '';
  /** The resourceVersion each object was deleted at, since the last list. */
  private readonly deletedAt = new Map<string, number>();
  /** The last list's resourceVersion is gone: the next list reads from etcd at its latest. */
  private resourceVersionGone = false;
  /** The server paged a list before: it honours `limit`, so later lists ask for pages too. */
  private paginated = false;
  private stopped = false;
  private readonly stopping = new AbortController();
  private abort: AbortController | undefined;
  private backoff = NO_BACKOFF_YET;
  private synced = false;
  /** Since when every list or watch has failed; undefined while the server answers. */
  private troubleSince: number | undefined;
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
    const before = this.objects.get(name);
    this.options.onEvent?.(type);
    if (type === 'DELETED') {
      this.objects.delete(name);
      this.deletedAt.set(name, Number(object.metadata?.resourceVersion ?? 0));
    } else {
      this.deletedAt.delete(name);
      this.observe(object);
    }
    this.options.onChange(name, before);
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

  /** Since when the server has not answered this cache's lists and watches; undefined while it does. */
  unansweredSince(): number | undefined {
    return this.troubleSince;
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
    this.stopping.abort();
    this.abort?.abort();
  }

  private query(extra: Record<string, string>): Record<string, string> {
    return {
      ...extra,
      ...(this.options.fieldSelector ? { fieldSelector: this.options.fieldSelector } : {}),
      ...(this.options.labelSelector ? { labelSelector: this.options.labelSelector } : {}),
    };
  }

  /**
   * The latest ("") at first, then no older than what was seen, or the latest
   * again once that is gone. Not client-go's "0" at first unless asked
   * (`firstList: 'cache'`): the watch cache answers a list at "0" whole
   * whatever its limit (10,000 Nodes as a kubelet writes them: 130 MB of JSON
   * in one answer, more than the controller's heap), while a list at "" is
   * paged, from etcd or from the watch cache where the API server reads
   * consistently from it.
   */
  private listResourceVersion(): string {
    if (this.resourceVersionGone) return '';
    if (this.resourceVersion === '' && this.options.firstList === 'cache') return '0';
    return this.resourceVersion;
  }

  private async relist(): Promise<void> {
    let listed: Listed<T>;
    try {
      listed = await this.listAt(this.listResourceVersion());
    } catch (err) {
      if (!(err instanceof RawApiError && err.code === 410)) throw err;
      // The resourceVersion asked for, or a continue token's snapshot, was compacted away.
      this.resourceVersionGone = true;
      listed = await this.listAt('');
    }
    this.resourceVersionGone = false;
    this.troubleSince = undefined;
    this.replace(listed);
  }

  private async listAt(resourceVersion: string): Promise<Listed<T>> {
    // The watch cache answers a list at a given resourceVersion whole, and only when no
    // limit is asked; with a limit it would go to etcd. "" and "0" lists are paged (a
    // server, or a watch cache, that cannot page answers them whole).
    const page =
      this.paginated || resourceVersion === '' || resourceVersion === '0'
        ? (this.options.pageSize ?? PAGE_SIZE)
        : undefined;
    const items = new Map<string, T>();
    const listed = await listPages(
      this.kc,
      this.options.path,
      this.query(resourceVersion ? { resourceVersion } : {}),
      page,
      (objects) => {
        for (const item of objects as readonly T[])
          items.set(item.metadata?.name ?? '', this.keep(item));
      },
    );
    if (listed.paginated) this.paginated = true;
    return { items, resourceVersion: listed.resourceVersion };
  }

  /** A list is the whole truth: what it lacks was deleted. */
  private replace(listed: Listed<T>): void {
    // Deletions seen before it need no memory.
    this.deletedAt.clear();
    for (const [name, item] of listed.items) {
      const before = this.objects.get(name);
      this.objects.set(name, item);
      if (before?.metadata?.resourceVersion !== item.metadata?.resourceVersion)
        this.options.onChange(name, before);
    }
    for (const [name, before] of [...this.objects]) {
      if (!listed.items.has(name)) {
        this.objects.delete(name);
        this.options.onChange(name, before);
      }
    }
    this.resourceVersion = listed.resourceVersion;
    if (!this.synced) {
      this.synced = true;
      this.syncWaiters.splice(0).forEach((resolve) => {
        resolve();
      });
    }
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.isStopped()) {
      let trouble: Error;
      try {
        if (needList) await this.relist();
        needList = false;
        if ((await this.watchOnce()) === 'ended') continue;
        // Relisting is the expensive request: a fleet told 410 at once spreads its relists.
        needList = true;
        trouble = new Error(`resourceVersion ${this.resourceVersion} is gone (410); relisting`);
      } catch (err) {
        if (this.isStopped()) return;
        // A list that failed is tried again; a watch that failed resumes where it was.
        trouble = err instanceof Error ? err : new Error(String(err));
      }
      this.troubleSince ??= Date.now();
      await this.backOff(trouble);
    }
  }

  private async backOff(trouble: Error): Promise<void> {
    const next = nextBackoff(
      this.options.backoff ?? WATCH_BACKOFF,
      this.backoff,
      Date.now(),
      Math.random,
    );
    this.backoff = next.state;
    // The server's Retry-After is a floor: it knows how long it needs.
    const waitMs = Math.round(Math.max(next.delayMs, retryAfterOf(trouble) ?? 0));
    this.options.log.warn('watch failed; retrying', {
      path: this.options.path,
      error: trouble.message,
      retryInMs: waitMs,
    });
    await sleep(waitMs, undefined, { signal: this.stopping.signal }).catch(() => undefined);
  }

  /**
   * One watch connection from the last resourceVersion; resolves when it ends
   * ('gone' when that resourceVersion expired), rejects on a failure.
   */
  private watchOnce(): Promise<'ended' | 'gone'> {
    const startedAt = Date.now();
    let events = 0;
    return new Promise((resolve, reject) => {
      let gone = false;
      let failure: Error | undefined;
      const onEvent = (type: string, obj: unknown): void => {
        events++;
        // The server is back and serving: the next trouble starts small again, so a
        // second outage soon after the first is not waited out for up to a minute.
        if (type !== 'ERROR') this.backoff = NO_BACKOFF_YET;
        if (type === 'ERROR') {
          // 410: the resourceVersion expired, relist. Any other error: back off, then watch again.
          const status = obj as StatusObject;
          if (status.code === 410) gone = true;
          else failure = statusError(status);
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
        if (!failure && Date.now() - startedAt >= SERVED_WATCH_MS) this.backoff = NO_BACKOFF_YET;
        if (failure) reject(failure);
        else if (gone || (err instanceof WatchHttpError && err.code === 410)) resolve('gone');
        else if (err && !this.stopped && !isIdleEnd(err))
          reject(err instanceof Error ? err : new Error(JSON.stringify(err)));
        else if (!err && events === 0 && Date.now() - startedAt < SHORT_WATCH_MS)
          reject(new Error('the watch closed at once with no event'));
        else resolve('ended');
      };
      const query = this.query({
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: 'true',
      });
      const onOpen = (): void => {
        this.troubleSince = undefined;
      };
      watch(this.kc, this.options.path, query, { onEvent, onDone, onOpen }).then(
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

interface Listed<T> {
  readonly items: Map<string, T>;
  readonly resourceVersion: string;
}

interface StatusObject {
  code?: number;
  message?: string;
  details?: { retryAfterSeconds?: number };
}

function statusError(status: StatusObject): WatchHttpError {
  const after = status.details?.retryAfterSeconds;
  return new WatchHttpError(
    `watch error ${status.code ?? '?'}: ${status.message ?? ''}`,
    status.code ?? 0,
    after === undefined ? undefined : after * 1000,
  );
}

function retryAfterOf(err: Error): number | undefined {
  return err instanceof RawApiError || err instanceof WatchHttpError ? err.retryAfterMs : undefined;
}

/** A silent connection we closed, or our own abort: neither is a failure. */
function isIdleEnd(err: unknown): boolean {
  return err instanceof WatchIdleError || (err as { name?: string }).name === 'AbortError';
}
