// One watch connection: GET ?watch=true, one JSON event per line, until the
// server ends it (timeoutSeconds), the caller aborts it, it stays silent past
// IDLE_MS (a dead peer), or a line is not an event. The reflector opens the
// next one.
import type { RequestOptions } from 'node:http';
import { retryAfterMs } from './backoff.js';
import type { KubeConfig } from './config.js';
import { apiRequestDone } from './requests.js';
import { send } from './transport.js';

/** The server ends each watch after a random 5 to 10 minutes, as client-go asks, so watchers spread out. */
const MIN_TIMEOUT_S = 300;
/** With bookmarks asked for, the server sends one about every minute: this much silence means a dead connection. */
const IDLE_MS = 150_000;

export type WatchEvent = (type: string, object: unknown) => void;
/** `err` undefined: the server ended the watch; WatchIdleError: no byte for IDLE_MS; else what broke. */
export type WatchDone = (err?: Error) => void;
/** The server accepted the watch (HTTP 200): it is reachable, whether or not events follow. */
export type WatchOpen = () => void;

export interface WatchHandlers {
  readonly onEvent: WatchEvent;
  readonly onDone: WatchDone;
  readonly onOpen?: WatchOpen;
}

export class WatchIdleError extends Error {
  override readonly name = 'WatchIdleError';
}

/** The server refused the watch: 410 means the resourceVersion is gone. */
export class WatchHttpError extends Error {
  override readonly name = 'WatchHttpError';
  constructor(
    message: string,
    readonly code: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** A line that is not a watch event: the stream can no longer be trusted. */
export class WatchDecodeError extends Error {
  override readonly name = 'WatchDecodeError';
}

function parseEvent(line: string): { type: string; object: unknown } | undefined {
  try {
    const event = JSON.parse(line) as unknown;
    if (typeof event !== 'object' || event === null) return undefined;
    const { type, object } = event as { type?: unknown; object?: unknown };
    const whole = typeof type === 'string' && typeof object === 'object' && object !== null;
    return whole ? { type, object } : undefined;
  } catch {
    return undefined;
  }
}

export async function watch(
  kc: KubeConfig,
  path: string,
  query: Readonly<Record<string, string>>,
  { onEvent, onDone, onOpen }: WatchHandlers,
): Promise<AbortController> {
  const params = new URLSearchParams({
    ...query,
    watch: 'true',
    timeoutSeconds: String(MIN_TIMEOUT_S + Math.floor(Math.random() * MIN_TIMEOUT_S)),
  });
  const url = new URL(`${path}?${params.toString()}`, kc.server);
  const abort = new AbortController();
  const opts: RequestOptions = {
    method: 'GET',
    headers: { Accept: 'application/json' },
    signal: abort.signal,
  };
  await kc.authorize(opts);
  let finished = false;
  const finish = (err?: Error): void => {
    if (finished) return;
    finished = true;
    onDone(err);
  };
  let answered = false;
  const req = send(url, opts, (res) => {
    answered = true;
    apiRequestDone('GET', url, res.statusCode);
    if (res.statusCode !== 200) {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const code = res.statusCode ?? 0;
        const body = Buffer.concat(chunks).toString('utf8').slice(0, 300);
        const retryAfter = retryAfterMs(res.headers['retry-after'], Date.now());
        finish(new WatchHttpError(`watch ${path}: HTTP ${code}: ${body}`, code, retryAfter));
      });
      return;
    }
    onOpen?.();
    let pending = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline >= 0 && !finished) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.trim()) {
          const event = parseEvent(line);
          if (!event) {
            finish(new WatchDecodeError(`watch ${path}: not an event: ${line.slice(0, 200)}`));
            req.destroy();
            return;
          }
          onEvent(event.type, event.object);
        }
        newline = pending.indexOf('\n');
      }
    });
    res.on('end', () => {
      finish();
    });
    res.on('error', (err) => {
      finish(err);
    });
  });
  req.setTimeout(IDLE_MS, () => {
    req.destroy(new WatchIdleError(`watch ${path}: nothing for ${IDLE_MS / 1000}s`));
  });
  req.on('error', (err) => {
    // An abort by the caller is no failed request.
    if (!answered && !abort.signal.aborted) apiRequestDone('GET', url, undefined);
    finish(err);
  });
  req.end();
  return abort;
}
