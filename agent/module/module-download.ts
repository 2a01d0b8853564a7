// Downloads a module over http(s) under the agent's URL policy (module-policy.ts):
// an answer within a time, the whole file within a time, only the redirects
// the policy follows, and never a byte past the size limit. Plain node:http(s),
// not fetch: fetch loads undici (about 8 MiB more RSS on every node), and
// undici's parser is WebAssembly, which an agent run with --jitless (the
// chart's choice, for memory) does not have.
import type { IncomingMessage, RequestOptions } from 'node:http';
import { send } from '../../src/kube/transport.js';
import { ModuleSourceError } from './module-errors.js';
import {
  httpRefusal,
  MAX_REDIRECTS,
  redirectRefusal,
  shownUrl,
  type UrlPolicy,
} from './module-policy.js';
import { spool, tooLarge, type Spooled } from './module-spool.js';

export interface DownloadOptions extends UrlPolicy {
  /** CA certificates (PEM) trusted beside the system's, for a mirror with a private CA. */
  readonly extraCa?: string;
}

class NoAnswer extends Error {}

/** TLS failures no retry fixes: the server's certificate is not one the agent trusts. */
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS/;

function requestOptions(o: DownloadOptions, signal: AbortSignal): RequestOptions {
  const options: RequestOptions & { ca?: string[] } = {
    method: 'GET',
    headers: { 'User-Agent': 'livepatch-operator-agent', Accept: '*/*' },
    signal,
  };
  // `ca` replaces the system's roots; the extra CA is added to them.
  if (o.extraCa) options.ca = [...process.getBuiltinModule('node:tls').rootCertificates, o.extraCa];
  return options;
}

/** The response headers of one GET, or NoAnswer when they do not come in time. */
function answer(url: URL, o: DownloadOptions, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = send(url, requestOptions(o, signal), (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    const timer = setTimeout(() => {
      req.destroy(new NoAnswer());
    }, o.answerTimeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

/** Where a redirect answer points, or undefined for any other answer. */
function redirectTarget(res: IncomingMessage, from: URL, shown: string): URL | undefined {
  const code = res.statusCode ?? 0;
  if (code < 300 || code >= 400 || code === 304) return undefined;
  const location = res.headers.location;
  if (!location)
    throw new ModuleSourceError(`cannot download ${shown}: HTTP ${code} without a Location`, false);
  try {
    return new URL(location, from);
  } catch {
    throw new ModuleSourceError(`cannot download ${shown}: it redirects to an invalid URL`, false);
  }
}

async function body(
  res: IncomingMessage,
  o: DownloadOptions,
  shown: string,
  path: string,
  signal: AbortSignal,
): Promise<Spooled> {
  const code = res.statusCode ?? 0;
  if (code < 200 || code >= 300) {
    res.resume();
    const verdict = httpRefusal(code);
    throw new ModuleSourceError(`cannot download ${shown}: ${verdict.message}`, verdict.retryable);
  }
  const declared = Number(res.headers['content-length'] ?? NaN);
  if (declared > o.maxBytes) {
    res.destroy();
    throw tooLarge(shown, o.maxBytes, `${declared} bytes (Content-Length)`);
  }
  return spool(res, path, o.maxBytes, shown, signal);
}

function explain(
  err: unknown,
  shown: string,
  o: DownloadOptions,
  deadline: AbortSignal,
  stop: AbortSignal | undefined,
): ModuleSourceError {
  if (err instanceof ModuleSourceError) return err;
  if (stop?.aborted)
    return new ModuleSourceError(`cannot download ${shown}: the agent stopped first`, true);
  if (deadline.aborted)
    return new ModuleSourceError(
      `cannot download ${shown}: the download did not finish within ${o.downloadTimeoutMs / 1000}s`,
      true,
    );
  if (err instanceof NoAnswer)
    return new ModuleSourceError(
      `cannot download ${shown}: no answer within ${o.answerTimeoutMs / 1000}s`,
      true,
    );
  const code = (err as { code?: unknown }).code;
  const text = `${(err as Error).message}${typeof code === 'string' && !(err as Error).message.includes(code) ? ` (${code})` : ''}`;
  if (typeof code === 'string' && CERT_ERROR.test(code))
    return new ModuleSourceError(
      `cannot download ${shown}: the server's TLS certificate is not trusted (${text}); nothing was loaded. ` +
        "Serve the module with a certificate the node trusts, or give the agent the mirror's CA (--module-ca-file)",
      false,
    );
  const broke = text === 'aborted' || code === 'ECONNRESET';
  return new ModuleSourceError(
    `cannot download ${shown}: ${broke ? 'the connection broke off mid-file' : text}`,
    true,
  );
}

/**
 * Downloads `url` into `path`; throws a ModuleSourceError saying why not.
 * `stop` ends it at once, socket and deadline timer with it: a download must
 * not keep a stopping agent alive.
 */
export async function download(
  url: string,
  o: DownloadOptions,
  path: string,
  stop?: AbortSignal,
): Promise<Spooled> {
  const shown = shownUrl(url);
  const abort = new AbortController();
  const deadline = setTimeout(() => {
    abort.abort();
  }, o.downloadTimeoutMs);
  const signal = stop ? AbortSignal.any([abort.signal, stop]) : abort.signal;
  try {
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      const res = await answer(current, o, signal);
      let next: URL | undefined;
      try {
        next = redirectTarget(res, current, shown);
        if (!next) return await body(res, o, shown, path, signal);
      } catch (err) {
        // An answer nobody reads keeps its socket (a bad redirect, a spool that cannot open its file).
        res.destroy();
        throw err;
      }
      res.resume();
      if (hop >= MAX_REDIRECTS)
        throw new ModuleSourceError(
          `cannot download ${shown}: more than ${MAX_REDIRECTS} redirects`,
          false,
        );
      const refusal = redirectRefusal(current, next, o.redirectHosts);
      if (refusal)
        throw new ModuleSourceError(
          `cannot download ${shown}: ${refusal}; nothing was loaded`,
          false,
        );
      current = next;
    }
  } catch (err) {
    throw explain(err, shown, o, abort.signal, stop);
  } finally {
    clearTimeout(deadline);
  }
}
