// Admin API pieces that need no socket: the error-code → status mapping, endpoint parsing and
// the generated OpenAPI document.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildOpenApi, defineRoute, parseEndpoint } from '../../src/api/index.ts';
import { type ErrorCode, httpStatusOf } from '../../src/util/index.ts';

const CODES: ErrorCode[] = [
  'INVALID_ARGUMENT',
  'INVALID_PROTOBUF',
  'INVALID_JSON',
  'UNSUPPORTED_MEDIA_TYPE',
  'METHOD_NOT_ALLOWED',
  'PAYLOAD_TOO_LARGE',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'LIMIT_EXCEEDED',
  'FAILED_PRECONDITION',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'HOST_NOT_ALLOWED',
  'CROSS_SITE_REFUSED',
  'INVALID_FILTER',
  'INVALID_DEFINITION',
  'OVERLOADED',
  'QUEUE_FULL',
  'SHUTTING_DOWN',
  'CONFIG_INVALID',
  'DOWNSTREAM_UNAVAILABLE',
  'DOWNSTREAM_REJECTED',
  'TIMEOUT',
  'INTERNAL',
];

describe('httpStatusOf', () => {
  it('maps the input errors of the registry API to the documented statuses', () => {
    expect(httpStatusOf('INVALID_ARGUMENT')).toBe(400);
    expect(httpStatusOf('INVALID_DEFINITION')).toBe(400);
    expect(httpStatusOf('INVALID_FILTER')).toBe(400);
    expect(httpStatusOf('UNAUTHENTICATED')).toBe(401);
    expect(httpStatusOf('NOT_FOUND')).toBe(404);
    expect(httpStatusOf('METHOD_NOT_ALLOWED')).toBe(405);
    expect(httpStatusOf('LIMIT_EXCEEDED')).toBe(409);
    expect(httpStatusOf('PAYLOAD_TOO_LARGE')).toBe(413);
    expect(httpStatusOf('UNSUPPORTED_MEDIA_TYPE')).toBe(415);
    expect(httpStatusOf('OVERLOADED')).toBe(503);
  });
  it('gives every error code a 4xx or 5xx status', () => {
    for (const c of CODES) {
      const s = httpStatusOf(c);
      expect(s >= 400 && s < 600, `${c} -> ${s}`).toBe(true);
    }
  });
});

describe('parseEndpoint', () => {
  it('reads host:port, [v6]:port and :port', () => {
    expect(parseEndpoint('127.0.0.1:4320')).toEqual({ host: '127.0.0.1', port: 4320 });
    expect(parseEndpoint('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseEndpoint(':4320')).toEqual({ host: '0.0.0.0', port: 4320 });
    expect(() => parseEndpoint('nope')).toThrow(/host:port/);
    expect(() => parseEndpoint('h:70000')).toThrow(/range/);
  });
});

describe('buildOpenApi', () => {
  it('documents each route with its parameters, body schema (unknown fields refused) and error responses', () => {
    const route = defineRoute({
      method: 'POST',
      path: '/things/{thingId}',
      operationId: 'makeThing',
      summary: 'x',
      body: z.object({ size: z.number().int() }).strict(),
      query: z.object({ dryRun: z.string().optional() }).strict(),
      responses: { '201': { description: 'made' } },
      handler: () => ({ status: 201 }),
    });
    const doc = buildOpenApi([route], { version: '1.2.3' });
    expect(doc.openapi).toBe('3.1.0');
    const op = doc.paths['/api/v1/things/{thingId}']!.post as Record<string, unknown>;
    expect(op.operationId).toBe('makeThing');
    const params = op.parameters as Array<{ name: string; in: string; required: boolean }>;
    expect(params.map((p) => [p.name, p.in, p.required])).toEqual([
      ['thingId', 'path', true],
      ['dryRun', 'query', false],
      // A mutating call: the CSRF header, needed when the body is not JSON.
      ['x-scorecar-request', 'header', false],
    ]);
    const body = (op.requestBody as { content: Record<string, { schema: Record<string, unknown> }> }).content[
      'application/json'
    ]!.schema;
    expect(body.additionalProperties).toBe(false);
    expect(Object.keys(op.responses as object).sort()).toEqual([
      '201',
      '400',
      '401',
      '403',
      '404',
      '413',
      '415',
      '503',
    ]);
    expect(doc.paths['/healthz']!.get).toBeDefined();
    expect(doc.paths['/metrics']!.get).toBeDefined();
  });
});
