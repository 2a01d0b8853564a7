// Prometheus text exposition for a handful of gauges and counters, for the
// node agent: prom-client costs a process about 14 MiB of RSS, and every node
// pays for the agent's. The controller, one per cluster, keeps prom-client.

export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

type Labels = Readonly<Record<string, string>>;

interface Family {
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly values: Map<string, number>;
}

const labelText = (labels: Labels): string => {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '\\$&')}"`);
  return pairs.length ? `{${pairs.join(',')}}` : '';
};

export class TextMetrics implements MetricsSource {
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';
  private readonly families = new Map<string, Family>();

  define(name: string, type: Family['type'], help: string): void {
    this.families.set(name, { help, type, values: new Map() });
  }

  set(name: string, value: number, labels: Labels = {}): void {
    this.family(name).values.set(labelText(labels), value);
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const values = this.family(name).values;
    const key = labelText(labels);
    values.set(key, (values.get(key) ?? 0) + by);
  }

  /** Drops every series of a metric: a label value that will not come back. */
  clear(name: string): void {
    this.family(name).values.clear();
  }

  metrics(): Promise<string> {
    const lines: string[] = [];
    for (const [name, f] of this.families) {
      lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      const values = f.values.size || f.type === 'gauge' ? f.values : new Map([['', 0]]);
      for (const [labels, value] of values) lines.push(`${name}${labels} ${value}`);
    }
    return Promise.resolve(`${lines.join('\n')}\n`);
  }

  private family(name: string): Family {
    const f = this.families.get(name);
    if (!f) throw new Error(`metric ${name} is not defined`);
    return f;
  }
}
