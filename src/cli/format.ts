// Plain-text rendering for the CLI: aligned tables and key/value blocks (no colours, so the
// output pastes cleanly into tickets and pipes into grep/awk).
import type { Scorer } from '../definitions/index.ts';
import type { Experiment } from '../definitions/index.ts';

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export function rate(r: number): string {
  return String(r);
}

function kind(s: Scorer): string {
  const d = s.definition;
  return d.type === 'builtin' ? `builtin:${d.judge}` : d.type;
}

export function scorerTable(list: readonly Scorer[]): string {
  if (list.length === 0) return 'no scorers\n';
  return table(
    ['NAME', 'VERSION', 'STATUS', 'RATE', 'TYPE', 'FILTER', 'UPDATED'],
    list.map((s) => [
      s.name,
      String(s.version),
      s.status,
      rate(s.sampleRate),
      kind(s),
      s.filterString === null ? '-' : truncate(s.filterString, 48),
      s.updatedAt,
    ]),
  );
}

export function versionTable(list: readonly Scorer[]): string {
  return table(
    ['VERSION', 'TYPE', 'CREATED'],
    list.map((s) => [String(s.version), kind(s), s.createdAt]),
  );
}

export function experimentTable(list: readonly Experiment[]): string {
  if (list.length === 0) return 'no experiments\n';
  return table(
    ['EXPERIMENT', 'SCORERS', 'ACTIVE', 'CREATED'],
    list.map((e) => [e.experimentId, String(e.scorerCount), String(e.activeCount), e.createdAt]),
  );
}

export function scorerDetails(s: Scorer): string {
  const lines = [
    `experiment:  ${s.experimentId}`,
    `name:        ${s.name}`,
    `version:     ${s.version}`,
    `status:      ${s.status}`,
    `sampleRate:  ${rate(s.sampleRate)}`,
    `filter:      ${s.filterString ?? '-'}`,
    `createdAt:   ${s.createdAt}`,
    `updatedAt:   ${s.updatedAt}`,
    'definition:',
    ...JSON.stringify(s.definition, null, 2)
      .split('\n')
      .map((l) => `  ${l}`),
  ];
  return `${lines.join('\n')}\n`;
}
