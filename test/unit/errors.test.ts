// The one error table (src/util/errors.ts): docs/errors.md lists exactly its codes with the same
// retryability and statuses, the table keeps the OTLP status rules, receivers turn our bugs into
// retryable answers, and the SDK reads a refusal's code and retryability from the same table.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScorecarApiError, ScorecarClient } from '../../src/sdk/index.ts';
import {
  ERROR_CODES,
  ERRORS,
  type ErrorCode,
  GRPC,
  isErrorCode,
  receiverStatus,
  ScorecarError,
} from '../../src/util/index.ts';

const DOC = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const KINDS = new Set(['request', 'capacity', 'config', 'downstream', 'scorer']);
const GRPC_NAMES = new Map<number, string>(Object.entries(GRPC).map(([name, n]) => [n, name]));

interface DocRow {
  line: number;
  code: string;
  kind: string | undefined;
  retryable: string;
  http: string;
  grpc: string;
}

/** The doc's table rows that start with a code, with the kind of the section they sit in. */
function docRows(): DocRow[] {
  const rows: DocRow[] = [];
  let kind: string | undefined;
  DOC.split('\n').forEach((text, i) => {
    // A section heading names its kind in backticks: "## Capacity — `capacity`".
    const heading = /^#{2,}\s.*`([a-z]+)`\s*$/.exec(text);
    if (heading) kind = heading[1];
    else if (/^#{2,}\s/.test(text)) kind = undefined;
    const row = /^\|\s*`([A-Za-z0-9_]+)`\s*\|/.exec(text);
    if (!row) return;
    const cells = text
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((c) => c.trim());
    rows.push({
      line: i + 1,
      code: row[1]!,
      kind,
      retryable: cells[2] ?? '',
      http: cells[3] ?? '',
      grpc: cells[4] ?? '',
    });
  });
  return rows;
}

describe('docs/errors.md', () => {
  const rows = docRows();

  it('lists every code of the table, once', () => {
    const listed = rows.map((r) => r.code);
    const missing = ERROR_CODES.filter((c) => !listed.includes(c));
    expect(missing, 'codes of ERRORS missing from docs/errors.md').toEqual([]);
    const twice = listed.filter((c, i) => listed.indexOf(c) !== i);
    expect(twice, 'codes listed more than once').toEqual([]);
  });

  it('lists no code the table does not have', () => {
    const unknown = rows.filter((r) => !isErrorCode(r.code)).map((r) => `${r.code} (line ${r.line})`);
    expect(unknown, 'codes in docs/errors.md that are not in ERRORS').toEqual([]);
  });

  it('gives each code the retryability, statuses and section of its row in the table', () => {
    const wrong: string[] = [];
    for (const r of rows) {
      if (!isErrorCode(r.code)) continue;
      const spec = ERRORS[r.code];
      const grpcName = GRPC_NAMES.get(spec.grpc);
      if (r.kind !== spec.kind) wrong.push(`${r.code}: under section '${r.kind}', table kind '${spec.kind}'`);
      if (r.retryable !== (spec.retryable ? 'yes' : 'no'))
        wrong.push(`${r.code}: retryable '${r.retryable}', table ${spec.retryable}`);
      if (r.http !== String(spec.http)) wrong.push(`${r.code}: HTTP '${r.http}', table ${spec.http}`);
      if (!r.grpc.startsWith(`\`${grpcName}\` (${spec.grpc})`))
        wrong.push(`${r.code}: gRPC '${r.grpc}', table \`${grpcName}\` (${spec.grpc})`);
    }
    expect(wrong).toEqual([]);
  });
});

describe('the error table', () => {
  // OTLP: senders retry HTTP 429, 502, 503, 504; gRPC CANCELLED, DEADLINE_EXCEEDED, ABORTED,
  // OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS, and RESOURCE_EXHAUSTED only with RetryInfo.
  const RETRYABLE_HTTP = new Set([429, 502, 503, 504]);
  const RETRYABLE_GRPC = new Set<number>([
    GRPC.CANCELLED,
    GRPC.DEADLINE_EXCEEDED,
    GRPC.ABORTED,
    GRPC.OUT_OF_RANGE,
    GRPC.UNAVAILABLE,
    GRPC.DATA_LOSS,
    GRPC.RESOURCE_EXHAUSTED,
  ]);
  const entries = Object.entries(ERRORS) as [ErrorCode, (typeof ERRORS)[ErrorCode]][];

  it('has codes in UPPER_SNAKE_CASE, a known kind and a one-sentence summary', () => {
    for (const [code, spec] of entries) {
      expect(code).toMatch(/^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/);
      expect(KINDS.has(spec.kind), `${code}: kind ${spec.kind}`).toBe(true);
      expect(spec.summary, code).toMatch(/^\S.*\.$/);
    }
  });

  it('maps every code to an HTTP error status and a gRPC error code', () => {
    for (const [code, spec] of entries) {
      expect(spec.http >= 400 && spec.http <= 599, `${code}: HTTP ${spec.http}`).toBe(true);
      expect(GRPC_NAMES.has(spec.grpc) && spec.grpc !== GRPC.OK, `${code}: gRPC ${spec.grpc}`).toBe(true);
    }
  });

  it('keeps retryable codes on statuses OTLP senders retry (scorer codes aside)', () => {
    // Scorer codes never answer a sender: their "retryable" means the next run may succeed.
    const wrong = entries
      .filter(([, s]) => s.retryable && s.kind !== 'scorer')
      .filter(([, s]) => !RETRYABLE_HTTP.has(s.http) || !RETRYABLE_GRPC.has(s.grpc))
      .map(([code, s]) => `${code}: HTTP ${s.http}, gRPC ${GRPC_NAMES.get(s.grpc)}`);
    expect(wrong).toEqual([]);
  });

  it('never makes senders retry a refused request, and always lets them retry capacity refusals', () => {
    for (const [code, spec] of entries) {
      if (spec.kind === 'request' || spec.kind === 'config') {
        expect(spec.retryable, code).toBe(false);
        // RESOURCE_EXHAUSTED without RetryInfo is final, so it is allowed here (a body too large).
        expect(spec.http >= 400 && spec.http < 500 && spec.http !== 429, `${code}: HTTP ${spec.http}`).toBe(
          true,
        );
        expect(
          spec.grpc === GRPC.RESOURCE_EXHAUSTED || !RETRYABLE_GRPC.has(spec.grpc),
          `${code}: gRPC ${GRPC_NAMES.get(spec.grpc)}`,
        ).toBe(true);
      }
      if (spec.kind === 'capacity') {
        expect(spec.retryable, code).toBe(true);
        // UNAVAILABLE rather than RESOURCE_EXHAUSTED: senders retry it even without RetryInfo.
        expect(spec.grpc, code).toBe(GRPC.UNAVAILABLE);
      }
    }
  });

  it('ScorecarError takes its retryability from the table unless told otherwise', () => {
    for (const code of ERROR_CODES)
      expect(new ScorecarError(code, 'x').retryable, code).toBe(ERRORS[code].retryable);
    expect(new ScorecarError('INTERNAL', 'x', { retryable: true }).retryable).toBe(true);
  });
});

describe('receiverStatus', () => {
  it('answers a known code with its row and a retry hint when it is retryable', () => {
    expect(receiverStatus(new ScorecarError('PAYLOAD_TOO_LARGE', 'big'))).toEqual({
      code: 'PAYLOAD_TOO_LARGE',
      http: 413,
      grpc: GRPC.RESOURCE_EXHAUSTED,
      retryHint: false,
      message: 'big',
    });
    expect(receiverStatus(new ScorecarError('MEMORY_BUDGET_FULL', 'full'))).toMatchObject({
      http: 429,
      grpc: GRPC.UNAVAILABLE,
      retryHint: true,
    });
  });

  it('answers a bug of ours (anything without a code, or INTERNAL) 503 / UNAVAILABLE with a retry hint', () => {
    for (const bug of [new TypeError('x is undefined'), 'a string', new ScorecarError('INTERNAL', 'oops')]) {
      const st = receiverStatus(bug);
      expect(st).toMatchObject({ code: 'UNEXPECTED', http: 503, grpc: GRPC.UNAVAILABLE, retryHint: true });
      expect(st.message).toMatch(/retry later/);
    }
  });
});

describe('the SDK reads refusals through the table', () => {
  // A real HTTP server on loopback answering canned refusals: what the SDK sees from scorecar
  // (a body with a code) and from a gateway in front of it (a bare status).
  const answers: Record<string, { status: number; body: string; type?: string }> = {
    'budget-full': {
      status: 429,
      body: JSON.stringify({ error: { code: 'MEMORY_BUDGET_FULL', message: 'full' } }),
    },
    'queue-full': { status: 503, body: JSON.stringify({ error: { code: 'QUEUE_FULL', message: 'queue' } }) },
    limit: {
      status: 409,
      body: JSON.stringify({
        error: { code: 'LIMIT_EXCEEDED', message: '20 names', details: { limit: 20 } },
      }),
    },
    // 500 would say INTERNAL (final); the body's code says a crashed sandbox, worth retrying.
    crashed: {
      status: 500,
      body: JSON.stringify({ error: { code: 'SANDBOX_CRASHED', message: 'worker died' } }),
    },
    'newer-code': {
      status: 404,
      body: JSON.stringify({ error: { code: 'SOMETHING_NEWER', message: 'gone' } }),
    },
    'numeric-code': { status: 409, body: JSON.stringify({ error: { code: 7, message: 'odd' } }) },
    'gateway-502': { status: 502, body: '<html>bad gateway</html>', type: 'text/html' },
    'gateway-504': { status: 504, body: '' },
    'gateway-429': { status: 429, body: '' },
    'bare-500': { status: 500, body: '' },
    teapot: { status: 418, body: '' },
  };
  let server: Server;
  let client: ScorecarClient;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const name = decodeURIComponent(/^\/api\/v1\/experiments\/([^/]+)\//.exec(req.url ?? '')?.[1] ?? '');
      const a = answers[name] ?? { status: 599, body: '' };
      res.writeHead(a.status, { 'content-type': a.type ?? 'application/json' });
      res.end(a.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = new ScorecarClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function refusal(experimentId: string): Promise<ScorecarApiError> {
    const e = await client.listScorers({ experimentId }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(ScorecarApiError);
    return e as ScorecarApiError;
  }

  it("takes the server's code from the body, and its retryability from the table", async () => {
    const cases: [string, ErrorCode, boolean, number][] = [
      ['budget-full', 'MEMORY_BUDGET_FULL', true, 429],
      ['queue-full', 'QUEUE_FULL', true, 503],
      ['limit', 'LIMIT_EXCEEDED', false, 409],
      ['crashed', 'SANDBOX_CRASHED', true, 500],
    ];
    for (const [exp, code, retryable, status] of cases) {
      const e = await refusal(exp);
      expect({ exp, code: e.code, retryable: e.retryable, status: e.status }).toEqual({
        exp,
        code,
        retryable,
        status,
      });
    }
    const limit = await refusal('limit');
    expect(limit.message).toBe('20 names');
    expect(limit.details).toEqual({ limit: 20 });
  });

  it('falls back to the status when the body has no code it knows', async () => {
    const cases: [string, ErrorCode, boolean][] = [
      ['newer-code', 'NOT_FOUND', false],
      ['numeric-code', 'FAILED_PRECONDITION', false],
      ['gateway-502', 'DOWNSTREAM_UNAVAILABLE', true],
      ['gateway-504', 'TIMEOUT', true],
      ['gateway-429', 'OVERLOADED', true],
      ['bare-500', 'INTERNAL', false],
      ['teapot', 'INVALID_ARGUMENT', false],
    ];
    for (const [exp, code, retryable] of cases) {
      const e = await refusal(exp);
      expect({ exp, code: e.code, retryable: e.retryable }).toEqual({ exp, code, retryable });
    }
    // The server's message is kept even when its code is not one the SDK knows.
    expect((await refusal('newer-code')).message).toBe('gone');
    expect((await refusal('gateway-502')).message).toMatch(
      /^HTTP 502 from GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\//,
    );
  });
});
