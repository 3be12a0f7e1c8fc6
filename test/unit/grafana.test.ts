// deploy/grafana: the dashboard and the alerting rules name only metrics scorecar exports (a
// renamed metric would leave a silent, empty panel or an alert that can never fire). promtool
// checks the rules' syntax and behaviour in CI (scripts/promtool.sh, .ci/run).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? walk(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );
}

/** Every metric name registered in src/ (the names are string literals where they are made). */
const EXPORTED = new Set(
  walk(join(ROOT, 'src')).flatMap((f) =>
    [...readFileSync(f, 'utf8').matchAll(/'((?:scorecar|process|nodejs)_[a-z_]+)'/g)].map((m) => m[1]!),
  ),
);

/** Metric names used in PromQL, histogram suffixes mapped to their histogram. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:scorecar|process|nodejs)_[a-z_]+)/g)].map((m) =>
    m[1]!.replace(/_(bucket|sum|count)$/, ''),
  );
}

describe('deploy/grafana', () => {
  it('sanity: the scan finds the metrics of every stage', () => {
    for (const m of [
      'scorecar_receiver_accepted_items_total',
      'scorecar_assessments_total',
      'scorecar_scoring_job_seconds',
      'scorecar_judge_cost_total',
    ])
      expect(EXPORTED).toContain(m);
  });

  it('the dashboard queries only exported metrics, in every row', () => {
    const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/scorecar-dashboard.json'), 'utf8')) as {
      uid: string;
      panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
    };
    expect(dash.uid).toBe('scorecar');
    const rows = dash.panels.filter((p) => p.type === 'row').map((p) => p.title);
    expect(rows).toEqual(['Data plane', 'Scoring', 'Quality', 'Cost']);
    const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(exprs.length).toBeGreaterThan(15);
    const unknown = exprs.flatMap(metricsIn).filter((m) => !EXPORTED.has(m));
    expect(unknown).toEqual([]);
  });

  it('the alerting rules read only exported metrics and cover what the issue lists', () => {
    const doc = parse(readFileSync(join(ROOT, 'deploy/grafana/scorecar-alerts.yml'), 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string; labels: { severity: string } }> }>;
    };
    const rules = doc.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'ScorecarJudgeErrors',
        'ScorecarJudgeBudgetExhausted',
        'ScorecarRefusingSpans',
        'ScorecarTracesEvicted',
        'ScorecarDownstreamFailing',
      ]),
    );
    for (const r of rules) expect(['warning', 'critical']).toContain(r.labels.severity);
    expect(rules.flatMap((r) => metricsIn(r.expr)).filter((m) => !EXPORTED.has(m))).toEqual([]);
  });
});
