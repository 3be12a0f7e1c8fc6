// Log records joined to their traces by the assembler: the GenAI semantic conventions put message
// content in log events, so a trace's log records travel with its spans to the GenAI view. Fake
// clock throughout: completion is driven by sweep(now), never by wall time.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  Assembler,
  type AssemblerOptions,
  type CompleteTrace,
  LOG_OVERHEAD_BYTES,
  SPAN_OVERHEAD_BYTES,
  TRACE_OVERHEAD_BYTES,
  type TraceInterest,
} from '../../src/assembly/index.ts';
import { fanout } from '../../src/component/index.ts';
import { OtlpIngest } from '../../src/receivers/index.ts';
import { type ActiveScorer, DEFAULT_SAMPLING_SALT, isSelected, type SelectedJob, TraceSelector } from '../../src/select/index.ts';
import { MetricsRegistry, silentLogger } from '../../src/util/index.ts';
import {
  decodeLogRecord,
  decodeResource,
  jsonToProtobuf,
  LOG_STRIDE,
  type OtlpBatch,
  scanLogsRequest,
  scanTraceRequest,
} from '../../src/wire/index.ts';
import { consumer, Sink } from '../support/sink.ts';

const hex = (n: number) => randomBytes(n).toString('hex');

interface S {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name?: string;
}

interface L {
  traceId?: string;
  spanId?: string;
  body: string;
  eventName?: string;
  /** The W3C sampled trace flag (default set, as SDKs stamp records of sampled spans). */
  sampled?: boolean;
}

function spansReq(spans: S[], service = 'svc'): Buffer {
  return jsonToProtobuf(
    'traces',
    JSON.stringify({
      resourceSpans: [
        { resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 'lib' }, spans }] },
      ],
    }),
  );
}

function logsReq(logs: L[], service = 'svc'): Buffer {
  return jsonToProtobuf(
    'logs',
    JSON.stringify({
      resourceLogs: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
          scopeLogs: [
            {
              scope: { name: 'genai-lib' },
              logRecords: logs.map((l) => ({
                ...(l.traceId ? { traceId: l.traceId } : {}),
                ...(l.spanId ? { spanId: l.spanId } : {}),
                ...(l.traceId && l.sampled !== false ? { flags: 1 } : {}),
                eventName: l.eventName ?? 'gen_ai.user.message',
                body: { kvlistValue: { values: [{ key: 'content', value: { stringValue: l.body } }] } },
              })),
            },
          ],
        },
      ],
    }),
  );
}

function setup(opts: Partial<AssemblerOptions> = {}, interest?: TraceInterest) {
  let now = 1_000_000;
  const done: CompleteTrace[] = [];
  const asm = new Assembler(
    { settleMs: 2000, idleTimeoutMs: 30_000, maxAgeMs: 300_000, maxBytes: 1 << 30, decisionCacheSize: 1000, tickMs: 100, now: () => now, ...opts },
    consumer<CompleteTrace>((t) => done.push(t)),
    { interest },
  );
  return {
    asm,
    done,
    spans: (b: Buffer) => asm.ingest(b, scanTraceRequest(b)),
    logs: (b: Buffer, header?: string) => asm.ingestLogs(b, scanLogsRequest(b), header),
    advance: (ms: number) => {
      now += ms;
      asm.sweep(now);
    },
  };
}

function trace(children = 1) {
  const traceId = hex(16);
  const root: S = { traceId, spanId: hex(8), name: 'root' };
  const kids: S[] = Array.from({ length: children }, (_, i) => ({ traceId, spanId: hex(8), parentSpanId: root.spanId, name: `c${i}` }));
  return { traceId, root, kids };
}

/** The bodies' `content` of a completed trace's log records, in order. */
function logContents(c: CompleteTrace): string[] {
  return (c.logs ?? []).map((b, i) => {
    const r = decodeLogRecord(b, c.logResources![i]!, c.logScopes![i]!);
    return (r.body as { content: string }).content;
  });
}

