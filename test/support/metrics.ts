// Reading scorecar's /metrics in tests.

/** Sums a metric family from a Prometheus text page, filtered by labels. */
export async function scrape(
  adminUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  return sumMetric(text, name, labels);
}

/** Sums a metric family of a Prometheus text page (e.g. MetricsRegistry.render()), filtered by labels. */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([^{ ]+)(?:\{([^}]*)\})? (.+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => ls[k] === v)) sum += Number(m[3]);
  }
  return sum;
}
