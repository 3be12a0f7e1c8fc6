// What the assembler holds on to: nothing of a finished trace, and finished trace ids only as
// long as the decision cache's first-in-first-out bound allows.
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { consumer } from '../support/sink.ts';
import { describe, expect, it } from 'vitest';
import { Assembler, type CompleteTrace } from '../../src/assembly/index.ts';
import { jsonToProtobuf, scanLogsRequest, scanTraceRequest } from '../../src/wire/index.ts';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function logsReq(traceId: string): Buffer {
  const logRecords = [{ traceId, flags: 1, body: { stringValue: 'l'.repeat(2000) }, eventName: 'gen_ai.user.message' }];
  return jsonToProtobuf('logs', JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords }] }] }));
}

function traceReq(traceId: string, spans = 2): Buffer {
  const root = randomBytes(8).toString('hex');
  const list = Array.from({ length: spans }, (_, i) => ({
    traceId,
    spanId: i === 0 ? root : randomBytes(8).toString('hex'),
    ...(i ? { parentSpanId: root } : {}),
    name: `s${i}`,
    attributes: [{ key: 'payload', value: { stringValue: 'p'.repeat(2000) } }],
  }));
  return jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: list }] }] }));
}

describe('assembler ownership', () => {
  it('keeps no reference to a request buffer once its traces completed and were consumed', async () => {
    let now = 0;
    let seen = 0;
    const asm = new Assembler({ settleMs: 10, idleTimeoutMs: 100, maxAgeMs: 1000, maxBytes: 1 << 30, decisionCacheSize: 100, now: () => now }, consumer<CompleteTrace>((t) => {
      seen += t.spans.length;
    }));
    const refs: WeakRef<Buffer>[] = [];
    (() => {
      for (let i = 0; i < 20; i++) {
        const b = traceReq(randomBytes(16).toString('hex'), 3);
        refs.push(new WeakRef(b));
        asm.ingest(b, scanTraceRequest(b));
      }
    })();
    now += 250; // past the settle window and the wheel's 100 ms resolution
    asm.sweep(now);
    expect(seen).toBe(60);
    expect(asm.bytes).toBe(0);
    for (let i = 0; i < 5 && refs.some((r) => r.deref()); i++) {
      await new Promise((r) => setTimeout(r, 10));
      gc();
    }
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
  });

  it('keeps no reference to a logs request buffer once its traces completed, were evicted or dropped', async () => {
    let now = 0;
    let seen = 0;
    const asm = new Assembler({ settleMs: 10, idleTimeoutMs: 100, maxAgeMs: 1000, maxBytes: 60_000, decisionCacheSize: 100, now: () => now }, consumer<CompleteTrace>((t) => {
      seen += t.logs?.length ?? 0;
    }));
    const refs: WeakRef<Buffer>[] = [];
    (() => {
      for (let i = 0; i < 20; i++) {
        const id = randomBytes(16).toString('hex');
        const l = logsReq(id);
        refs.push(new WeakRef(l));
        asm.ingestLogs(l, scanLogsRequest(l));
        // Every other trace never gets a span: dropped at its idle timeout.
        if (i % 2 === 0) {
          const b = traceReq(id, 1);
          asm.ingest(b, scanTraceRequest(b));
        }
      }
    })();
    // The byte budget only holds some of them: the oldest were evicted on the way.
    expect(asm.counters.logsEvicted).toBeGreaterThan(0);
    now += 250;
    asm.sweep(now);
    expect(seen + asm.counters.logsEvicted + asm.counters.logsWithoutSpans).toBe(20);
    expect(seen).toBeGreaterThan(0);
    expect(asm.bytes).toBe(0);
    for (let i = 0; i < 5 && refs.some((r) => r.deref()); i++) {
      await new Promise((r) => setTimeout(r, 10));
      gc();
    }
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
  });

  it('(control) the same check sees buffers that are still referenced', async () => {
    let now = 0;
    const kept: CompleteTrace[] = [];
    const asm = new Assembler({ settleMs: 10, idleTimeoutMs: 100, maxAgeMs: 1000, maxBytes: 1 << 30, decisionCacheSize: 100, now: () => now }, consumer<CompleteTrace>((t) => {
      void t.spans;
      kept.push(t);
    }));
    const refs: WeakRef<Buffer>[] = [];
    (() => {
      const b = traceReq(randomBytes(16).toString('hex'), 3);
      refs.push(new WeakRef(b));
      asm.ingest(b, scanTraceRequest(b));
    })();
    now += 250;
    asm.sweep(now);
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 10));
      gc();
    }
    expect(kept).toHaveLength(1);
    expect(refs[0]!.deref()).toBeDefined();
  });

  it('forgets the oldest finished trace ids first when the decision cache is full', () => {
    let now = 0;
    const done: string[] = [];
    const asm = new Assembler({ settleMs: 10, idleTimeoutMs: 100, maxAgeMs: 1000, maxBytes: 1 << 30, decisionCacheSize: 10, now: () => now }, consumer<CompleteTrace>((t) => done.push(t.traceId)));
    const ids = Array.from({ length: 15 }, () => randomBytes(16).toString('hex'));
    for (const id of ids) {
      const b = traceReq(id);
      asm.ingest(b, scanTraceRequest(b));
      now += 200;
      asm.sweep(now);
    }
    expect(done).toEqual(ids);
    // The newest ten are remembered: their late spans are recognised.
    for (const id of ids.slice(5)) {
      const late = traceReq(id, 1);
      asm.ingest(late, scanTraceRequest(late));
    }
    expect(asm.counters.spansLate).toBe(10);
    expect(asm.traceCount).toBe(0);
    // The oldest five were forgotten: a span of one of them starts a new trace.
    const old = traceReq(ids[0]!, 1);
    asm.ingest(old, scanTraceRequest(old));
    expect(asm.traceCount).toBe(1);
    expect(asm.counters.spansLate).toBe(10);
  });
});
