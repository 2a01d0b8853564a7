// An API server for one collection on loopback HTTP, as far as a reflector
// sees it: lists honour `limit` with continue tokens, watches stay open until
// the test ends them, and a test can script the next answer to a list or a
// watch (an error status, a Retry-After, raw lines).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '../../../src/kube/config.js';
import { waitUntil } from '../../../lab/wait.js';

export interface Thing {
  metadata: { name: string; resourceVersion: string; managedFields?: unknown[] };
  spec?: { size: number };
}

export interface Scripted {
  readonly status?: number;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
  /** A watch only: lines written on a 200 before the stream ends (or stays open). */
  readonly lines?: readonly string[];
  readonly end?: boolean;
  /** Answers only a request this holds for (default: the next one). */
  readonly when?: (query: URLSearchParams) => boolean;
}

export interface Seen {
  readonly kind: 'list' | 'watch';
  readonly query: URLSearchParams;
  readonly at: number;
}

export class FakeApiServer {
  readonly path = '/apis/example.io/v1/things';
  private readonly objects = new Map<string, Thing>();
  private rv = 100;
  readonly seen: Seen[] = [];
  private readonly watches = new Set<ServerResponse>();
  private readonly scripts: Record<'list' | 'watch', Scripted[]> = { list: [], watch: [] };
  /** Snapshots behind continue tokens: a continued list reads the state it began with. */
  private readonly snapshots = new Map<string, { items: Thing[]; rv: number }>();
  private server: Server | undefined;

  async start(): Promise<KubeConfig> {
    this.server = createServer((req, res) => {
      this.handle(req, res);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return { server: `http://127.0.0.1:${port}`, authorize: () => Promise.resolve() };
  }

  async stop(): Promise<void> {
    for (const res of this.watches) res.destroy();
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Writes an object without telling the watchers (as a change made while a watch was down). */
  put(name: string, size = 1): Thing {
    this.rv++;
    const thing: Thing = {
      metadata: { name, resourceVersion: String(this.rv), managedFields: [{ manager: 'x' }] },
      spec: { size },
    };
    this.objects.set(name, thing);
    return thing;
  }

  remove(name: string): Thing {
    const thing = this.objects.get(name);
    if (!thing) throw new Error(`no ${name}`);
    this.objects.delete(name);
    this.rv++;
    return { ...thing, metadata: { ...thing.metadata, resourceVersion: String(this.rv) } };
  }

  /** Sends one event to every open watch. */
  emit(type: string, object: unknown): void {
    for (const res of this.watches) res.write(`${JSON.stringify({ type, object })}\n`);
  }

  /** Writes raw text to every open watch. */
  write(text: string): void {
    for (const res of this.watches) res.write(text);
  }

  /** Ends every open watch as the server does at its timeoutSeconds. */
  endWatches(): void {
    for (const res of this.watches) res.end();
    this.watches.clear();
  }

  get openWatches(): number {
    return this.watches.size;
  }

  script(kind: 'list' | 'watch', answer: Scripted): void {
    this.scripts[kind].push(answer);
  }

  requests(kind: 'list' | 'watch'): Seen[] {
    return this.seen.filter((s) => s.kind === kind);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (url.pathname !== this.path) {
      res.writeHead(404).end();
      return;
    }
    const kind = url.searchParams.get('watch') === 'true' ? 'watch' : 'list';
    this.seen.push({ kind, query: url.searchParams, at: Date.now() });
    const queue = this.scripts[kind];
    const at = queue.findIndex((s) => !s.when || s.when(url.searchParams));
    const scripted = at >= 0 ? queue.splice(at, 1)[0] : undefined;
    if (scripted && (scripted.status ?? 200) !== 200) {
      res.writeHead(scripted.status ?? 500, {
        'Content-Type': 'application/json',
        ...scripted.headers,
      });
      res.end(JSON.stringify(scripted.body ?? { kind: 'Status', code: scripted.status }));
      return;
    }
    if (kind === 'list') this.list(url.searchParams, res);
    else this.watch(res, scripted);
  }

  private list(query: URLSearchParams, res: ServerResponse): void {
    const token = query.get('continue');
    const snapshot = token
      ? this.snapshots.get(token)
      : {
          items: [...this.objects.values()].sort((a, b) =>
            a.metadata.name.localeCompare(b.metadata.name),
          ),
          rv: this.rv,
        };
    if (!snapshot) throw new Error(`unknown continue token ${token}`);
    const offset = token ? Number(token.split(':')[1]) : 0;
    const limit = Number(query.get('limit') ?? 0) || snapshot.items.length;
    const items = snapshot.items.slice(offset, offset + limit);
    const more = offset + limit < snapshot.items.length;
    const next = more ? `page:${offset + limit}:${this.snapshots.size}` : undefined;
    if (next) this.snapshots.set(next, snapshot);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(
      JSON.stringify({
        kind: 'ThingList',
        metadata: { resourceVersion: String(snapshot.rv), ...(next ? { continue: next } : {}) },
        items,
      }),
    );
  }

  private watch(res: ServerResponse, scripted: Scripted | undefined): void {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    for (const line of scripted?.lines ?? []) res.write(line);
    if (scripted?.end) {
      res.end();
      return;
    }
    this.watches.add(res);
    res.on('close', () => this.watches.delete(res));
  }
}

/** Waits until `check` holds, polling every 5 ms; fails with `what` after `ms`. */
export async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  await waitUntil(
    what,
    () => Promise.resolve(check()),
    (held) => held,
    ms,
    5,
  );
}
