// A real Prometheus server (built by ensurePrometheus from the pinned module)
// for the alert gate's tests: one scrape target and one rule file, evaluated
// every second, on a port of its own, with its data in a folder removed
// afterwards. A watchdog kills it if the test process dies first.
import { freePort } from '../ports.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { logTail, startManaged, startWatchdog, stopManaged } from '../controlplane/processes.js';
import { waitUntil } from '../wait.js';
import { ensurePrometheus } from './readers.js';

export interface PrometheusServer {
  /** Its base URL, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  /** Stops the process (its folder stays until close). */
  stop(): Promise<void>;
  logTail(): Promise<string>;
  /** Stops it for good and removes its folder. */
  close(): Promise<void>;
}

export interface PrometheusOptions {
  /** host:port of the one scrape target (its /metrics). */
  readonly target: string;
  /** The rule file, YAML, as promtool and Prometheus read it. */
  readonly rules: string;
  readonly log: Logger;
}

export async function startPrometheus(o: PrometheusOptions): Promise<PrometheusServer> {
  const binary = await ensurePrometheus(o.log);
  const dir = await mkdtemp(join(tmpdir(), 'livepatch-prometheus-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  await writeFile(join(dir, 'rules.yml'), o.rules);
  // Every second: a rule with `for: 0s` fires within about two seconds of its metric changing.
  await writeFile(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'rule_files: [rules.yml]',
      'scrape_configs:',
      `  - { job_name: gate, static_configs: [{ targets: ['${o.target}'] }] }`,
      '',
    ].join('\n'),
  );
  const args = [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
  ];
  const running = startManaged('prometheus', binary, args, join(dir, 'prometheus.log'));
  const watchdog = startWatchdog(dir, [running]);
  await waitUntil(
    `Prometheus at ${url} to be ready`,
    async () => {
      if (running.child.exitCode !== null)
        throw new Error(`prometheus exited:\n${await logTail(running)}`);
      return fetch(`${url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
    },
    (ok) => ok,
    30_000,
  );
  const stop = async (): Promise<void> => {
    await stopManaged(running);
    watchdog.kill();
  };
  return {
    url,
    stop,
    logTail: () => logTail(running),
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
