// The webhook that hears a LivePatch's decisions: what one POST carries, and
// the POST itself. The URL is a secret (a Slack incoming webhook's path is its
// credential), read from a file the chart mounts from a Secret at every try, so
// a rotated Secret is used without a restart; nothing this module returns or
// throws names more of it than its scheme and host.
import { readFile } from 'node:fs/promises';
import type { PendingNotification } from '../api/generated/types.js';
import { clip } from '../api/listing.js';
import { retryAfterMs } from '../kube/backoff.js';
import { send } from '../kube/transport.js';
import type { DeliveryOutcome } from './notification-outbox.js';

/**
 * json: `text` (what a chat receiver shows) and every field of the decision;
 * slack: `text` alone, for a receiver that refuses keys it does not know.
 */
export type WebhookFormat = 'json' | 'slack';
export const WEBHOOK_FORMATS: readonly WebhookFormat[] = ['json', 'slack'];

export interface WebhookOptions {
  /** A file holding the URL (a mounted Secret key). */
  readonly urlFile: string;
  readonly format: WebhookFormat;
  /** One try's whole budget: connect, send, answer. */
  readonly timeoutMs: number;
}

/** A receiver's answer quoted in an error, at most. */
const BODY_QUOTED = 200;
/** lastError's maxLength in status. */
const ERROR_MAX = 512;

/** What one POST carries for one decision of one LivePatch. */
export function webhookBody(
  format: WebhookFormat,
  livePatch: string,
  n: PendingNotification,
): Record<string, unknown> {
  const text = `LivePatch ${livePatch}: ${n.message}`;
  if (format === 'slack') return { text };
  return {
    text,
    id: n.id,
    livePatch,
    decision: n.decision,
    generation: n.generation,
    attempt: n.attempt,
    ...(n.phase ? { phase: n.phase } : {}),
    message: n.message,
    time: n.time,
  };
}

/** "https://hooks.example.com" of any URL: scheme and host, never credentials, path or query. */
export function receiverName(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

/**
 * A text with every secret part of the URL taken out: the whole URL, its
 * path, query and credentials, wherever they appear (a receiver may echo
 * its own address back, or an error name it).
 */
export function redact(text: string, url: URL | undefined, raw: string): string {
  const secrets = [
    raw.trim(),
    url?.href,
    url && url.pathname.length > 1 ? url.pathname : undefined,
    url?.search,
    url?.username,
    url?.password,
  ]
    .filter((s): s is string => s !== undefined && s.length > 1)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const s of secrets) out = out.split(s).join('…');
  return out;
}

class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** The URL in the file, or why it cannot be used, in words that do not quote it. */
async function readUrl(file: string): Promise<{ url: URL; raw: string }> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (err) {
    throw new DeliveryError(
      `cannot read the webhook URL file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}): is the Secret there?`,
    );
  }
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new DeliveryError(`the webhook URL file ${file} does not hold a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new DeliveryError(`the webhook URL in ${file} is not http or https (${url.protocol})`);
  return { url, raw };
}

/** One POST, whole within timeoutMs; resolves on a 2xx, rejects with a DeliveryError otherwise. */
function post(url: URL, body: string, timeoutMs: number): Promise<void> {
  const to = receiverName(url);
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': String(Buffer.byteLength(body)),
          'User-Agent': 'livepatch-operator',
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) {
            resolve();
            return;
          }
          const answer = clip(Buffer.concat(chunks).toString('utf8').trim(), BODY_QUOTED);
          // Redirects are not followed: the POST would go to an address the Secret does not name.
          const redirect = code >= 300 && code < 400 ? ' (redirects are not followed)' : '';
          reject(
            new DeliveryError(
              `HTTP ${code} from ${to}${redirect}${answer ? `: ${answer}` : ''}`,
              code === 429 || code === 503
                ? retryAfterMs(res.headers['retry-after'], Date.now())
                : undefined,
            ),
          );
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new DeliveryError(`no answer from ${to} within ${timeoutMs / 1000}s`));
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(
        err instanceof DeliveryError
          ? err
          : new DeliveryError(
              `cannot reach ${to}: ${(err as NodeJS.ErrnoException).code ?? err.message}`,
            ),
      );
    });
    req.end(body);
  });
}

export class Webhook {
  constructor(private readonly o: WebhookOptions) {}

  /** One try; never throws. */
  async deliver(livePatch: string, n: PendingNotification): Promise<DeliveryOutcome> {
    let target: { url: URL; raw: string } | undefined;
    try {
      target = await readUrl(this.o.urlFile);
      const body = JSON.stringify(webhookBody(this.o.format, livePatch, n));
      await post(target.url, body, this.o.timeoutMs);
      return { kind: 'delivered' };
    } catch (err) {
      const error = clip(redact((err as Error).message, target?.url, target?.raw ?? ''), ERROR_MAX);
      const retryAfter = err instanceof DeliveryError ? err.retryAfterMs : undefined;
      return {
        kind: 'failed',
        error,
        ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
      };
    }
  }
}
