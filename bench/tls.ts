// What TLS costs the OTLP receivers: scorecar as its own process (bin/scorecar.js) with no
// scorers (receive + forward to an OTLP/HTTP sink, nothing assembled, as wire.noScorers), fed
// the realistic payload at full speed over 8 requests in flight, once in plaintext and once over
// TLS (ECDSA P-256 certificate made for the run, TLS 1.3, connections kept open as senders keep
// them), for OTLP/HTTP protobuf and for OTLP/gRPC. Spans per scorecar CPU-second (all of its
// threads) is the figure; wall spans/s is printed beside it.
//
// The gRPC load generator is a bare node:http2 client sending pre-framed Export calls (4
// connections x 2 calls in flight), so the sender's own cost stays small and equal for both.
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { makePki, type Pki } from '../test/support/certs.ts';
import { readMetrics, startChild } from './child.ts';
import { bodyPool, procStat, startSink } from './wire.ts';

export interface TlsRunResult {
  spansPerCpuSec: number;
  spansPerSec: number;
  accepted: number;
  cpu: number;
  wall: number;
}

const GRPC_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

function postHttp(agent: http.Agent, url: string, body: Buffer): Promise<number> {
  const request = url.startsWith('https:') ? https.request : http.request;
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(-1));
    req.end(body);
  });
}

function callGrpc(session: http2.ClientHttp2Session, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = session.request({ ':method': 'POST', ':path': GRPC_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    let status = -1;
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
    });
    req.on('trailers', (h) => {
      status = Number(h['grpc-status']);
    });
    req.on('data', () => {});
    req.once('close', () => resolve(status));
    req.once('error', () => resolve(-1));
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(body.length, 1);
    req.write(prefix);
    req.end(body);
  });
}

export async function receiverThroughput(transport: 'http' | 'grpc', tls: boolean, seconds: number): Promise<TlsRunResult> {
  const concurrency = 8;
  let pki: Pki | undefined;
  const env: Record<string, string> = {};
  if (tls) {
    pki = makePki('bench');
    const s = pki.server('bench-server');
    const key = transport === 'http' ? 'HTTP' : 'GRPC';
    env[`SCORECAR_RECEIVERS__OTLP__${key}__TLS__CERTFILE`] = s.certFile;
    env[`SCORECAR_RECEIVERS__OTLP__${key}__TLS__KEYFILE`] = s.keyFile;
  }
  const sink = await startSink();
  const sc = await startChild(
    `exporters: {otlp: {endpoint: "${sink.url}", queue: {maxBytes: 268435456}}}\nassembler: {maxBytes: 2147483648}\nlimits: {memoryBytes: 4294967296}\nlogging: {level: warn}\n`,
    env,
  );
  const grpcPort = Number(/scorecar started grpc=:(\d+)/.exec(sc.output())![1]);
  const pool = bodyPool(4 * concurrency, 64);
  const ca = pki?.ca.cert;
  let send: () => Promise<number>;
  let closeClients: () => void;
  if (transport === 'http') {
    const base = tls ? sc.httpUrl.replace('http:', 'https:') : sc.httpUrl;
    const agent = tls
      ? new https.Agent({ keepAlive: true, maxSockets: concurrency, ca })
      : new http.Agent({ keepAlive: true, maxSockets: concurrency });
    send = () => postHttp(agent, `${base}/v1/traces`, pool.next().body);
    closeClients = () => agent.destroy();
  } else {
    const sessions = Array.from({ length: 4 }, () =>
      http2.connect(`${tls ? 'https' : 'http'}://127.0.0.1:${grpcPort}`, tls ? { ca } : {}),
    );
    let i = 0;
    send = () => callGrpc(sessions[i++ % sessions.length]!, pool.next().body);
    closeClients = () => {
      for (const s of sessions) s.close();
    };
  }
  const loop = async (until: number): Promise<void> => {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < until) {
          const s = await send();
          if (s !== 200 && s !== 0) await new Promise((r) => setTimeout(r, 50));
        }
      }),
    );
  };
  await loop(performance.now() + 2_500); // warm-up: JIT, connections, handshakes
  const m0 = await readMetrics(sc.adminUrl);
  const s0 = procStat(sc.proc.pid!);
  const t0 = performance.now();
  await loop(t0 + seconds * 1000);
  const wall = (performance.now() - t0) / 1000;
  const s1 = procStat(sc.proc.pid!);
  const m1 = await readMetrics(sc.adminUrl);
  closeClients();
  await sc.terminate();
  await sink.close();
  pki?.remove();
  const accepted = m1.sum('scorecar_receiver_accepted_items_total', { signal: 'traces' }) - m0.sum('scorecar_receiver_accepted_items_total', { signal: 'traces' });
  const cpu = s1.user + s1.system - s0.user - s0.system;
  if (accepted === 0) throw new Error(`no span accepted over ${transport}${tls ? ' + TLS' : ''}:\n${sc.output()}`);
  return { spansPerCpuSec: accepted / cpu, spansPerSec: accepted / wall, accepted, cpu, wall };
}
