// What the benchmark reads from outside the processes it measures: /proc for
// memory and CPU, the API server's own request counters, a process's /metrics.
import { readFile } from 'node:fs/promises';
import type { KubeConfig } from '../../src/kube/config.js';
import { send } from '../../src/kube/transport.js';

const MIB = 1024 * 1024;

/** VmRSS and VmHWM (peak) of a process, in MiB. */
export async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number =>
    Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: (kb('VmRSS') * 1024) / MIB, peak: (kb('VmHWM') * 1024) / MIB };
}

/** User plus system CPU time a process has used, in seconds. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100;
}

/** A GET answered with text (metrics), authorised as the kubeconfig says, or plain http. */
export async function getText(url: string, kc?: KubeConfig): Promise<string> {
  const opts = { method: 'GET', headers: {} };
  if (kc) await kc.authorize(opts);
  return new Promise((resolve, reject) => {
    const req = send(new URL(url), opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export type Counters = Map<string, number>;

/** Every sample of one metric, keyed by its labels as written. */
export function samples(text: string, metric: string): Counters {
  const out: Counters = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(metric.length, space), Number(line.slice(space + 1)));
  }
  return out;
}

export function label(labels: string, name: string): string {
  return new RegExp(`${name}="([^"]*)"`).exec(labels)?.[1] ?? '';
}

/** after − before, per key. */
export function delta(before: Counters, after: Counters): Counters {
  const out: Counters = new Map();
  for (const [key, value] of after) {
    const d = value - (before.get(key) ?? 0);
    if (d) out.set(key, d);
  }
  return out;
}

/** Sums the counters by a function of their labels. */
export function sumBy(counters: Counters, key: (labels: string) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [labels, value] of counters) out[key(labels)] = (out[key(labels)] ?? 0) + value;
  return out;
}
