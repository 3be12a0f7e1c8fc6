// In-process measurement of the per-request hot path on one core: scan + forward enqueue +
// assemble (+ completion), no sockets. Prints spans/s and memory per buffered span.
import { Assembler } from '../src/assembly/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { OtlpForwarder, OtlpIngest, SPAN_STRIDE, scanTraceRequest, type SendOutcome, type Transport } from '../src/otlp/index.ts';
import { silentLogger } from '../src/util/log.ts';
import { MetricsRegistry } from '../src/util/metrics.ts';
import { makeRequest } from './payload.ts';

class NullTransport implements Transport {
  readonly kind = 'http' as const;
  async send(): Promise<SendOutcome> {
    return { ok: true, rejected: 0, message: '' };
  }
  close(): void {}
}

export function hotPath(seconds: number): { spansPerSec: number; bytesPerSpan: number } {
  const cfg = loadConfig({ env: {}, text: 'exporters: {otlp: {endpoint: "http://127.0.0.1:1", queue: {maxBytes: 100000000000}}}' });
  const metrics = new MetricsRegistry();
  const fwd = new OtlpForwarder(cfg.exporters.otlp, metrics, silentLogger, new NullTransport());
  let completed = 0;
  let now = 0;
  const asm = new Assembler({ ...cfg.assembler, now: () => now }, () => {
    completed++;
  });
  const ingest = new OtlpIngest({ forwarder: fwd, sink: (b, s, h) => asm.ingest(b, s, h), metrics, log: silentLogger, refuseWhenQueueFull: false });
  const reqs = Array.from({ length: 64 }, (_, i) => makeRequest({ tracesPerRequest: 64 }, i));
  // Trace id offsets of every span, so each pass can give the spans fresh trace ids in place.
  const idOffsets = reqs.map((r) => {
    const offs: number[] = [];
    for (const rs of scanTraceRequest(r.body).resources)
      for (const ss of rs.scopes) for (let j = 0; j < ss.spans.length; j += SPAN_STRIDE) offs.push(ss.spans[j + 2]!);
    return offs;
  });
  let pass = 0;
  let spans = 0;
  let bytes = 0;
  const t0 = performance.now();
  let i = 0;
  while (performance.now() - t0 < seconds * 1000) {
    for (let k = 0; k < 50; k++) {
      const idx = i++ % reqs.length;
      const r = reqs[idx]!;
      if (idx === 0) pass++;
      for (const off of idOffsets[idx]!) r.body.writeUInt32LE(pass, off);
      // A fresh buffer per request, as a receiver produces: buffered spans point into it.
      ingest.traces(Buffer.from(r.body), { transport: 'http', experimentHeader: undefined });
      spans += r.spans;
      bytes += r.body.length;
      now += 5; // simulated clock: traces complete as time moves
      asm.sweep(now);
      // The forwarder's queue is drained out of band; empty it here so it does not grow.
      (fwd as unknown as { queue: unknown[]; head: number; bytesQueued: number; itemsQueued: number }).queue.length = 0;
      (fwd as unknown as { head: number }).head = 0;
      (fwd as unknown as { bytesQueued: number }).bytesQueued = 0;
      (fwd as unknown as { itemsQueued: number }).itemsQueued = 0;
    }
  }
  const elapsed = (performance.now() - t0) / 1000;
  void completed;
  return { spansPerSec: spans / elapsed, bytesPerSpan: bytes / spans };
}

if (import.meta.main) {
  const r = hotPath(Number(process.argv[2] ?? 5));
  console.log(`hot path (scan + enqueue + assemble + complete), in-process: ${Math.round(r.spansPerSec).toLocaleString()} spans/s; ${r.bytesPerSpan.toFixed(0)} wire bytes/span`);
}
