// Minimal structured logger: one line per event, text for people or JSON for log pipelines.
// Errors in fields (an Error, or errorFields() of one) keep their type, message, code and stack:
// in JSON as an object, in text as `err.type=… err.message=… err.code=…` with the stack on the
// following lines.
import { errorFields } from './errors.ts';

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
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x));
}

/** An error as fields (errorFields), or undefined for anything else. */
function asError(v: unknown): Record<string, unknown> | undefined {
  if (v instanceof Error) return errorFields(v);
  if (v && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string' && 'type' in v && 'stack' in v) {
    return v as Record<string, unknown>;
  }
  return undefined;
}

export function createLogger(opts: LoggerOptions = {}, base: Record<string, unknown> = {}): Logger {
  const min = RANK[opts.level ?? 'info'];
  const format = opts.format ?? 'text';
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (RANK[level] < min) return;
    const all = { ...base, ...fields };
    if (format === 'json') {
      write(
        JSON.stringify({ time: new Date().toISOString(), level, msg, ...all }, (_k, v) =>
          v instanceof Error ? errorFields(v) : typeof v === 'bigint' ? String(v) : v,
        ),
      );
    } else {
      let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}`;
      let stacks = '';
      // The event's own fields first, then the logger's (component=…), so a line reads in order.
      for (const [k, v] of Object.entries({ ...fields, ...base, ...fields })) {
        if (v === undefined) continue;
        const err = asError(v);
        if (!err) {
          line += ` ${k}=${textValue(v)}`;
          continue;
        }
        for (const f of ['type', 'message', 'code'] as const) if (err[f] !== undefined) line += ` ${k}.${f}=${textValue(err[f])}`;
        if (typeof err.stack === 'string') stacks += `\n    ${err.stack.split('\n').slice(1).map((l) => l.trim()).join('\n    ')}`;
      }
      write(line + stacks);
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
