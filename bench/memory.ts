// Memory per buffered span: fills the assembler with traces that never complete and compares
// the process's heap + ArrayBuffer growth with the spans' wire size. Run with --expose-gc.
import { Assembler } from '../src/assembly/index.ts';
import { SPAN_STRIDE, scanTraceRequest } from '../src/otlp/index.ts';
import { makeRequest } from './payload.ts';

const gc = (globalThis as { gc?: () => void }).gc;

export function memoryPerSpan(totalSpans = 200_000): { bytesPerSpan: number; wirePerSpan: number; ratio: number; chargedPerSpan: number } {
  if (!gc) throw new Error('run with --expose-gc');
  const reqs = Array.from({ length: 16 }, (_, i) => makeRequest({ tracesPerRequest: 64 }, i));
  const scans = reqs.map((r) => scanTraceRequest(r.body));
  const idOffsets = scans.map((sc) => {
    const offs: number[] = [];
    for (const rs of sc.resources) for (const ss of rs.scopes) for (let j = 0; j < ss.spans.length; j += SPAN_STRIDE) offs.push(ss.spans[j + 2]!);
    return offs;
  });
  const asm = new Assembler(
    { settleMs: 1e9, idleTimeoutMs: 1e9, maxAgeMs: 1e9, maxBytes: Number.MAX_SAFE_INTEGER, decisionCacheSize: 10 },
    () => {},
  );
  gc();
  gc();
  const before = process.memoryUsage();
  let spans = 0;
  let wire = 0;
  for (let pass = 1; spans < totalSpans; pass++) {
    for (let i = 0; i < reqs.length && spans < totalSpans; i++) {
      const r = reqs[i]!;
      for (const off of idOffsets[i]!) r.body.writeUInt32LE(pass, off);
      asm.ingest(Buffer.from(r.body), scans[i]!); // a fresh buffer per request, as receivers produce
      spans += r.spans;
    }
  }
  wire = asm.bytes; // placeholder, replaced below
  gc();
  gc();
  const after = process.memoryUsage();
  const grown = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
  // Wire size of the buffered spans themselves (what the assembler holds), not the envelopes.
  let spanWire = 0;
  asm.flushAll = asm.flushAll.bind(asm);
  const counted = { n: 0 };
  const probe = new Assembler({ settleMs: 1, idleTimeoutMs: 1, maxAgeMs: 1, maxBytes: 1e12, decisionCacheSize: 1 }, (t) => {
    spanWire += t.wireBytes;
    counted.n += t.spans.length;
  });
  for (let i = 0; i < reqs.length; i++) probe.ingest(reqs[i]!.body, scans[i]!);
  probe.flushAll();
  const wirePerSpan = spanWire / counted.n;
  void wire;
  return { bytesPerSpan: grown / spans, wirePerSpan, ratio: grown / spans / wirePerSpan, chargedPerSpan: asm.bytes / spans };
}

if (import.meta.main) {
  const r = memoryPerSpan(Number(process.argv[2] ?? 200_000));
  console.log(
    `buffered memory: ${r.bytesPerSpan.toFixed(0)} B/span for ${r.wirePerSpan.toFixed(0)} wire B/span = ${r.ratio.toFixed(2)}x (assembler charges ${r.chargedPerSpan.toFixed(0)} B/span)`,
  );
}
