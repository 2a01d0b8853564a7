// An API server on loopback that answers the reconciler's few requests from
// maps, and map-backed caches that can lag it: what a reconcile reads, writes
// and sends is then seen request by request, in milliseconds.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  LivePatch,
  LivePatchNode,
  LivePatchStatus,
} from '../../../src/api/generated/types.js';
import { PATHS, type NodeObject } from '../../../src/kube/resources.js';
import type { KubeObject } from '../../../src/kube/reflector.js';
import type { Cache } from '../../../src/controller/reconciler.js';
import type { EventRecord, EventTarget } from '../../../src/kube/events.js';

export interface Request {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
}

/** A cache as the informers keep it: whatever was put there, plus the reconciler's own writes. */
export class MapCache<T extends KubeObject> implements Cache<T> {
  readonly objects = new Map<string, T>();
  constructor(items: readonly T[] = []) {
    for (const item of items) this.objects.set(item.metadata?.name ?? '', item);
  }
  get(name: string): T | undefined {
    return this.objects.get(name);
  }
  list(): T[] {
    return [...this.objects.values()];
  }
  observe(object: T): void {
    this.objects.set(object.metadata?.name ?? '', object);
  }
}

export class FakeEvents {
  readonly recorded: { target: EventTarget; event: EventRecord }[] = [];
  record(target: EventTarget, event: EventRecord): Promise<void> {
    this.recorded.push({ target, event });
    return Promise.resolve();
  }
}

async function bodyOf(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as unknown) : undefined;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A JSON merge patch (RFC 7386), as the API server applies it: objects merge, null removes, the rest replaces. */
function mergePatched(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return patch;
  const base = isRecord(target) ? target : {};
  const keys = new Set([...Object.keys(base), ...Object.keys(patch)]);
  return Object.fromEntries(
    [...keys]
      .filter((k) => patch[k] !== null)
      .map((k) => [k, k in patch ? mergePatched(base[k], patch[k]) : base[k]]),
  );
}

/** The stored LivePatches and LivePatchNodes; PATCHes of `failing` nodes and LivePatch statuses answer 500. */
export class FakeApi {
  readonly livePatches = new Map<string, LivePatch>();
  readonly livePatchNodes = new Map<string, LivePatchNode>();
  readonly failing = new Set<string>();
  readonly requests: Request[] = [];
  /** How long each request takes, so that requests in lanes overlap. */
  latencyMs = 0;
  /** The most requests answered at once. */
  maxInFlight = 0;
  private inFlight = 0;
  private server: Server | undefined;
  private version = 100;

  async start(): Promise<{ server: string; authorize: () => Promise<void> }> {
    this.server = createServer((req, res) => {
      void bodyOf(req).then(async (body) => {
        this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
        await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
        this.inFlight--;
        const path = (req.url ?? '').split('?')[0] ?? '';
        this.requests.push({ method: req.method ?? '', path, body });
        const [code, answer] = this.answer(req.method ?? '', path, body);
        res.writeHead(code, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return { server: `http://127.0.0.1:${port}`, authorize: () => Promise.resolve() };
  }

  stop(): Promise<void> {
    return new Promise((resolve) =>
      this.server?.close(() => {
        resolve();
      }),
    );
  }

  /** The requests to one collection, by method. */
  sent(method: string, prefix: string): Request[] {
    return this.requests.filter((r) => r.method === method && r.path.startsWith(prefix));
  }

  private answer(method: string, path: string, body: unknown): [number, unknown] {
    const rv = String(++this.version);
    const lpPrefix = `${PATHS.livePatches}/`;
    const lpnPrefix = `${PATHS.livePatchNodes}/`;
    type Part = Record<string, unknown>;
    const patch = body as { metadata?: Part; spec?: Part; status?: Part };
    if (path.startsWith(lpnPrefix)) {
      const name = path.slice(lpnPrefix.length);
      const lpn = this.livePatchNodes.get(name);
      if (!lpn) return [404, { message: `livepatchnodes "${name}" not found` }];
      if (method === 'GET') return [200, lpn];
      if (this.failing.has(name)) return [500, { message: 'etcdserver: request timed out' }];
      const written = {
        ...lpn,
        metadata: Object.assign({}, lpn.metadata, { resourceVersion: rv }),
        spec: { ...lpn.spec, ...patch.spec },
      };
      this.livePatchNodes.set(name, written);
      return [200, written];
    }
    if (path.startsWith(lpPrefix)) {
      const [name = '', sub] = path.slice(lpPrefix.length).split('/');
      const lp = this.livePatches.get(name);
      if (!lp) return [404, { message: `livepatches.livepatch.io "${name}" not found` }];
      if (method === 'GET') return [200, lp];
      if (sub === 'status' && this.failing.has(name))
        return [500, { message: 'etcdserver: request timed out' }];
      const written: LivePatch = {
        ...lp,
        metadata: Object.assign({}, lp.metadata, sub === 'status' ? {} : patch.metadata, {
          resourceVersion: rv,
        }),
        ...(sub === 'status'
          ? { status: mergePatched(lp.status, patch.status) as LivePatchStatus }
          : {}),
      };
      this.livePatches.set(name, written);
      return [200, written];
    }
    return [404, { message: `no ${method} ${path} here` }];
  }
}

export function readyNode(name: string, kernel: string): NodeObject {
  return {
    metadata: { name },
    status: {
      nodeInfo: { kernelVersion: kernel },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}
