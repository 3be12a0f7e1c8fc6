import { randomBytes } from 'node:crypto';
import { consumer } from '../support/sink.ts';
import { describe, expect, it } from 'vitest';
import { Assembler, type AssemblerOptions, type CompleteTrace } from '../../src/assembly/index.ts';
import { decodeSpan, jsonToProtobuf, scanTraceRequest } from '../../src/wire/index.ts';

const hex = (n: number) => randomBytes(n).toString('hex');

interface S {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name?: string;
}

function req(spans: S[], service = 'svc'): Buffer {
  return jsonToProtobuf(
    'traces',
    JSON.stringify({
      resourceSpans: [
        { resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 'lib' }, spans }] },
      ],
    }),
  );
}

function setup(opts: Partial<AssemblerOptions> = {}) {
  let now = 1_000_000;
  const done: CompleteTrace[] = [];
  const asm = new Assembler(
    { settleMs: 2000, idleTimeoutMs: 30_000, maxAgeMs: 300_000, maxBytes: 1 << 30, decisionCacheSize: 1000, tickMs: 100, now: () => now, ...opts },
    consumer<CompleteTrace>((t) => done.push(t)),
  );
  return {
    asm,
    done,
    ingest: (b: Buffer, header?: string) => asm.ingest(b, scanTraceRequest(b), header),
    advance: (ms: number) => {
      now += ms;
      asm.sweep(now);
    },
  };
}

function trace(children = 3) {
  const traceId = hex(16);
  const root: S = { traceId, spanId: hex(8), name: 'root' };
  const kids: S[] = Array.from({ length: children }, (_, i) => ({ traceId, spanId: hex(8), parentSpanId: root.spanId, name: `c${i}` }));
  return { traceId, root, kids };
}

describe('assembler', () => {
  it('completes a trace once, settle window after its root arrives, with every span', () => {
    const { done, ingest, advance } = setup();
    const t = trace(3);
    ingest(req(t.kids.slice(0, 2)));
    advance(10_000); // no root yet: nothing completes before the idle timeout
    expect(done).toHaveLength(0);
    ingest(req([t.root]));
    advance(1500);
    expect(done).toHaveLength(0);
    ingest(req([t.kids[2]!])); // straggler inside the settle window
    advance(600);
    expect(done).toHaveLength(1);
    const c = done[0]!;
    expect(c.traceId).toBe(t.traceId);
    expect(c.reason).toBe('root');
    expect(c.hasRoot).toBe(true);
    const names = c.spans.map((s, i) => decodeSpan(s, c.resources[i]!, c.scopes[i]!).name).sort();
    expect(names).toEqual(['c0', 'c1', 'c2', 'root']);
    advance(60_000);
    expect(done).toHaveLength(1);
  });

  it('completes a rootless trace after the idle timeout, measured from its last span', () => {
    const { done, ingest, advance } = setup();
    const t = trace(2);
    ingest(req([t.kids[0]!]));
    advance(20_000);
    ingest(req([t.kids[1]!]));
    advance(20_000);
    expect(done).toHaveLength(0);
    advance(10_100);
    expect(done.map((d) => [d.reason, d.spans.length])).toEqual([['idle', 2]]);
  });

  it('completes at the maximum age even while spans keep coming', () => {
    const { done, ingest, advance } = setup({ maxAgeMs: 60_000 });
    const t = trace(0);
    for (let i = 0; i < 7; i++) {
      ingest(req([{ traceId: t.traceId, spanId: hex(8), parentSpanId: hex(8) }]));
      advance(10_000);
    }
    expect(done.map((d) => d.reason)).toEqual(['max_age']);
  });

  it('ignores duplicate span ids, within a request and across requests, also past the linear limit', () => {
    const { done, asm, ingest, advance } = setup();
    const t = trace(60);
    ingest(req([...t.kids.slice(0, 10), ...t.kids.slice(0, 10)]));
    ingest(req([...t.kids, t.root, t.root]));
    ingest(req(t.kids.slice(30)));
    advance(2100);
    expect(done[0]!.spans).toHaveLength(61);
    expect(asm.counters.spansDuplicate).toBe(10 + 10 + 1 + 30);
    expect(asm.counters.spansBuffered).toBe(61);
  });

  it('recognises late spans of a finished trace instead of starting a new one', () => {
    const { done, asm, ingest, advance } = setup();
    const t = trace(1);
    ingest(req([t.root]));
    advance(2100);
    ingest(req([t.kids[0]!]));
    advance(60_000);
    expect(done).toHaveLength(1);
    expect(asm.counters.spansLate).toBe(1);
    expect(asm.traceCount).toBe(0);
  });

  it('evicts the oldest traces when over its byte budget, and counts them', () => {
    const { done, asm, ingest, advance } = setup({ maxBytes: 10_000 });
    const traces = Array.from({ length: 20 }, () => trace(3));
    for (const t of traces) ingest(req([t.root, ...t.kids]));
    expect(asm.bytes).toBeLessThanOrEqual(10_000);
    expect(asm.counters.tracesEvicted).toBeGreaterThan(0);
    expect(asm.counters.spansEvicted).toBe(asm.counters.tracesEvicted * 4);
    advance(2100);
    // The newest traces survive; the evicted ones are the first ones in.
    const survivors = new Set(done.map((d) => d.traceId));
    expect(survivors.has(traces[19]!.traceId)).toBe(true);
    expect(survivors.has(traces[0]!.traceId)).toBe(false);
    expect(done.length + asm.counters.tracesEvicted).toBe(20);
    // A late span of an evicted trace is not a new trace.
    ingest(req([{ ...traces[0]!.kids[0]!, spanId: hex(8) }]));
    expect(asm.counters.spansLate).toBe(1);
  });

  it('frees its byte accounting when traces complete', () => {
    const { asm, ingest, advance } = setup();
    for (let i = 0; i < 5; i++) {
      const t = trace(4);
      ingest(req([t.root, ...t.kids]));
    }
    expect(asm.bytes).toBeGreaterThan(0);
    advance(2100);
    expect(asm.bytes).toBe(0);
    expect(asm.traceCount).toBe(0);
  });

  it('flushAll completes everything with reason shutdown', () => {
    const { done, asm, ingest } = setup();
    ingest(req(trace(2).kids));
    ingest(req([trace(0).root]));
    expect(asm.flushAll()).toBe(2);
    expect(done.map((d) => d.reason)).toEqual(['shutdown', 'shutdown']);
  });

  it('keeps each span with its own resource and the experiment header', () => {
    const { done, ingest, advance } = setup();
    const t = trace(1);
    ingest(req([t.kids[0]!], 'svc-a'));
    ingest(req([t.root], 'svc-b'), 'exp-42');
    advance(2100);
    const c = done[0]!;
    const spans = c.spans.map((s, i) => decodeSpan(s, c.resources[i]!, c.scopes[i]!));
    expect(spans.map((s) => [s.name, s.resource['service.name'], s.experimentHeader])).toEqual([
      ['c0', 'svc-a', undefined],
      ['root', 'svc-b', 'exp-42'],
    ]);
  });

  it('survives a consumer that throws', () => {
    let now = 0;
    const asm = new Assembler(
      { settleMs: 10, idleTimeoutMs: 100, maxAgeMs: 1000, maxBytes: 1 << 30, decisionCacheSize: 10, now: () => now },
      consumer<CompleteTrace>(() => {
        throw new Error('consumer bug');
      }),
    );
    const b = req([trace(0).root, trace(0).root]);
    asm.ingest(b, scanTraceRequest(b));
    now += 200;
    asm.sweep(now);
    expect(asm.counters.consumerErrors).toBe(2);
    expect(asm.traceCount).toBe(0);
  });
});

