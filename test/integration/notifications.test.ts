// Webhook notifications as a user with a chat channel sees them: the real
// controller process, on the real API server, with a simulated fleet, POSTs
// each decision to a receiver this test runs on 127.0.0.1, whose URL carries
// a secret token in its path (as a Slack incoming webhook's does). Each
// decision arrives once: through retries, a receiver that never answers, and
// a leader killed with SIGKILL and replaced; the token appears in no log line,
// Event or status.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LivePatch, NotificationOutbox } from '../../src/api/generated/types.js';
import { rolloutOrder } from '../../src/controller/targets.js';
import type { Running } from '../../lab/operator-process.js';
import { waitUntil } from '../../lab/wait.js';
import { kubectlOk } from '../support/kubectl.js';
import { applyLivePatch, eventsFor, getLivePatch } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { startReceiver, type Received, type Receiver } from '../support/webhook-receiver.js';

const KERNEL = '6.1.0-26-amd64';
const NODES = 6;
const cluster = useOwnCluster({ nodes: NODES, kernels: [KERNEL], prefix: 'notify' });
/** The secret part of the URL, as in a Slack incoming webhook's path. */
const SECRET = randomBytes(12).toString('hex');
const TOKEN = `T0LIVEPATCH/B0NOTIFY/${SECRET}`;
const ATTEMPTS = 3;

let receiver: Receiver;
let dir: string;
let urlFile: string;
beforeAll(async () => {
  receiver = await startReceiver(TOKEN);
  dir = await mkdtemp(join(tmpdir(), 'notify-'));
  urlFile = join(dir, 'url');
  // A mounted Secret key: the URL and a newline.
  await writeFile(urlFile, `${receiver.url}\n`);
});
afterAll(async () => {
  await receiver.close();
  await rm(dir, { recursive: true, force: true });
});

const receiverHost = (): string => `http://${new URL(receiver.url).host}`;
const ok = { status: 200, body: 'ok' } as const;

function startController(identity: string): Promise<Running> {
  return cluster().startController(identity, 0, [
    `--notify-url-file=${urlFile}`,
    `--notify-attempts=${ATTEMPTS}`,
    '--notify-timeout=2s',
  ]);
}

/** The POSTs about one LivePatch, in arrival order. */
const about = (livePatch: string, decision?: string): Received[] =>
  receiver.received.filter(
    (r) =>
      r.body['livePatch'] === livePatch &&
      (decision === undefined || r.body['decision'] === decision),
  );
const accepted = (livePatch: string): Received[] =>
  about(livePatch).filter((r) => r.status === 200);
const decisions = (received: readonly Received[]): unknown[] =>
  received.map((r) => r.body['decision']);

/**
 * The outbox once nothing is pending and `count` notifications are done:
 * from then on the controller has nothing left to send for this LivePatch.
 */
async function settledOutbox(livePatch: string, count: number): Promise<NotificationOutbox> {
  const lp = await waitUntil(
    `${livePatch}: ${count} notifications done, none pending`,
    () => getLivePatch(livePatch),
    (l) =>
      !l.status?.notifications?.pending?.length &&
      (l.status?.notifications?.done?.length ?? 0) >= count,
    90_000,
    200,
  );
  return lp.status?.notifications ?? {};
}

function waitForPhase(name: string, phase: string, timeoutMs = 90_000): Promise<LivePatch> {
  return waitUntil(
    `${name} to reach ${phase}`,
    () => getLivePatch(name),
    (lp) => lp.status?.phase === phase,
    timeoutMs,
  );
}

interface LogLine {
  readonly message: string;
  readonly livePatch?: string;
  readonly decision?: string;
  readonly error?: string;
  readonly why?: string;
}

function logLines(c: Running): LogLine[] {
  return c
    .output()
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LogLine];
      } catch {
        return [];
      }
    });
}

const logged = (c: Running, message: string, livePatch: string): LogLine[] =>
  logLines(c).filter((l) => l.message === message && l.livePatch === livePatch);

const leaseHolder = (): Promise<string> =>
  kubectlOk([
    'get',
    'lease',
    '-n',
    'default',
    'livepatch-controller',
    '-o',
    'jsonpath={.spec.holderIdentity}',
  ]);

async function stopAll(): Promise<void> {
  for (const c of cluster().controllers) await c.stop('SIGTERM');
}

