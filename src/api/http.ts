// HTTP plumbing of the admin server: JSON responses and errors (statuses from the one error
// table, util/errors.ts), bounded body reading, content-type checks, and zod issues turned into
// field-path messages.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { type ErrorCode, httpStatusOf, ScorecarError } from '../util/index.ts';

/** Details keys that are safe and useful to return to API clients. */
const PUBLIC_DETAILS = ['field', 'position', 'errors', 'resource', 'limit', 'allowed', 'jobId'] as const;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

export function errorBody(e: ScorecarError): ErrorBody {
  const details: Record<string, unknown> = {};
  for (const k of PUBLIC_DETAILS) if (e.details?.[k] !== undefined) details[k] = e.details[k];
  return {
    error: { code: e.code, message: e.message, ...(Object.keys(details).length > 0 ? { details } : {}) },
  };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string | number> = {},
): void {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(payload);
}

export function sendError(
  res: ServerResponse,
  e: ScorecarError,
  headers: Record<string, string | number> = {},
): void {
  const status = httpStatusOf(e.code);
  const extra: Record<string, string | number> = { ...headers };
  if (status === 503) extra['retry-after'] = 1;
  if (status === 401) extra['www-authenticate'] = 'Bearer realm="scorecar"';
  sendJson(res, status, errorBody(e), extra);
}

const JSON_TYPE = /^application\/(?:json|[\w.+-]+\+json)\s*(?:;|$)/i;

export function isJsonContentType(ct: string | undefined): boolean {
  return ct !== undefined && JSON_TYPE.test(ct);
}

/** True when the request announces a body (a length > 0, or chunked). */
export function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  if (cl !== undefined) return Number(cl) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * Reads the whole body up to `limit` bytes. Over the limit: PAYLOAD_TOO_LARGE, after reading
 * (and discarding) up to `drainLimit` bytes in all, so the client still reads the 413 instead
 * of a reset connection; beyond that the connection is cut.
 */
export function readBody(req: IncomingMessage, limit: number, drainLimit = limit * 8): Promise<Buffer> {
  const tooLarge = () =>
    new ScorecarError('PAYLOAD_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`, {
      details: { limit },
    });
  return new Promise<Buffer>((resolve, reject) => {
    const declared = req.headers['content-length'];
    let over = declared !== undefined && Number(declared) > limit;
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      fn();
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (!over && total > limit) {
        over = true;
        chunks.length = 0;
      }
      if (over) {
        if (total > drainLimit) {
          req.socket.destroy();
          settle(() => reject(tooLarge()));
        }
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => settle(() => (over ? reject(tooLarge()) : resolve(Buffer.concat(chunks, total)))));
    req.once('error', (e) =>
      settle(() => reject(new ScorecarError('INVALID_ARGUMENT', `request body: ${e.message}`))),
    );
    req.once('close', () =>
      settle(() =>
        reject(new ScorecarError('INVALID_ARGUMENT', 'the client closed the request before its end')),
      ),
    );
  });
}

export interface FieldError {
  path: string;
  message: string;
}

function joinPath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  return out;
}

/** zod issues as `body.sampleRate: expected number, received string` lines. */
export function fieldErrors(issues: readonly z.core.$ZodIssue[], root: string): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of issues) {
    const at = joinPath(root, issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) out.push({ path: `${at}.${k}`, message: 'unknown field' });
    } else {
      out.push({ path: at, message: issue.message.replace(/^Invalid input: /, '') });
    }
  }
  return out;
}

export function invalidArgument(what: string, errors: FieldError[]): ScorecarError {
  return new ScorecarError(
    'INVALID_ARGUMENT',
    `${what}: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
    {
      details: { errors, ...(errors.length === 1 ? { field: errors[0]!.path } : {}) },
    },
  );
}