describe('assembler: log records', () => {
  it('joins log records that arrive before any span: they open the entry, the root then settles it', () => {
    const { asm, done, spans, logs, advance } = setup();
    const t = trace(1);
    logs(logsReq([{ traceId: t.traceId, spanId: t.kids[0]!.spanId, body: 'question' }]));
    expect(asm.traceCount).toBe(1);
    // A log record is never a root: without spans the entry waits (idle timeout), not settles.
    advance(5000);
    expect(done).toHaveLength(0);
    spans(spansReq([t.root, t.kids[0]!]));
    advance(1000);
    logs(logsReq([{ traceId: t.traceId, spanId: t.kids[0]!.spanId, body: 'answer' }]));
    advance(1100);
    expect(done).toHaveLength(1);
    const c = done[0]!;
    expect(c.traceId).toBe(t.traceId);
    expect(c.reason).toBe('root');
    expect(c.spans).toHaveLength(2);
    expect(logContents(c)).toEqual(['question', 'answer']);
    const rec = decodeLogRecord(c.logs![0]!, c.logResources![0]!, c.logScopes![0]!);
    expect(rec.spanId).toBe(t.kids[0]!.spanId);
    expect(rec.eventName).toBe('gen_ai.user.message');
    expect(rec.scope.name).toBe('genai-lib');
    expect(c.wireBytes).toBe([...c.spans, ...c.logs!].reduce((n, b) => n + b.length, 0));
    expect(asm.counters.logsBuffered).toBe(2);
    expect(asm.bytes).toBe(0);
  });

  it('counts log records of a completed trace as late, and ignores records without a trace id', () => {
    const { asm, done, spans, logs, advance } = setup();
    const t = trace(0);
    spans(spansReq([t.root]));
    advance(2100);
    expect(done).toHaveLength(1);
    logs(logsReq([{ traceId: t.traceId, spanId: t.root.spanId, body: 'late' }, { body: 'plain app log' }]));
    expect(asm.counters.logsLate).toBe(1);
    expect(asm.counters.logsBuffered).toBe(0);
    expect(asm.traceCount).toBe(0);
    expect(asm.bytes).toBe(0);
  });

  it('does not buffer log records of a trace the interest gate does not want, and asks with their resource', () => {
    const asked: string[] = [];
    const wanted = trace(0);
    const unwanted = trace(0);
    const interest: TraceInterest = {
      wants: (b, off, resource) => {
        asked.push(String(decodeResource(resource)['service.name']));
        return Buffer.from(b.subarray(off, off + 16)).toString('hex') === wanted.traceId;
      },
    };
    const { asm, done, spans, logs, advance } = setup({}, interest);
    logs(
      logsReq(
        [
          { traceId: unwanted.traceId, body: 'a' },
          { traceId: unwanted.traceId, body: 'b' },
          { traceId: wanted.traceId, body: 'c' },
        ],
        'log-svc',
      ),
    );
    // One question per run of records of one trace.
    expect(asked).toEqual(['log-svc', 'log-svc']);
    expect(asm.counters.logsNotSampled).toBe(2);
    expect(asm.counters.logsBuffered).toBe(1);
    expect(asm.traceCount).toBe(1);
    spans(spansReq([unwanted.root, wanted.root]));
    advance(2100);
    expect(done.map((d) => d.traceId)).toEqual([wanted.traceId]);
    expect(logContents(done[0]!)).toEqual(['c']);
    expect(asm.counters.spansNotSampled).toBe(1);
  });

  it('asks the selection stage’s real interest gate: records of unsampled traces are never buffered', () => {
    const scorer: ActiveScorer = {
      experimentId: 'scored-app',
      name: 'len',
      version: 1,
      definition: { type: 'code', source: '(ctx) => 1' },
      sampleRate: 0.5,
      filterString: null,
      filter: null,
      updatedAt: '2025-01-01T00:00:00Z',
    };
    const active = new Map([['scored-app', [scorer]]]);
    const selector = new TraceSelector({
      registry: { activeScorers: () => active, activeFor: (e) => active.get(e) ?? [] },
      next: new Sink<SelectedJob>(),
      resolution: ['resource:service.name'],
      defaultExperiment: 'default',
      salt: DEFAULT_SAMPLING_SALT,
      metrics: new MetricsRegistry(),
      log: silentLogger,
    });
    const { asm, done, spans, logs, advance } = setup({}, selector);
    const scored = Array.from({ length: 40 }, () => trace(0));
    const unscored = Array.from({ length: 10 }, () => trace(0));
    for (const t of scored) logs(logsReq([{ traceId: t.traceId, body: 'q' }, { traceId: t.traceId, body: 'a' }], 'scored-app'));
    for (const t of unscored) logs(logsReq([{ traceId: t.traceId, body: 'q' }], 'unscored-app'));
    const sampled = scored.filter((t) => isSelected(t.traceId, 0.5, DEFAULT_SAMPLING_SALT));
    // Rate 0.5 over 40 ids: both outcomes occur (the ids are random; 2^-39 that they do not).
    expect(sampled.length).toBeGreaterThan(0);
    expect(sampled.length).toBeLessThan(40);
    expect(asm.counters.logsBuffered).toBe(2 * sampled.length);
    expect(asm.counters.logsNotSampled).toBe(2 * (40 - sampled.length) + 10);
    expect(asm.traceCount).toBe(sampled.length);
    spans(spansReq(scored.map((t) => t.root), 'scored-app'));
    spans(spansReq(unscored.map((t) => t.root), 'unscored-app'));
    advance(2100);
    expect(new Set(done.map((d) => d.traceId))).toEqual(new Set(sampled.map((t) => t.traceId)));
    for (const d of done) expect(logContents(d)).toEqual(['q', 'a']);
  });

  it('opens no entry for records whose trace flags say unsampled; they join one their spans opened', () => {
    const { asm, done, spans, logs, advance } = setup();
    const headSampledOut = trace(0);
    const flagless = trace(0);
    logs(logsReq([{ traceId: headSampledOut.traceId, body: 'x', sampled: false }]));
    expect(asm.counters.logsUnsampled).toBe(1);
    expect(asm.traceCount).toBe(0);
    expect(asm.bytes).toBe(0);
    // A producer that leaves the flags unset: its records join once the spans are buffered.
    spans(spansReq([flagless.root]));
    logs(
      logsReq([
        { traceId: flagless.traceId, body: 'after the span', sampled: false },
        { traceId: headSampledOut.traceId, body: 'still unsampled', sampled: false },
        { traceId: headSampledOut.traceId, body: 'this one is sampled' },
      ]),
    );
    advance(2100);
    expect(done.map((d) => [d.traceId, logContents(d)])).toEqual([[flagless.traceId, ['after the span']]]);
    expect(asm.counters.logsUnsampled).toBe(2);
    // The sampled record of the same run opened the entry (it waits for spans that never come).
    expect(asm.traceCount).toBe(1);
    expect(asm.counters.logsBuffered).toBe(2);
  });

  it('drops a trace whose spans never came at the idle timeout, counted, and later spans are late', () => {
    const { asm, done, spans, logs, advance } = setup();
    const t = trace(0);
    logs(logsReq([{ traceId: t.traceId, body: 'x' }, { traceId: t.traceId, body: 'y' }]));
    advance(29_000);
    expect(asm.traceCount).toBe(1);
    advance(1100);
    expect(done).toHaveLength(0);
    expect(asm.traceCount).toBe(0);
    expect(asm.counters.logsWithoutSpans).toBe(2);
    expect(asm.counters.tracesCompleted).toEqual({ root: 0, idle: 0, max_age: 0, shutdown: 0 });
    expect(asm.bytes).toBe(0);
    spans(spansReq([t.root]));
    expect(asm.counters.spansLate).toBe(1);
  });

  it('charges log records to the byte budget and evicts them with their trace', () => {
    const one = logsReq([{ traceId: hex(16), body: 'm'.repeat(500) }]);
    const { asm, logs, spans, done, advance } = setup({ maxBytes: 10_000 });
    // One trace, one record: its request buffer, the record and the trace row are charged.
    logs(one);
    expect(asm.bytes).toBe(one.length + 256 + LOG_OVERHEAD_BYTES + TRACE_OVERHEAD_BYTES);
    const traces = Array.from({ length: 20 }, () => trace(0));
    for (const t of traces) {
      logs(logsReq([{ traceId: t.traceId, body: 'm'.repeat(500) }, { traceId: t.traceId, body: 'n'.repeat(300) }]));
    }
    expect(asm.bytes).toBeLessThanOrEqual(10_000);
    expect(asm.counters.tracesEvicted).toBeGreaterThan(0);
    // The first trace (one record) went first, then two records per evicted trace.
    expect(asm.counters.logsEvicted).toBe(1 + (asm.counters.tracesEvicted - 1) * 2);
    expect(asm.counters.spansEvicted).toBe(0);
    // A survivor's spans complete it with both records; an evicted trace's records are late.
    const last = traces[19]!;
    spans(spansReq([last.root]));
    advance(2100);
    expect(done.map((d) => d.traceId)).toContain(last.traceId);
    expect(logContents(done.find((d) => d.traceId === last.traceId)!)).toEqual(['m'.repeat(500), 'n'.repeat(300)]);
    logs(logsReq([{ traceId: traces[0]!.traceId, body: 'again' }]));
    expect(asm.counters.logsLate).toBe(1);
    advance(31_000);
    expect(asm.traceCount).toBe(0);
    expect(asm.bytes).toBe(0);
  });

  it('shares one log request buffer between traces and copies long-lived traces out of it', () => {
    const { asm, done, spans, logs, advance } = setup({ settleMs: 1000, idleTimeoutMs: 60_000, compactAfterMs: 5000 });
    const quick = trace(0);
    const slow = trace(1);
    spans(spansReq([quick.root, slow.kids[0]!]));
    const b = logsReq([
      { traceId: quick.traceId, body: 'q1' },
      { traceId: slow.traceId, body: 's1' },
      { traceId: quick.traceId, body: 'q2' },
    ]);
    logs(b);
    advance(1100);
    expect(done.map((d) => d.traceId)).toEqual([quick.traceId]);
    expect(logContents(done[0]!)).toEqual(['q1', 'q2']);
    // The slow trace still holds the logs request (and the spans request).
    expect(asm.bytes).toBeGreaterThan(b.length);
    advance(5000);
    expect(asm.counters.tracesCompacted).toBe(1);
    // Compacted: charged for its own span and record only, in one copy, not the two requests.
    const slowSpan = scanTraceRequest(spansReq([slow.kids[0]!])).resources[0]!.scopes[0]!.spans;
    const slowLog = scanLogsRequest(b).resources[0]!.scopes[0]!.logs;
    const own = slowSpan[1]! - slowSpan[0]! + (slowLog[LOG_STRIDE + 1]! - slowLog[LOG_STRIDE]!);
    expect(asm.bytes).toBe(TRACE_OVERHEAD_BYTES + SPAN_OVERHEAD_BYTES + LOG_OVERHEAD_BYTES + own + 256);
    b.fill(0); // the request buffer may be reused: the compacted trace no longer reads it
    spans(spansReq([slow.root]));
    logs(logsReq([{ traceId: slow.traceId, body: 's2' }]));
    advance(1100);
    const c = done[1]!;
    expect(c.traceId).toBe(slow.traceId);
    expect(c.spans).toHaveLength(2);
    expect(logContents(c)).toEqual(['s1', 's2']);
    expect(asm.bytes).toBe(0);
  });

  it('completes log records with their trace at shutdown and drops them with it', async () => {
    const a = setup();
    const t = trace(0);
    a.spans(spansReq([t.root]));
    a.logs(logsReq([{ traceId: t.traceId, body: 'kept' }]));
    await a.asm.shutdown();
    expect(a.done.map((d) => [d.reason, logContents(d)])).toEqual([['shutdown', ['kept']]]);
    const b = setup({ onShutdown: 'drop' });
    b.logs(logsReq([{ traceId: t.traceId, body: 'dropped' }]));
    await b.asm.shutdown();
    expect(b.done).toHaveLength(0);
    expect(b.asm.bytes).toBe(0);
  });
});

