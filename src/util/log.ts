// Minimal structured logger: one line per event, text for people or JSON for log pipelines.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: 'text' | 'json';
  write?: (line: string) => void;
}

function textValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v);
}

export function createLogger(opts: LoggerOptions = {}, base: Record<string, unknown> = {}): Logger {
  const min = RANK[opts.level ?? 'info'];
  const format = opts.format ?? 'text';
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (RANK[level] < min) return;
    const all = { ...base, ...fields };
    if (format === 'json') {
      write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...all }, (_k, v) => (v instanceof Error ? v.message : typeof v === 'bigint' ? String(v) : v)));
    } else {
      let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}`;
      for (const [k, v] of Object.entries(all)) if (v !== undefined) line += ` ${k}=${textValue(v)}`;
      write(line);
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger(opts, { ...base, ...f }),
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = createLogger({ level: 'error', write: () => {} });
