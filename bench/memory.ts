// Memory per buffered span: feeds the ingest path (as the HTTP receiver does: the body in 64 KiB
// pieces) into an assembler whose traces never complete, and compares the process's growth in
// V8 heap + ArrayBuffer memory, after full GCs, with the spans' wire size. Then completes every
// trace, drops them, and checks that the memory comes back (nothing retained after completion).
// Run with --expose-gc.
import { Assembler } from '../src/assembly/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { fanout } from '../src/component/index.ts';
import { OtlpForwarder } from '../src/exporters/index.ts';
import { OtlpIngest } from '../src/receivers/index.ts';
import { MetricsRegistry, silentLogger } from '../src/util/index.ts';
import { type OtlpBatch, SPAN_STRIDE, scanTraceRequest } from '../src/wire/index.ts';
import { makeRequest } from './payload.ts';

const gc = (globalThis as { gc?: () => void }).gc;
/** Keeps the bench's own inputs alive through every measurement, so only the assembler moves. */
const retained: unknown[] = [];

export interface MemoryResult {
  /** Heap + ArrayBuffer growth per buffered span. */
  bytesPerSpan: number;
  heapPerSpan: number;
  arrayBuffersPerSpan: number;
  /** Encoded size of a buffered span (what the assembler keeps of it). */
  wirePerSpan: number;
  ratio: number;
  /** Bytes the assembler charges to its budget per span. */
  chargedPerSpan: number;
  /** Memory still held after every trace completed and was dropped, per span once buffered. */
  retainedPerSpan: number;
  spans: number;
}

/** Heap and ArrayBuffer bytes in use after full GCs, once the (concurrent) sweepers are done. */
async function used(): Promise<{ heap: number; ab: number }> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, ab: m.arrayBuffers };
}

export async function memoryPerSpan(totalSpans = 200_000): Promise<MemoryResult> {
  if (!gc) throw new Error('run with --expose-gc');
  const reqs = Array.from({ length: 16 }, (_, i) => makeRequest({ tracesPerRequest: 64 }, i));
  const idOffsets = reqs.map((r) => {
    const offs: number[] = [];
    for (const rs of scanTraceRequest(r.body).resources)
      for (const ss of rs.scopes) for (let j = 0; j < ss.spans.length; j += SPAN_STRIDE) offs.push(ss.spans[j + 2]!);
    return offs;
  });
  retained.push(reqs, idOffsets);
  const cfg = loadConfig({ env: {}, text: '' });
  const metrics = new MetricsRegistry();
  let spanWire = 0;
  let completedSpans = 0;
  const asm = new Assembler(
    { settleMs: 1e9, idleTimeoutMs: 1e9, maxAgeMs: 1e9, maxBytes: Number.MAX_SAFE_INTEGER, decisionCacheSize: cfg.assembler.decisionCacheSize },
    {
      consume: (t) => {
        spanWire += t.wireBytes;
        completedSpans += t.spans.length;
      },
    },
  );
  const fwd = new OtlpForwarder(cfg.exporters.otlp, metrics, silentLogger);
  const ingest = new OtlpIngest({ next: fanout<OtlpBatch>(fwd, asm), metrics, log: silentLogger });
  const before = await used();
  let spans = 0;
  for (let pass = 1; spans < totalSpans; pass++) {
    for (let i = 0; i < reqs.length && spans < totalSpans; i++) {
      const r = reqs[i]!;
      for (const off of idOffsets[i]!) r.body.writeUInt32LE(pass, off);
      // Fresh 64 KiB pieces per request, as the HTTP parser hands them over.
      const pieces: Buffer[] = [];
      for (let at = 0; at < r.body.length; at += 65536) {
        const end = Math.min(at + 65536, r.body.length);
        const p = Buffer.allocUnsafeSlow(end - at);
        r.body.copy(p, 0, at, end);
        pieces.push(p);
      }
      ingest.traces(pieces, { transport: 'http', experimentHeader: undefined });
      spans += r.spans;
    }
  }
  const filled = await used();
  const charged = asm.bytes;
  asm.flushAll(); // the consumer drops every trace
  const after = await used();
  const heap = filled.heap - before.heap;
  const ab = filled.ab - before.ab;
  const wirePerSpan = spanWire / completedSpans;
  return {
    bytesPerSpan: (heap + ab) / spans,
    heapPerSpan: heap / spans,
    arrayBuffersPerSpan: ab / spans,
    wirePerSpan,
    ratio: (heap + ab) / spans / wirePerSpan,
    chargedPerSpan: charged / spans,
    retainedPerSpan: (after.heap - before.heap + after.ab - before.ab) / spans,
    spans,
  };
}

if (import.meta.main) {
  const r = await memoryPerSpan(Number(process.argv[2] ?? 200_000));
  console.log(JSON.stringify(r));
  console.log(
    `buffered memory: ${r.bytesPerSpan.toFixed(0)} B/span (heap ${r.heapPerSpan.toFixed(0)} + buffers ${r.arrayBuffersPerSpan.toFixed(0)}) for ${r.wirePerSpan.toFixed(0)} wire B/span = ${r.ratio.toFixed(2)}x; assembler charges ${r.chargedPerSpan.toFixed(0)} B/span; after completion ${r.retainedPerSpan.toFixed(0)} B/span still held (span and trace tables keep their capacity)`,
  );
}