describe('ingest -> forward + assemble: logs', () => {
  it('forwards a logs body exactly as received and joins its records from the pieces it arrived in', () => {
    let now = 0;
    const done: CompleteTrace[] = [];
    const asm = new Assembler(
      { settleMs: 10, idleTimeoutMs: 1000, maxAgeMs: 10_000, maxBytes: 1 << 30, decisionCacheSize: 100, now: () => now },
      consumer<CompleteTrace>((c) => done.push(c)),
    );
    const forwarded = new Sink<OtlpBatch>();
    const ingest = new OtlpIngest({ next: fanout<OtlpBatch>(forwarded, asm), metrics: new MetricsRegistry(), log: silentLogger });
    const t = trace(0);
    const body = logsReq([
      { traceId: t.traceId, spanId: t.root.spanId, body: 'a'.repeat(40) },
      { body: 'no trace' },
      { traceId: t.traceId, spanId: t.root.spanId, body: 'b'.repeat(40) },
    ]);
    // Cut inside the first record and inside the third, as socket reads would.
    const cuts = [30, body.length - 20];
    const pieces = [body.subarray(0, cuts[0]), body.subarray(cuts[0], cuts[1]), body.subarray(cuts[1])].map((p) =>
      Buffer.from(p),
    );
    const outcome = ingest.logs(pieces, { transport: 'http', experimentHeader: undefined });
    expect(outcome).toEqual({ accepted: 3, rejected: 0, errorMessage: '' });
    const batch = forwarded.items[0]!;
    expect(batch.items).toBe(3);
    expect(Buffer.concat(batch.body as Buffer[]).equals(body)).toBe(true);
    // The scratch buffer the scan ran over is reused by the next request: overwrite it.
    ingest.logs([Buffer.from(logsReq([{ body: 'x'.repeat(200) }])), Buffer.alloc(0)], { transport: 'http', experimentHeader: undefined });
    const spans = spansReq([t.root]);
    ingest.traces(spans, { transport: 'http', experimentHeader: undefined });
    now += 200;
    asm.sweep(now);
    expect(done).toHaveLength(1);
    expect(logContents(done[0]!)).toEqual(['a'.repeat(40), 'b'.repeat(40)]);
  });

  it('refuses a logs request whose framing is broken inside a log record', () => {
    const ingest = new OtlpIngest({ next: new Sink<OtlpBatch>(), metrics: new MetricsRegistry(), log: silentLogger });
    const body = logsReq([{ traceId: hex(16), body: 'hello' }]);
    const start = scanLogsRequest(body).resources[0]!.scopes[0]!.logs[0]!;
    // The record starts with its body field (tag 5, length-delimited): make that field claim
    // more bytes than the record holds. The envelope around it stays sound.
    expect(body[start]).toBe(0x2a);
    const bad = Buffer.from(body);
    expect(scanLogsRequest(body).resources[0]!.scopes[0]!.logs[1]! - start).toBeLessThan(0x7f);
    bad[start + 1] = 0x7f;
    expect(() => ingest.logs(bad, { transport: 'http', experimentHeader: undefined })).toThrow(/runs past the end/);
    expect(ingest.logs(body, { transport: 'http', experimentHeader: undefined }).accepted).toBe(1);
  });
});
