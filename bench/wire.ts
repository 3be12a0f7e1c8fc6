// Over-the-wire benchmark: scorecar runs as its own process (`scorecar start`), this process is
// both the load generator (OTLP/HTTP protobuf) and the downstream sink. Reports spans/s per
// CPU-second of the scorecar process (its "one core" figure), wall throughput, and the latency
// scorecar adds between a request leaving the sender and its bytes reaching downstream.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { SPAN_STRIDE, scanTraceRequest } from '../src/otlp/index.ts';
import { type ChildScorecar, scrape, startChild } from '../test/support/child.ts';
import { makeRequest } from './payload.ts';

const CLK_TCK = 100;

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(parts[11]) + Number(parts[12])) / CLK_TCK; // utime + stime
}

interface Sink {
  url: string;
  bytes: number;
  arrivals: Map<string, number>;
  track: boolean;
  close(): Promise<void>;
}

async function startSink(): Promise<Sink> {
  const sink: Sink = { url: '', bytes: 0, arrivals: new Map(), track: false, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      sink.bytes += c.length;
      if (sink.track) chunks.push(c);
    });
    req.on('end', () => {
      if (sink.track) {
        const now = performance.now();
        const b = Buffer.concat(chunks);
        for (const rs of scanTraceRequest(b).resources)
          for (const ss of rs.scopes) {
            const off = ss.spans[2];
            if (off !== undefined && off >= 0) sink.arrivals.set(b.toString('hex', off, off + 16), now);
            void SPAN_STRIDE;
          }
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  sink.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sink.close = () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); });
  return sink;
}

function post(agent: http.Agent, url: string, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(-1));
    req.end(body);
  });
}

/** Bodies whose trace ids are rewritten per use, so every request carries new traces. */
function bodyPool(n: number, tracesPerRequest: number) {
  const reqs = Array.from({ length: n }, (_, i) => makeRequest({ tracesPerRequest }, i));
  const offsets = reqs.map((r) => {
    const o: number[] = [];
    for (const rs of scanTraceRequest(r.body).resources) for (const ss of rs.scopes) for (let j = 0; j < ss.spans.length; j += SPAN_STRIDE) o.push(ss.spans[j + 2]!);
    return o;
  });
  let seq = 0;
  return {
    spansPer: reqs[0]!.spans,
    next(): { body: Buffer; firstTrace: string } {
      const i = seq % n;
      const r = reqs[i]!;
      seq++;
      for (const off of offsets[i]!) r.body.writeUInt32BE(seq, off);
      const first = offsets[i]![0]!;
      return { body: Buffer.from(r.body), firstTrace: r.body.toString('hex', first, first + 16) };
    },
  };
}

export async function throughput(seconds: number, concurrency = 8, opts: { downstream?: boolean } = {}): Promise<{ spansPerCpuSec: number; spansPerSec: number; cpu: number; accepted: number; forwarded: number }> {
  const sink = await startSink();
  const sc: ChildScorecar = await startChild(
    `exporters: {otlp: {endpoint: "${opts.downstream === false ? '' : sink.url}", queue: {maxBytes: 268435456}}}\nassembler: {maxBytes: 2147483648}\nlimits: {memoryBytes: 4294967296}\nlogging: {level: warn}`,
  );
  const pool = bodyPool(32, 64);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  // warm-up
  await Promise.all(Array.from({ length: concurrency }, async () => { for (let i = 0; i < 20; i++) await post(agent, `${sc.httpUrl}/v1/traces`, pool.next().body); }));
  const acc0 = await scrape(sc.adminUrl, 'scorecar_receiver_accepted_items_total');
  const cpu0 = cpuSeconds(sc.proc.pid!);
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const s = await post(agent, `${sc.httpUrl}/v1/traces`, pool.next().body);
        if (s !== 200) await new Promise((r) => setTimeout(r, 50));
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(sc.proc.pid!) - cpu0;
  const accepted = (await scrape(sc.adminUrl, 'scorecar_receiver_accepted_items_total')) - acc0;
  await new Promise((r) => setTimeout(r, 500));
  const forwarded = await scrape(sc.adminUrl, 'scorecar_exporter_sent_items_total');
  agent.destroy();
  await sc.terminate();
  await sink.close();
  return { spansPerCpuSec: accepted / cpu, spansPerSec: accepted / wall, cpu, accepted, forwarded };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** p50/p99 from send to downstream arrival, through scorecar and directly, at a steady rate. */
export async function latency(requestsPerSec = 100, seconds = 8, extraYaml = ''): Promise<{ direct: [number, number]; via: [number, number]; viaAll: number[] }> {
  const sink = await startSink();
  sink.track = true;
  const sc = await startChild(`exporters: {otlp: {endpoint: "${sink.url}"}}\nlogging: {level: warn}\n${extraYaml}`);
  const pool = bodyPool(16, 16);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const measure = async (url: string): Promise<number[]> => {
    sink.arrivals.clear();
    const sent = new Map<string, number>();
    const total = requestsPerSec * seconds;
    const pending: Promise<number>[] = [];
    const t0 = performance.now();
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / requestsPerSec;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const { body, firstTrace } = pool.next();
      sent.set(firstTrace, performance.now());
      pending.push(post(agent, url, body));
    }
    await Promise.all(pending);
    await new Promise((r) => setTimeout(r, 500));
    const lat: number[] = [];
    for (const [id, t] of sent) {
      const a = sink.arrivals.get(id);
      if (a !== undefined) lat.push(a - t);
    }
    return lat;
  };
  const direct = await measure(`${sink.url}/v1/traces`);
  const via = await measure(`${sc.httpUrl}/v1/traces`);
  agent.destroy();
  await sc.terminate();
  await sink.close();
  return { direct: [percentile(direct, 50), percentile(direct, 99)], via: [percentile(via, 50), percentile(via, 99)], viaAll: via };
}

if (import.meta.main) {
  const t = await throughput(Number(process.argv[2] ?? 10));
  console.log(`wire: ${Math.round(t.spansPerCpuSec).toLocaleString()} spans per scorecar CPU-second; ${Math.round(t.spansPerSec).toLocaleString()} spans/s wall (${t.accepted} spans, ${t.cpu.toFixed(1)} CPU s)`);
  const l = await latency();
  console.log(`latency send->downstream p50/p99: direct ${l.direct.map((x) => x.toFixed(2)).join('/')} ms, via scorecar ${l.via.map((x) => x.toFixed(2)).join('/')} ms`);
}
