// In-process measurement of the per-request hot path on one core, without sockets: scan +
// forward enqueue + assemble + completion, on the realistic GenAI payload of payload.ts. The
// assembler runs on the real clock with its default 2 s settle window, so the number of buffered
// traces matches what the measured rate implies. Reports main-thread spans/s and spans per
// CPU-second of the whole process (GC helper threads included).
import { Assembler } from '../src/assembly/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { fanout } from '../src/component/index.ts';
import { OtlpForwarder, type SendOutcome, type Transport } from '../src/exporters/index.ts';
import { OtlpIngest } from '../src/receivers/index.ts';
import { MetricsRegistry, silentLogger } from '../src/util/index.ts';
import { type OtlpBatch, SPAN_STRIDE, scanTraceRequest } from '../src/wire/index.ts';
import { makeRequest } from './payload.ts';

class NullTransport implements Transport {
  readonly kind = 'http' as const;
  async send(): Promise<SendOutcome> {
    return { ok: true, rejected: 0, message: '' };
  }
  close(): void {}
}

export interface HotPathResult {
  spansPerSec: number;
  /** Spans per CPU-second of the process (all threads). */
  spansPerCpuSec: number;
  wireBytesPerSpan: number;
  tracesCompleted: number;
  scanOnlySpansPerSec: number;
}

export function hotPath(seconds: number): HotPathResult {
  const cfg = loadConfig({ env: {}, text: 'exporters: {otlp: {endpoint: "http://127.0.0.1:1", queue: {maxBytes: 100000000000}}}' });
  const metrics = new MetricsRegistry();
  const fwd = new OtlpForwarder(cfg.exporters.otlp, metrics, silentLogger, new NullTransport());
  let completed = 0;
  const asm = new Assembler(
    { ...cfg.assembler, maxBytes: 8 * 1024 ** 3 },
    {
      consume: () => {
        completed++;
      },
    },
  );
  const ingest = new OtlpIngest({ next: fanout<OtlpBatch>(fwd, asm), precheck: [fwd], metrics, log: silentLogger });
  const reqs = Array.from({ length: 32 }, (_, i) => makeRequest({ tracesPerRequest: 64 }, i));
  // Trace id offsets of every span, so each use gives the spans fresh trace ids in place.
  const idOffsets = reqs.map((r) => {
    const offs: number[] = [];
    for (const rs of scanTraceRequest(r.body).resources)
      for (const ss of rs.scopes) for (let j = 0; j < ss.spans.length; j += SPAN_STRIDE) offs.push(ss.spans[j + 2]!);
    return offs;
  });
  // The forwarder's queue is drained out of band here (no sockets): empty it between requests.
  const queue = fwd as unknown as { queue: unknown[]; head: number; bytesQueued: number; itemsQueued: number };
  let seq = 0;
  const run = (ms: number, scanOnly: boolean): { spans: number; bytes: number; wall: number; cpu: number } => {
    let spans = 0;
    let bytes = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      for (let k = 0; k < 20; k++) {
        const idx = seq % reqs.length;
        const r = reqs[idx]!;
        seq++;
        for (const off of idOffsets[idx]!) r.body.writeUInt32LE(seq, off);
        // A fresh buffer per request, as a receiver produces: buffered spans point into it.
        const body = Buffer.allocUnsafeSlow(r.body.length);
        r.body.copy(body);
        if (scanOnly) scanTraceRequest(body);
        else ingest.traces(body, { transport: 'http', experimentHeader: undefined });
        spans += r.spans;
        bytes += r.body.length;
        queue.queue.length = 0;
        queue.head = 0;
        queue.bytesQueued = 0;
        queue.itemsQueued = 0;
      }
      if (!scanOnly) asm.sweep();
    }
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    return { spans, bytes, wall, cpu: (c.user + c.system) / 1e6 };
  };
  const scan = run(500, true);
  run(2500, false); // warm-up: JIT, and the buffer filled to its steady size (settle window)
  const r = run(seconds * 1000, false);
  asm.flushAll();
  return {
    spansPerSec: r.spans / r.wall,
    spansPerCpuSec: r.spans / r.cpu,
    wireBytesPerSpan: r.bytes / r.spans,
    tracesCompleted: completed,
    scanOnlySpansPerSec: scan.spans / scan.wall,
  };
}

if (import.meta.main) {
  const r = hotPath(Number(process.argv[2] ?? 5));
  console.log(
    `hot path (scan + enqueue + assemble + complete), in-process: ${Math.round(r.spansPerSec).toLocaleString()} spans/s, ${Math.round(r.spansPerCpuSec).toLocaleString()} spans per CPU-second; ${r.wireBytesPerSpan.toFixed(0)} wire bytes/span (scan alone ${Math.round(r.scanOnlySpansPerSec).toLocaleString()} spans/s, incl. the body copy)`,
  );
}
