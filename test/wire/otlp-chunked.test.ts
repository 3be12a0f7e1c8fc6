// A request body that arrives in many small pieces (spans cut across piece boundaries) is
// forwarded byte for byte and assembled into the same spans.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeSpan, jsonToProtobuf } from '../../src/wire/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

let capture: CaptureServer;
let sc: TestScorecar;
beforeAll(async () => {
  capture = await startHttpCapture();
  sc = await startScorecar(`exporters: {otlp: {endpoint: "${capture.url}"}}\nassembler: {settleMs: 100}`, { captureTraces: true });
});
afterAll(async () => {
  await sc.stop();
  await capture.close();
});

it('reassembles spans cut across body pieces', async () => {
  const spans = [];
  for (let t = 0; t < 6; t++) {
    const traceId = randomBytes(16).toString('hex');
    const root = randomBytes(8).toString('hex');
    for (let i = 0; i < 5; i++) {
      spans.push({
        traceId,
        spanId: i === 0 ? root : randomBytes(8).toString('hex'),
        ...(i ? { parentSpanId: root } : {}),
        name: `span-${t}-${i}`,
        attributes: [{ key: 'text', value: { stringValue: `${'x'.repeat(97 * (i + 1))}-${t}-${i}` } }],
      });
    }
  }
  const body = jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'chunky' } }] }, scopeSpans: [{ scope: { name: 'lib' }, spans }] }] }));
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${sc.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.setNoDelay(true);
    let at = 0;
    const step = (): void => {
      if (at >= body.length) return void req.end();
      const n = 37 + (at % 113);
      req.write(body.subarray(at, at + n));
      at += n;
      setTimeout(step, 1); // separate writes arrive as separate pieces
    };
    step();
  });
  expect(status).toBe(200);
  await waitFor(() => sc.traces.length === 6, 10_000, 'six completed traces');
  await waitFor(() => capture.requests.length > 0, 10_000, 'the forwarded request');
  expect(Buffer.concat(capture.requests.map((r) => r.body)).equals(body)).toBe(true);
  const got = sc.traces.flatMap((t) => t.spans.map((s, i) => decodeSpan(s, t.resources[i]!, t.scopes[i]!)));
  expect(got.map((s) => s.name).sort()).toEqual(spans.map((s) => s.name).sort());
  for (const s of got) {
    const [, t, i] = s.name.split('-');
    expect(s.attributes.text).toBe(`${'x'.repeat(97 * (Number(i) + 1))}-${t}-${i}`);
    expect(s.resource['service.name']).toBe('chunky');
  }
});
