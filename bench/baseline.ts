// The figures `npm run bench` prints, keyed by stable names, and bench/baseline.json: the
// committed reference they are compared with (`--compare`) and that `--save-baseline` rewrites.
//
// Performance is checked here, by a person reading a comparison, never asserted in tests: every
// figure moves with the load on the machine, so each one carries the load average it was taken
// under, and each measuring session (date, machine, Node, the commit measured) is recorded once
// in `sessions`, with every figure naming the session it came from. Saving a subset (`--only`)
// replaces those figures only, so a section can be re-measured on a quiet machine alone.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';

/** higher / lower: which way is better; info: context for the other figures, no direction. */
export type Better = 'higher' | 'lower' | 'info';

export interface Figure {
  value: number;
  unit: string;
  better: Better;
  /** 1-minute load average when the figure was taken. */
  load: number;
}

export interface Session {
  date: string;
  machine: string;
  node: string;
  /** The code measured (the --scorecar checkout, else this one): commit, "+dirty" if modified. */
  commit: string;
  /** The bench harness that measured it (this checkout). */
  benchCommit: string;
  /** Load average (1, 5, 15 min) when the session started. */
  loadavg: number[];
  note?: string;
}

export interface BaselineFile {
  sessions: Record<string, Session>;
  figures: Record<string, Figure & { session: string }>;
}

export function gitCommit(dir: string): string {
  try {
    const head = execFileSync('git', ['-C', dir, 'rev-parse', '--short=10', 'HEAD'], {
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['-C', dir, 'status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
    }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

export function describeSession(measured: string, bench: string, note?: string): Session {
  return {
    date: new Date().toISOString(),
    machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    commit: gitCommit(measured),
    benchCommit: gitCommit(bench),
    loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
    ...(note ? { note } : {}),
  };
}

/** Figures of one run, in the order they were taken. */
export class Figures {
  readonly all = new Map<string, Figure>();

  add(name: string, value: number, unit: string, better: Better): void {
    if (!Number.isFinite(value)) return;
    // Four significant digits: more would be noise on any machine this runs on.
    this.all.set(name, {
      value: Number(value.toPrecision(4)),
      unit,
      better,
      load: Math.round(loadavg()[0]! * 100) / 100,
    });
  }
}

export function readBaseline(file: string): BaselineFile | undefined {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as BaselineFile;
}

/** Writes `figures` over `file`'s: figures not measured this time keep their old value and session. */
export function saveBaseline(file: string, figures: Figures, session: Session): void {
  const old = readBaseline(file) ?? { sessions: {}, figures: {} };
  const id = session.date.slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
  const out: BaselineFile = { sessions: {}, figures: {} };
  for (const [name, f] of Object.entries(old.figures)) if (!figures.all.has(name)) out.figures[name] = f;
  for (const [name, f] of figures.all) out.figures[name] = { ...f, session: id };
  const used = new Set(Object.values(out.figures).map((f) => f.session));
  for (const [sid, s] of Object.entries(old.sessions)) if (used.has(sid)) out.sessions[sid] = s;
  out.sessions[id] = session;
  const sorted: BaselineFile = {
    sessions: out.sessions,
    figures: Object.fromEntries(Object.entries(out.figures).sort(([a], [b]) => a.localeCompare(b))),
  };
  writeFileSync(file, `${JSON.stringify(sorted, null, 2)}\n`);
}

function fmt(v: number, unit: string): string {
  const digits = Number.isInteger(v) || Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })} ${unit}`;
}

/**
 * One line per figure measured now: current, baseline, current/baseline and, beyond +-10% (not a
 * significance test: a reading aid on a noisy machine), whether that is better or worse.
 */
export function compareLines(figures: Figures, base: BaselineFile): string[] {
  const rows: string[][] = [['figure', 'now', 'baseline', 'now/base', 'better', '', 'load now/base']];
  for (const [name, f] of figures.all) {
    const b = base.figures[name];
    if (!b) {
      rows.push([name, fmt(f.value, f.unit), '-', '-', f.better, 'new', `${f.load}/-`]);
      continue;
    }
    // A ratio means something only between two positive values: a difference figure (latency
    // added) can come out negative when the direct path had the worse tail, a count can be 0.
    const ratio = b.value > 0 && f.value >= 0 ? f.value / b.value : Number.NaN;
    let verdict = '';
    if (f.better !== 'info' && Math.abs(ratio - 1) > 0.1) {
      verdict = ratio > 1 === (f.better === 'higher') ? 'better' : 'WORSE';
    }
    const r = Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : f.value === b.value ? '1.00x' : 'n/a';
    rows.push([
      name,
      fmt(f.value, f.unit),
      fmt(b.value, b.unit),
      r,
      f.better,
      verdict,
      `${f.load}/${b.load}`,
    ]);
  }
  const width = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === 0 || i >= 4 ? c.padEnd(width[i]!) : c.padStart(width[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