describe('assembler memory ownership', () => {
  it('charges a request buffer once while traces use it, and copies long-lived traces out of it', () => {
    let now = 0;
    const done: CompleteTrace[] = [];
    const asm = new Assembler(
      { settleMs: 1000, idleTimeoutMs: 60_000, maxAgeMs: 600_000, maxBytes: 1 << 30, decisionCacheSize: 100, compactAfterMs: 5000, now: () => now },
      consumer<CompleteTrace>((t) => done.push(t)),
    );
    const quick = trace(2);
    const slow = trace(2);
    // One request carries a trace that finishes quickly and the start of a long-running one.
    const b = req([quick.root, ...quick.kids, ...slow.kids]);
    asm.ingest(b, scanTraceRequest(b));
    const shared = asm.bytes;
    expect(shared).toBeGreaterThan(b.length);
    now += 1100;
    asm.sweep(now);
    expect(done.map((d) => d.traceId)).toEqual([quick.traceId]);
    // The request is still held by the slow trace.
    expect(asm.bytes).toBeGreaterThan(b.length);
    now += 5000;
    asm.sweep(now);
    expect(asm.counters.tracesCompacted).toBe(1);
    // Compacted: only the slow trace's own spans are charged now, not the whole request.
    expect(asm.bytes).toBeLessThan(shared);
    b.fill(0); // the request buffer may be reused or freed: the compacted trace no longer needs it
    const late = req([slow.root]);
    asm.ingest(late, scanTraceRequest(late));
    now += 1100;
    asm.sweep(now);
    const c = done[1]!;
    expect(c.traceId).toBe(slow.traceId);
    const names = c.spans.map((s, i) => decodeSpan(s, c.resources[i]!, c.scopes[i]!).name).sort();
    expect(names).toEqual(['c0', 'c1', 'root']);
    expect(asm.bytes).toBe(0);
  });
});
