// One webhook try against a receiver on 127.0.0.1: what it carries in each
// format, how an answer or its absence reads, and that nothing it reports
// names the URL beyond its scheme and host.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PendingNotification } from '../../../src/api/generated/types.js';
import { redact, receiverName, Webhook, webhookBody } from '../../../src/controller/webhook.js';
import { startReceiver, type Receiver } from '../../support/webhook-receiver.js';

const TOKEN = 'T0001/B0002/s3cr3tT0k3nXYZ';
const notice: PendingNotification = {
  id: 'uid-1/3/Complete',
  decision: 'Complete',
  message: 'rollout complete: 3/3 nodes patched',
  generation: 3,
  attempt: 1,
  phase: 'Complete',
  time: '2026-01-15T12:00:00.000Z',
  tries: 0,
};

let dir: string;
let receiver: Receiver;
let urlFile: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'webhook-'));
  receiver = await startReceiver(TOKEN);
  urlFile = join(dir, 'url');
  await writeFile(urlFile, `${receiver.url}\n`);
});
afterEach(async () => {
  await receiver.close();
  await rm(dir, { recursive: true, force: true });
});

const host = (): string => new URL(receiver.url).host;
const webhook = (o: Partial<ConstructorParameters<typeof Webhook>[0]> = {}): Webhook =>
  new Webhook({ urlFile, format: 'json', timeoutMs: 2000, ...o });

describe('what a receiver gets', () => {
  test('json: text for a chat receiver and every field of the decision, POSTed to the URL as JSON', async () => {
    expect(await webhook().deliver('cve-2024-1086', notice)).toEqual({ kind: 'delivered' });
    const [got] = receiver.received;
    expect(got?.path).toBe(`/hooks/${TOKEN}`);
    expect(got?.headers['content-type']).toBe('application/json');
    expect(got?.body).toEqual({
      text: 'LivePatch cve-2024-1086: rollout complete: 3/3 nodes patched',
      id: 'uid-1/3/Complete',
      livePatch: 'cve-2024-1086',
      decision: 'Complete',
      generation: 3,
      attempt: 1,
      phase: 'Complete',
      message: 'rollout complete: 3/3 nodes patched',
      time: '2026-01-15T12:00:00.000Z',
    });
  });

  test('slack: text alone', async () => {
    expect(webhookBody('slack', 'lp', notice)).toEqual({
      text: 'LivePatch lp: rollout complete: 3/3 nodes patched',
    });
    await webhook({ format: 'slack' }).deliver('lp', notice);
    expect(receiver.received[0]?.body).toEqual({
      text: 'LivePatch lp: rollout complete: 3/3 nodes patched',
    });
  });
});

describe('a try that fails says why, naming the receiver by scheme and host only', () => {
  test('an error answer, quoted, with the Retry-After of a 429', async () => {
    receiver.answer = () => ({
      status: 429,
      headers: { 'Retry-After': '7' },
      body: `rate limited on /hooks/${TOKEN}`,
    });
    expect(await webhook().deliver('lp', notice)).toEqual({
      kind: 'failed',
      error: `HTTP 429 from http://${host()}: rate limited on …`,
      retryAfterMs: 7000,
    });
  });

  test('a redirect is not followed', async () => {
    receiver.answer = () => ({ status: 301, headers: { Location: 'http://elsewhere.example/' } });
    const outcome = await webhook().deliver('lp', notice);
    expect(outcome).toEqual({
      kind: 'failed',
      error: `HTTP 301 from http://${host()} (redirects are not followed)`,
    });
    expect(receiver.received).toHaveLength(1);
  });

  test('no answer within the timeout', async () => {
    receiver.answer = () => 'none';
    const started = Date.now();
    const outcome = await webhook({ timeoutMs: 300 }).deliver('lp', notice);
    expect(outcome).toEqual({
      kind: 'failed',
      error: `no answer from http://${host()} within 0.3s`,
    });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('nobody listening', async () => {
    const url = receiver.url;
    await receiver.close();
    const outcome = await webhook().deliver('lp', notice);
    expect(outcome).toEqual({
      kind: 'failed',
      error: `cannot reach http://${new URL(url).host}: ECONNREFUSED`,
    });
  });

  test('no URL file, or one without a URL: said without quoting what it holds', async () => {
    const missing = await webhook({ urlFile: join(dir, 'absent') }).deliver('lp', notice);
    expect(missing).toEqual({
      kind: 'failed',
      error: `cannot read the webhook URL file ${join(dir, 'absent')} (ENOENT): is the Secret there?`,
    });
    await writeFile(urlFile, `not a url ${TOKEN}`);
    const garbled = await webhook().deliver('lp', notice);
    expect(garbled).toEqual({
      kind: 'failed',
      error: `the webhook URL file ${urlFile} does not hold a URL`,
    });
  });
});

describe('redaction', () => {
  test('credentials, path and query go; scheme and host stay', () => {
    const raw = 'https://bot:pa55word@hooks.example.com:8443/services/T1/B2/XYZ?token=abc';
    const url = new URL(raw);
    expect(receiverName(url)).toBe('https://hooks.example.com:8443');
    const text = `POST ${raw} failed; path /services/T1/B2/XYZ, query ?token=abc, user bot, password pa55word`;
    const shown = redact(text, url, raw);
    for (const secret of ['/services/T1/B2/XYZ', 'token=abc', 'bot', 'pa55word'])
      expect(shown).not.toContain(secret);
    expect(shown).toBe('POST … failed; path …, query …, user …, password …');
  });
});
