// The alert gate's one reader of the outside: asks a Prometheus-compatible
// API (GET <url>/api/v1/alerts, the firing and pending alerts of its rules)
// once per interval for the whole controller, however many LivePatches are
// gated, with a timeout, and keeps the last answer (or the failure and since
// when) for the planner to read. A changed answer wakes every LivePatch; an
// unchanged one wakes none (the resync looks again).
import type { Logger } from '../log.js';
import type { Alert, AlertReading } from './alert-gate.js';

export interface AlertSourceOptions {
  /** Base URL of the API, e.g. http://prometheus.monitoring:9090 (a path prefix is kept). */
  readonly url: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly log: Logger;
  /** The answer changed: what the planner would decide may have changed with it. */
  readonly onChange: () => void;
  /** Each answer, good or not. */
  readonly onAnswer?: (ok: boolean) => void;
}

/** A Prometheus answer larger than this is refused: no gate needs a million alerts read. */
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;
const ERROR_MAX = 300;

/** The URL asked: the base URL with api/v1/alerts appended to its path. */
export function alertsUrl(base: string): URL {
  return new URL('api/v1/alerts', base.endsWith('/') ? base : `${base}/`);
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function labelsOf(v: unknown): Record<string, string> | undefined {
  if (!isRecord(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** The alerts of a /api/v1/alerts answer, or why it is not one. */
export function parseAlerts(body: unknown): readonly Alert[] | string {
  if (!isRecord(body)) return 'the answer is not a JSON object';
  if (body['status'] !== 'success') {
    const error = typeof body['error'] === 'string' ? body['error'] : 'no error given';
    return `the source answered status ${String(body['status'])}: ${error}`;
  }
  const data = body['data'];
  const list = isRecord(data) ? data['alerts'] : undefined;
  if (!Array.isArray(list)) return 'the answer has no data.alerts list';
  const alerts: Alert[] = [];
  for (const item of list) {
    const labels = isRecord(item) ? labelsOf(item['labels']) : undefined;
    if (!isRecord(item) || !labels || typeof item['state'] !== 'string')
      return 'an alert in data.alerts has no labels or state';
    const activeAt = item['activeAt'];
    alerts.push({
      labels,
      state: item['state'],
      ...(typeof activeAt === 'string' ? { activeAt } : {}),
    });
  }
  return alerts;
}

/** What a reading says, for telling whether it changed: the alerts and their states, or the error. */
function fingerprint(r: AlertReading): string {
  if (r.kind === 'alerts')
    return JSON.stringify(r.alerts.map((a) => [a.state, Object.entries(a.labels).sort()]).sort());
  return r.kind === 'failed' ? `failed:${r.error}` : r.kind;
}

export class AlertSource {
  private current: AlertReading = { kind: 'notAsked' };
  private timer: NodeJS.Timeout | undefined;
  private readonly stopping = new AbortController();
  private readonly url: URL;

  constructor(private readonly o: AlertSourceOptions) {
    this.url = alertsUrl(o.url);
  }

  reading(): AlertReading {
    return this.current;
  }

  start(): void {
    void this.poll();
  }

  stop(): void {
    this.stopping.abort();
    clearTimeout(this.timer);
  }

  private async poll(): Promise<void> {
    const now = Date.now();
    const answer = await this.ask();
    if (this.stopping.signal.aborted) return;
    const before = this.current;
    const lastGood =
      before.kind === 'alerts' ? before.at : before.kind === 'failed' ? before.lastGood : undefined;
    this.current =
      typeof answer === 'string'
        ? {
            kind: 'failed',
            error: answer,
            since: before.kind === 'failed' ? before.since : now,
            ...(lastGood !== undefined ? { lastGood } : {}),
          }
        : { kind: 'alerts', alerts: answer, at: now };
    this.o.onAnswer?.(typeof answer !== 'string');
    if (typeof answer === 'string' && before.kind !== 'failed')
      this.o.log.warn('the alert source does not answer; gated rollouts hold', {
        url: this.url.origin,
        error: answer,
      });
    if (typeof answer !== 'string' && before.kind === 'failed')
      this.o.log.info('the alert source answers again', { url: this.url.origin });
    if (fingerprint(before) !== fingerprint(this.current)) this.o.onChange();
    this.timer = setTimeout(() => void this.poll(), this.o.intervalMs);
  }

  /** The alerts, or why there are none. */
  private async ask(): Promise<readonly Alert[] | string> {
    const signal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(this.o.timeoutMs)]);
    try {
      const res = await fetch(this.url, { signal, headers: { accept: 'application/json' } });
      const length = Number(res.headers.get('content-length') ?? 0);
      if (length > MAX_ANSWER_BYTES) {
        await res.body?.cancel();
        return `the answer is ${length} bytes, over ${MAX_ANSWER_BYTES}`;
      }
      const text = await res.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return `HTTP ${res.status}, not JSON: ${text.slice(0, ERROR_MAX)}`;
      }
      const alerts = parseAlerts(body);
      if (typeof alerts === 'string') return `HTTP ${res.status}: ${alerts.slice(0, ERROR_MAX)}`;
      return res.ok ? alerts : `HTTP ${res.status}`;
    } catch (err) {
      const e = err as Error & { cause?: { message?: string } };
      if (e.name === 'TimeoutError') return `no answer within ${this.o.timeoutMs / 1000}s`;
      return `${e.message}${e.cause?.message ? ` (${e.cause.message})` : ''}`.slice(0, ERROR_MAX);
    }
  }
}