describe('webhook notifications', () => {
  test('a rollout: started and complete, each delivered once, with what a receiver reads', async () => {
    receiver.answer = () => ok;
    await startController('notify-a');
    await applyLivePatch('notify-rollout', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 2 } },
    });
    await waitForPhase('notify-rollout', 'Complete');
    const outbox = await settledOutbox('notify-rollout', 2);

    const got = about('notify-rollout');
    expect(decisions(got)).toEqual(['Started', 'Complete']);
    expect(got.map((r) => r.path)).toEqual([`/hooks/${TOKEN}`, `/hooks/${TOKEN}`]);
    expect(got[0]?.headers['content-type']).toBe('application/json');
    const lp = await getLivePatch('notify-rollout');
    const uid = lp.metadata.uid ?? '';
    expect(got[0]?.body).toMatchObject({
      id: `${uid}/1/Started`,
      text: expect.stringMatching(
        /^LivePatch notify-rollout: rollout started: 6 node\(s\) targeted, at most 2 at a time; first: notify-/,
      ),
    });
    expect(got[1]?.body).toEqual({
      text: 'LivePatch notify-rollout: rollout complete: 6/6 nodes patched',
      id: `${uid}/1/Complete`,
      livePatch: 'notify-rollout',
      decision: 'Complete',
      generation: 1,
      attempt: 0,
      phase: 'Complete',
      message: 'rollout complete: 6/6 nodes patched',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(outbox).toEqual({ pending: [], done: [`${uid}/1/Started`, `${uid}/1/Complete`] });
  });

  test('a stall rolled back: stalled (naming node and task), rolling back, rolled back, each once', async () => {
    const stuck = rolloutOrder('notify-stall', cluster().fleet.nodes)[0] ?? '';
    await kubectlOk(['annotate', 'node', stuck, '--overwrite', 'sim.livepatch.io/stuck-tasks=1']);
    try {
      await applyLivePatch('notify-stall', {
        kernel: KERNEL,
        spec: { rollout: { maxUnavailable: 2 }, stall: { timeout: '3s' } },
      });
      await waitForPhase('notify-stall', 'RolledBack');
      await settledOutbox('notify-stall', 4);
    } finally {
      await kubectlOk(['annotate', 'node', stuck, 'sim.livepatch.io/stuck-tasks-']);
    }
    const got = about('notify-stall');
    expect(decisions(got)).toEqual(['Started', 'Stalled', 'RollingBack', 'RolledBack']);
    expect(got[1]?.body['message']).toMatch(
      new RegExp(
        `^1 node\\(s\\) stalled, their agents reversed the transition: ${stuck} \\(blocked by qemu-kvm\\[`,
      ),
    );
    expect(got[1]?.body['message']).toMatch(
      /stall\.action Rollback: every node of the patch is being reversed$/,
    );
    expect(got[3]?.body['message']).toMatch(
      /^rolled back: every node has unpatched \(\d reverted, 1 stalled\)$/,
    );
  });

  test('a receiver that fails the first two tries gets the third, 2 s and then 4 s later, and the next one after it', async () => {
    receiver.answer = (body, received) =>
      body['livePatch'] === 'notify-retry' &&
      body['decision'] === 'Started' &&
      received.filter((r) => r.body['id'] === body['id']).length < 2
        ? { status: 503, body: 'try later' }
        : ok;
    await applyLivePatch('notify-retry', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 3 } },
    });
    await waitForPhase('notify-retry', 'Complete');
    await settledOutbox('notify-retry', 2);

    const started = about('notify-retry', 'Started');
    expect(started.map((r) => r.status)).toEqual([503, 503, 200]);
    expect(new Set(started.map((r) => r.body['id'])).size).toBe(1);
    const [first, second, third] = started.map((r) => r.at);
    expect((second ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(1900);
    expect((third ?? 0) - (second ?? 0)).toBeGreaterThanOrEqual(3900);
    // In the order decided: the completion waits for the start, even when it came while the start was failing.
    expect(decisions(about('notify-retry'))).toEqual(['Started', 'Started', 'Started', 'Complete']);
    expect(decisions(accepted('notify-retry'))).toEqual(['Started', 'Complete']);
    const [a] = cluster().controllers;
    if (!a) throw new Error('no controller');
    expect(
      logged(a, 'notification not delivered; trying again', 'notify-retry').map((l) => l.error),
    ).toEqual([
      `HTTP 503 from ${receiverHost()}: try later`,
      `HTTP 503 from ${receiverHost()}: try later`,
    ]);
  });

  test('a receiver that never takes it is given up after the last try: a Warning Event and a log line say why', async () => {
    receiver.answer = (body, received) => {
      if (body['livePatch'] !== 'notify-giveup') return ok;
      return received.some((r) => r.body['id'] === body['id'])
        ? { status: 500, body: 'boom' }
        : 'none';
    };
    await applyLivePatch('notify-giveup', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 6 } },
    });
    const failed = await waitUntil(
      'two NotificationFailed Events',
      async () =>
        (await eventsFor('notify-giveup')).filter((e) => e.reason === 'NotificationFailed'),
      (events) => events.length >= 2,
      60_000,
    );
    expect(failed.map((e) => e.message).sort()).toEqual([
      expect.stringMatching(
        new RegExp(
          `^webhook notification "rollout complete: 6/6 nodes patched" given up after 3 tries: HTTP 500 from ${receiverHost().replaceAll('.', '\\.')}: boom$`,
        ),
      ),
      expect.stringMatching(
        /^webhook notification "rollout started: .*" given up after 3 tries: HTTP 500 from/,
      ),
    ]);
    await settledOutbox('notify-giveup', 2);
    for (const decision of ['Started', 'Complete'])
      expect(about('notify-giveup', decision).map((r) => r.status)).toEqual(['none', 500, 500]);
    const [a] = cluster().controllers;
    if (!a) throw new Error('no controller');
    const retried = logged(a, 'notification not delivered; trying again', 'notify-giveup');
    expect(retried.map((l) => l.error)).toContain(`no answer from ${receiverHost()} within 2s`);
    expect(
      logged(a, 'notification given up', 'notify-giveup')
        .map((l) => l.decision)
        .sort(),
    ).toEqual(['Complete', 'Started']);
  });

  test('a leader killed after announcing the start: its successor announces the completion only', async () => {
    await stopAll();
    receiver.answer = () => ok;
    await kubectlOk([
      'annotate',
      'nodes',
      '-l',
      'livepatch.io/simulated=true',
      '--overwrite',
      'sim.livepatch.io/transition-seconds=2',
    ]);
    const a = await startController('notify-leader-a');
    await waitUntil('notify-leader-a to lead', leaseHolder, (h) => h === 'notify-leader-a', 30_000);
    // A standby from the start: it must send nothing while it waits.
    const b = await startController('notify-leader-b');
    await applyLivePatch('notify-handover', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 1 } },
    });
    await waitUntil(
      'the start delivered and recorded, the rollout under way',
      () => getLivePatch('notify-handover'),
      (lp) =>
        lp.status?.phase === 'Progressing' &&
        (lp.status.notifications?.done?.length ?? 0) === 1 &&
        (lp.status.nodes?.patched ?? 0) < NODES,
      60_000,
      100,
    );
    expect(logged(b, 'notification delivered', 'notify-handover')).toEqual([]);
    await a.stop('SIGKILL');
    await waitForPhase('notify-handover', 'Complete', 120_000);
    await settledOutbox('notify-handover', 2);

    expect(decisions(about('notify-handover'))).toEqual(['Started', 'Complete']);
    expect(logged(a, 'notification delivered', 'notify-handover').map((l) => l.decision)).toEqual([
      'Started',
    ]);
    expect(logged(b, 'notification delivered', 'notify-handover').map((l) => l.decision)).toEqual([
      'Complete',
    ]);
  }, 180_000);

  test('a leader killed while a notification is still pending: its successor delivers it, once', async () => {
    await stopAll();
    let hang = true;
    receiver.answer = (body) => (body['livePatch'] === 'notify-pending' && hang ? 'none' : ok);
    const c = await startController('notify-leader-c');
    await waitUntil('notify-leader-c to lead', leaseHolder, (h) => h === 'notify-leader-c', 30_000);
    const d = await startController('notify-leader-d');
    await applyLivePatch('notify-pending', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 1 } },
    });
    const atKill = await waitUntil(
      'a failed try of the start recorded',
      () => getLivePatch('notify-pending'),
      (lp) => (lp.status?.notifications?.pending?.[0]?.tries ?? 0) >= 1,
      30_000,
      100,
    );
    await c.stop('SIGKILL');
    const killedAt = Date.now();
    hang = false;
    expect(atKill.status?.notifications?.pending?.[0]).toMatchObject({
      decision: 'Started',
      tries: 1,
      lastError: `no answer from ${receiverHost()} within 2s`,
    });
    await waitForPhase('notify-pending', 'Complete', 120_000);
    await settledOutbox('notify-pending', 2);

    expect(decisions(accepted('notify-pending'))).toEqual(['Started', 'Complete']);
    expect(accepted('notify-pending').every((r) => r.at > killedAt)).toBe(true);
    expect(logged(c, 'notification delivered', 'notify-pending')).toEqual([]);
    expect(logged(d, 'notification delivered', 'notify-pending').map((l) => l.decision)).toEqual([
      'Started',
      'Complete',
    ]);
  }, 180_000);

  test("the URL's secret part appears in no controller's output, Event or status", async () => {
    const output = cluster()
      .controllers.map((c) => c.output())
      .join('\n');
    // Failures were logged, naming the receiver by scheme and host.
    expect(output).toContain(receiverHost());
    expect(output).not.toContain(SECRET);
    expect(output).not.toContain('/hooks/');
    const events = await kubectlOk(['get', 'events', '-A', '-o', 'json']);
    expect(events).toContain('NotificationFailed');
    expect(events).not.toContain(SECRET);
    const livePatches = await kubectlOk(['get', 'livepatches', '-o', 'json']);
    expect(livePatches).toContain('"notifications"');
    expect(livePatches).not.toContain(SECRET);
  });
});
