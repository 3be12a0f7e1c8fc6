// `scorecar start` as a real process: SIGTERM stops accepting, completes what is buffered,
// drains the exporter and exits 0; a bad config is refused at start with every key path.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { startHttpCapture } from '../support/capture.ts';
import { NODE, scrape, startChild } from '../support/child.ts';

describe('scorecar start', () => {
  it('on SIGTERM completes buffered traces, drains the exporter and exits 0', async () => {
    const capture = await startHttpCapture();
    capture.setDelay(300);
    // Traces are only buffered when a scorer may read them: one at rate 1.0 whose filter matches
    // none of them keeps every trace buffered without adding assessments to what is exported.
    const sc = await startChild(
      `exporters: {otlp: {endpoint: "${capture.url}"}}\nassembler: {settleMs: 60000}\n` +
        `scorers: [{experiment: default, name: none, definition: {type: code, source: "(ctx) => 1"}, sampleRate: 1, filterString: "trace.name = 'never'"}]`,
    );
    try {
      const ids: string[] = [];
      for (let i = 0; i < 50; i++) {
        const traceId = randomBytes(16).toString('hex');
        const spanIds = [randomBytes(8).toString('hex'), randomBytes(8).toString('hex')];
        ids.push(...spanIds);
        const body = jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: spanIds[0] }, { traceId, spanId: spanIds[1], parentSpanId: spanIds[0] }] }] }] }));
        const res = await fetch(`${sc.httpUrl}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } });
        expect(res.status).toBe(200);
      }
      expect(await scrape(sc.adminUrl, 'scorecar_assembler_buffer_traces')).toBe(50);
      const code = await sc.terminate();
      expect(code).toBe(0);
      expect(sc.output()).toMatch(/completed buffered traces at shutdown traces=50/);
      expect(sc.output()).toMatch(/scorecar stopped/);
      expect(capture.spanIds().sort()).toEqual(ids.sort());
    } finally {
      sc.kill();
      await capture.close();
    }
  }, 60_000);

  it('refuses an invalid config with every error and its key path (exit 78)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scorecar-cfg-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'receivers:\n  otlp:\n    http: {endpoint: "nope"}\nassembler: {settleMs: -5}\nexporters: {otlp: {endpoint: "ftp://x"}}\nbogus: 1\n');
    const r = spawnSync(NODE, ['bin/scorecar.js', 'start', '--config', file], { encoding: 'utf8', cwd: join(import.meta.dirname, '../..') });
    expect(r.status).toBe(78);
    for (const path of ['receivers.otlp.http.endpoint', 'assembler.settleMs', 'exporters.otlp.endpoint', '(root): Unrecognized key: "bogus"']) {
      expect(r.stderr).toContain(path);
    }
  });
});
