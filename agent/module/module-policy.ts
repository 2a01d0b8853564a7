// What the agent accepts as a module file and from where, as pure rules: the
// size limit, which redirects a download may follow, which HTTP answers are
// worth another try, and how a URL is named in a message (never its query,
// which may carry a token). docs/api.md "Module sources" says the same for users.

/**
 * The largest module file the agent takes: livepatch modules are tens of KiB
 * to a few MiB (kpatch strips them), the kernel keeps the whole file in
 * vmalloc'd memory while loading it, and the agent runs in a 256 MiB pod.
 * A ConfigMap source is capped lower still by the API server (1 MiB).
 */
export const MODULE_MAX_BYTES = 16 * 1024 * 1024;

/** Connect, TLS and the response headers must come within this long. */
export const ANSWER_TIMEOUT_MS = 15_000;
/** The whole download, redirects included: 16 MiB in 120 s is about 140 KB/s. */
export const DOWNLOAD_TIMEOUT_MS = 120_000;
export const MAX_REDIRECTS = 5;

export interface UrlPolicy {
  readonly maxBytes: number;
  readonly answerTimeoutMs: number;
  readonly downloadTimeoutMs: number;
  /** Hosts a redirect may lead to besides the URL's own (the agent's --module-redirect-hosts). */
  readonly redirectHosts: readonly string[];
}

export const DEFAULT_URL_POLICY: UrlPolicy = {
  maxBytes: MODULE_MAX_BYTES,
  answerTimeoutMs: ANSWER_TIMEOUT_MS,
  downloadTimeoutMs: DOWNLOAD_TIMEOUT_MS,
  redirectHosts: [],
};

const URL_SHOWN_MAX = 160;

/** A URL as messages show it: scheme, host and path (cut short), without credentials or query. */
export function shownUrl(url: URL | string): string {
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return JSON.stringify(String(url).slice(0, URL_SHOWN_MAX));
  }
  const path =
    u.pathname.length > URL_SHOWN_MAX ? `${u.pathname.slice(0, URL_SHOWN_MAX)}…` : u.pathname;
  return `${u.protocol}//${u.host}${path}${u.search ? '?…' : ''}`;
}

export function mib(bytes: number): string {
  return `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MiB`;
}

/**
 * The hosts of the agent's --module-redirect-hosts (comma-separated),
 * lower-cased as URL hostnames are: a listed "Mirror.Example" must still match.
 */
export function redirectHostList(flag: string): string[] {
  return flag
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
}

/**
 * Why a redirect from `from` to `to` is not followed, or undefined when it is.
 * Followed: the same scheme, host and port, or http upgraded to https on the
 * same host; another host only when listed, and never from https down to http.
 */
export function redirectRefusal(
  from: URL,
  to: URL,
  allowedHosts: readonly string[],
): string | undefined {
  if (to.protocol !== 'https:' && to.protocol !== 'http:')
    return `it redirects to a ${to.protocol} URL; the agent downloads over http and https only`;
  if (from.protocol === 'https:' && to.protocol === 'http:')
    return `it redirects from https down to plain http (${shownUrl(to)}); the agent never follows that`;
  if (from.host === to.host) return undefined;
  const upgrade =
    from.protocol === 'http:' && to.protocol === 'https:' && from.hostname === to.hostname;
  if (upgrade && (to.port === '' || to.port === '443')) return undefined;
  if (allowedHosts.includes(to.hostname)) return undefined;
  return (
    `it redirects to another host (${shownUrl(to)}); the agent follows redirects only within the ` +
    "same host unless the host is listed in the agent's --module-redirect-hosts (the chart's " +
    'modules.redirectHosts). Point the url at the final address, or allow that host'
  );
}

export interface HttpVerdict {
  readonly message: string;
  readonly retryable: boolean;
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  410: 'Gone',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** A non-2xx, non-redirect answer: what it means, and whether a later try may get the file. */
export function httpRefusal(code: number): HttpVerdict {
  const status = `HTTP ${code}${STATUS_TEXT[code] ? ` ${STATUS_TEXT[code]}` : ''}`;
  if (code >= 500 || code === 408 || code === 429)
    return { retryable: true, message: `the server answers ${status}` };
  if (code === 404 || code === 410)
    return {
      retryable: false,
      message: `the server answers ${status}: no file there. Fix spec.kernels[].module.url`,
    };
  if (code === 401 || code === 403)
    return {
      retryable: false,
      message: `the server answers ${status}: the agent sends no credentials, so the file must be readable without them`,
    };
  return { retryable: false, message: `the server answers ${status}` };
}
