// Plain JSON requests to the API server: every call the operator makes. No
// typed client in between: client-node's serializer drops keys its models do
// not know (every `x-kubernetes-*` extension of a CRD schema), and its import
// alone costs each process about 85 MiB.
import type { RequestOptions } from 'node:http';
import type { KubeConfig } from './config.js';
import { retryAfterMs } from './backoff.js';
import { apiRequestDone } from './requests.js';
import { send } from './transport.js';

const REQUEST_TIMEOUT_MS = 30_000;

export class RawApiError extends Error {
  override readonly name = 'RawApiError';
  constructor(
    readonly code: number,
    readonly body: string,
    /** What a 429 or 503 asked the client to wait, when it said. */
    readonly retryAfterMs?: number,
  ) {
    super(`${statusMessage(body)} (HTTP ${code})`);
  }
}

function statusMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    return typeof parsed.message === 'string' ? parsed.message : body;
  } catch {
    return body;
  }
}

export async function rawJson<T>(
  kc: KubeConfig,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<T> {
  const url = new URL(path, kc.server);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (payload !== undefined) {
    headers['Content-Type'] = contentType;
    // Node frames a DELETE's body only when told its length; unframed, the API server reads it as the next request.
    headers['Content-Length'] = String(Buffer.byteLength(payload));
  }
  // A request that never answers must not hang the agent's stall guard or the controller's worker.
  const opts: RequestOptions = { method, headers, timeout: REQUEST_TIMEOUT_MS };
  await kc.authorize(opts);
  return new Promise<T>((resolve, reject) => {
    let answered = false;
    const req = send(url, opts, (res) => {
      answered = true;
      apiRequestDone(method, url, res.statusCode);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('aborted', () => {
        reject(new Error(`${method} ${path}: the connection closed mid-response`));
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const code = res.statusCode ?? 0;
        if (code < 200 || code >= 300) {
          const retryAfter = retryAfterMs(res.headers['retry-after'], Date.now());
          reject(new RawApiError(code, text, retryAfter));
          return;
        }
        try {
          resolve(JSON.parse(text) as T);
        } catch {
          reject(new Error(`${method} ${path}: HTTP ${code} but not JSON: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('timeout', () => {
      req.destroy(new Error(`${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS / 1000}s`));
    });
    req.on('error', (err) => {
      if (!answered) apiRequestDone(method, url, undefined);
      reject(err);
    });
    req.end(payload);
  });
}

/** Server-side apply of a whole object, owned by `fieldManager`. */
export function serverSideApply<T>(
  kc: KubeConfig,
  path: string,
  object: unknown,
  fieldManager: string,
): Promise<T> {
  const query = `?fieldManager=${encodeURIComponent(fieldManager)}&force=true&fieldValidation=Strict`;
  return rawJson<T>(kc, 'PATCH', path + query, object, 'application/apply-patch+yaml');
}
