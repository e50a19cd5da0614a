// Minimal Prometheus registry: counters and gauges with labels, text format
// 0.0.4. Small enough to own, and keeps the hot path to a Map lookup.
type Labels = Record<string, string>;

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, { labels: Labels; value: number }>;
  collect?: () => Array<{ labels?: Labels; value: number }> | number;
}

const key = (labels: Labels) => Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(',');
const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

export class Metrics {
  private metrics = new Map<string, Metric>();

  private get(name: string, help: string, type: Metric['type']): Metric {
    let m = this.metrics.get(name);
    if (!m) this.metrics.set(name, (m = { name, help, type, values: new Map() }));
    return m;
  }

  counter(name: string, help: string): (labels?: Labels, by?: number) => void {
    const m = this.get(name, help, 'counter');
    return (labels = {}, by = 1) => {
      const k = key(labels);
      const cur = m.values.get(k);
      if (cur) cur.value += by;
      else m.values.set(k, { labels, value: by });
    };
  }

  /** A gauge read when scraped. */
  gauge(name: string, help: string, collect: () => Array<{ labels?: Labels; value: number }> | number): void {
    this.get(name, help, 'gauge').collect = collect;
  }

  /** Same as a gauge, but exposed as a counter read from elsewhere (e.g. store flushes). */
  counterFrom(name: string, help: string, collect: () => number): void {
    this.get(name, help, 'counter').collect = collect;
  }

  value(name: string, labels: Labels = {}): number {
    const m = this.metrics.get(name);
    if (!m) return 0;
    if (m.collect) {
      const c = m.collect();
      if (typeof c === 'number') return c;
      return c.find((x) => key(x.labels ?? {}) === key(labels))?.value ?? 0;
    }
    return m.values.get(key(labels))?.value ?? 0;
  }

  render(): string {
    const lines: string[] = [];
    for (const m of this.metrics.values()) {
      lines.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`);
      let samples: Array<{ labels?: Labels; value: number }> = [...m.values.values()];
      if (m.collect) {
        const c = m.collect();
        samples = typeof c === 'number' ? [{ value: c }] : c;
      }
      for (const s of samples) {
        const l = Object.entries(s.labels ?? {});
        const ls = l.length ? `{${l.map(([k, v]) => `${k}="${escape(v)}"`).join(',')}}` : '';
        lines.push(`${m.name}${ls} ${Number.isFinite(s.value) ? s.value : 0}`);
      }
    }
    return lines.join('\n') + '\n';
  }
}
