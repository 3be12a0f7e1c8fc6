// `npm run bench:kafka`: what scoring via Kafka costs and gives, on a broker of its own
// (scripts/kafka-broker.sh), with a code scorer at 1.0 and a guidelines judge at 0.3 against the
// local model server, the sidecar and the workers as their own processes:
//   throughput   traces/s scored end to end (sent over OTLP/HTTP until every assessment is
//                downstream) with 1 and 2 workers, for each client library;
//   latency      per trace, from sending its spans to its code assessment arriving downstream,
//                at a steady 100 traces/s, inline and kafka mode: p50/p99 and what Kafka adds;
//   drain        both workers stopped for 60 s while traffic goes on (the jobs wait on the
//                topic), then started again: time until the backlog is scored.
// Figures move with the machine's load; each line prints the 1-minute load average.
//   npm run bench:kafka [-- --only throughput,latency,drain] [--traces 4000] [--outage 60] [--rate 100]
//                       [--client platformatic|kafkajs]   (the client of the latency and drain runs)
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { loadavg } from 'node:os';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startModelServer } from '../scripts/model-server.ts';
import { isSelected } from '../src/select/index.ts';
import { protobufToJson } from '../src/wire/index.ts';
import { makeTraces, requestOf, type TestTrace } from '../test/support/kafka-traces.ts';
import { NODE, ROOT, startChild } from './child.ts';

const SALT = 'scorecar/sampling/v1';
const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'throughput,latency,drain' },
    traces: { type: 'string', default: '4000' },
    outage: { type: 'string', default: '60' },
    rate: { type: 'string', default: '100' },
    /** The client of the latency and drain runs (throughput runs both). */
    client: { type: 'string', default: 'platformatic' },
  },
});
const PARTS = new Set(args.only!.split(','));
const N = Number(args.traces);
const OUTAGE_S = Number(args.outage);
const RATE = Number(args.rate);
const CLIENT = args.client!;

const load = (): string => loadavg()[0]!.toFixed(1);
let seq = 0;
const unique = (p: string): string => `${p}-${process.pid}-${++seq}`;

/** Downstream: notes when each trace's code assessment (log record) arrives. */
async function startSink(): Promise<{
  url: string;
  arrived: Map<string, number>;
  count: () => number;
  close: () => Promise<void>;
}> {
  const arrived = new Map<string, number>();
  let records = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const now = Date.now();
      if ((req.url ?? '').endsWith('/v1/logs')) {
        const json = protobufToJson('logs', Buffer.concat(chunks)) as {
          resourceLogs: Array<{
            scopeLogs: Array<{
              logRecords: Array<{
                traceId: string;
                attributes: Array<{ key: string; value: { stringValue?: string } }>;
              }>;
            }>;
          }>;
        };
        for (const rl of json.resourceLogs) {
          for (const sl of rl.scopeLogs) {
            for (const lr of sl.logRecords) {
              records++;
              const name = lr.attributes.find((a) => a.key === 'gen_ai.evaluation.name')?.value.stringValue;
              if (name === 'answer_length' && !arrived.has(lr.traceId)) arrived.set(lr.traceId, now);
            }
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    arrived,
    count: () => records,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const SCORERS = `scorers:
  - experiment: bench
    name: answer_length
    definition: {type: code, source: "(ctx) => String(ctx.outputs ?? '').length"}
    sampleRate: 1.0
  - experiment: bench
    name: is_english
    definition: {type: guidelines, guidelines: ["The response must be in English"]}
    sampleRate: 0.3
`;

function expectedAssessments(traces: readonly TestTrace[]): number {
  return traces.length + traces.filter((t) => isSelected(t.traceId, 0.3, SALT)).length;
}

interface Setup {
  bootstrap: string;
  modelUrl: string;
}

function kafkaYaml(
  s: Setup,
  client: string,
  names: { jobs: string; assessments: string; workers: string; emitter: string },
): string {
  return `kafka:
  brokers: ["${s.bootstrap}"]
  client: ${client}
  topics: {jobs: {name: "${names.jobs}", partitions: 12}, assessments: {name: "${names.assessments}", partitions: 12}}
  worker: {groupId: "${names.workers}", sessionTimeoutMs: 6000}
  emitter: {groupId: "${names.emitter}", sessionTimeoutMs: 6000}
scoring:
  providers: {openai: {baseUrl: "${s.modelUrl}/v1", apiKey: "bench"}}
  defaultModel: "openai:/scorecar-judge"
assembler: {settleMs: 200}
logging: {level: warn}
`;
}

function startWorker(yaml: string): { proc: ChildProcess; ready: Promise<void>; stop: () => Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'scorecar-bench-worker-'));
  writeFileSync(join(dir, 'scorecar.yaml'), `storage: {dir: "${dir}"}\n${yaml}`);
  const proc = spawn(
    NODE,
    [join(ROOT, 'bin/scorecar.js'), 'worker', '--config', join(dir, 'scorecar.yaml')],
    {
      env: {
        ...process.env,
        SCORECAR_LOGGING__LEVEL: 'info',
        SCORECAR_KAFKA__WORKER__METRICS_ENDPOINT: '127.0.0.1:0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    const on = (c: Buffer): void => {
      out += c.toString();
      if (out.includes('scorecar worker started')) resolve();
    };
    proc.stdout!.on('data', on);
    proc.stderr!.on('data', on);
    proc.on('exit', (code) => reject(new Error(`worker exited (${code}):\n${out}`)));
  });
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  return {
    proc,
    ready,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** Sends traces at `perSecond` (0: as fast as scorecar takes them); returns each trace's send time. */
async function send(
  httpUrl: string,
  traces: readonly TestTrace[],
  perSecond: number,
): Promise<Map<string, number>> {
  const sent = new Map<string, number>();
  const per = 20;
  const t0 = Date.now();
  for (let i = 0; i < traces.length; i += per) {
    if (perSecond > 0) {
      const due = t0 + (i / perSecond) * 1000;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
    const chunk = traces.slice(i, i + per);
    const now = Date.now();
    for (const t of chunk) sent.set(t.traceId, now);
    for (;;) {
      const r = await fetch(`${httpUrl}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf' },
        body: requestOf('bench', chunk),
      });
      await r.arrayBuffer();
      if (r.status === 200) break;
      await new Promise((res) => setTimeout(res, 200));
    }
  }
  return sent;
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function pct(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
}

async function throughput(s: Setup, client: string, workers: number): Promise<void> {
  const sink = await startSink();
  const names = {
    jobs: unique('jobs'),
    assessments: unique('assessments'),
    workers: unique('w'),
    emitter: unique('e'),
  };
  const yaml = kafkaYaml(s, client, names);
  const sc = await startChild(
    `${yaml.replace('scoring:\n', 'scoring:\n  mode: kafka\n')}exporters: {otlp: {endpoint: "${sink.url}"}}\n${SCORERS}`,
  );
  const ws = Array.from({ length: workers }, () => startWorker(yaml));
  try {
    await Promise.all(ws.map((w) => w.ready));
    const traces = makeTraces(N, unique('tp'));
    const want = expectedAssessments(traces);
    const t0 = Date.now();
    await send(sc.httpUrl, traces, 0);
    await until(() => sink.count() >= want, 600_000, `${want} assessments`);
    const s2 = (Date.now() - t0) / 1000;
    console.log(
      `throughput  ${client.padEnd(12)} ${workers} worker${workers > 1 ? 's' : ' '}  ${(N / s2).toFixed(0).padStart(6)} traces/s  (${N} traces, ${want} assessments in ${s2.toFixed(1)} s; load ${load()})`,
    );
  } finally {
    await Promise.all(ws.map((w) => w.stop()));
    await sc.terminate();
    await sink.close();
  }
}

async function latency(s: Setup): Promise<void> {
  const result: Record<string, { p50: number; p99: number }> = {};
  for (const mode of ['inline', 'kafka'] as const) {
    const sink = await startSink();
    const names = {
      jobs: unique('jobs'),
      assessments: unique('assessments'),
      workers: unique('w'),
      emitter: unique('e'),
    };
    const yaml = kafkaYaml(s, CLIENT, names);
    const sc = await startChild(
      `${yaml.replace('scoring:\n', `scoring:\n  mode: ${mode}\n`)}exporters: {otlp: {endpoint: "${sink.url}"}}\n${SCORERS}`,
    );
    const ws = mode === 'kafka' ? [startWorker(yaml), startWorker(yaml)] : [];
    try {
      await Promise.all(ws.map((w) => w.ready));
      const traces = makeTraces(RATE * 20, unique('lat'));
      const sent = await send(sc.httpUrl, traces, RATE);
      await until(() => traces.every((t) => sink.arrived.has(t.traceId)), 300_000, 'every code assessment');
      const ms = traces.map((t) => sink.arrived.get(t.traceId)! - sent.get(t.traceId)!);
      result[mode] = { p50: pct(ms, 0.5), p99: pct(ms, 0.99) };
      console.log(
        `latency     ${(mode === 'kafka' ? `kafka/${CLIENT}` : mode).padEnd(20)} p50 ${String(result[mode]!.p50).padStart(5)} ms  p99 ${String(result[mode]!.p99).padStart(5)} ms  (${traces.length} traces at ${RATE}/s, settle 200 ms included; load ${load()})`,
      );
    } finally {
      await Promise.all(ws.map((w) => w.stop()));
      await sc.terminate();
      await sink.close();
    }
  }
  console.log(
    `latency     added by Kafka: p50 ${result.kafka!.p50 - result.inline!.p50} ms, p99 ${result.kafka!.p99 - result.inline!.p99} ms`,
  );
}

async function drain(s: Setup): Promise<void> {
  const sink = await startSink();
  const names = {
    jobs: unique('jobs'),
    assessments: unique('assessments'),
    workers: unique('w'),
    emitter: unique('e'),
  };
  const yaml = kafkaYaml(s, CLIENT, names);
  const sc = await startChild(
    `${yaml.replace('scoring:\n', 'scoring:\n  mode: kafka\n')}exporters: {otlp: {endpoint: "${sink.url}"}}\n${SCORERS}`,
  );
  let ws = [startWorker(yaml), startWorker(yaml)];
  try {
    await Promise.all(ws.map((w) => w.ready));
    await Promise.all(ws.map((w) => w.stop()));
    // The outage: traffic goes on, jobs pile up on the topic.
    const traces = makeTraces(RATE * OUTAGE_S, unique('drain'));
    const want = expectedAssessments(traces);
    await send(sc.httpUrl, traces, RATE);
    const t0 = Date.now();
    ws = [startWorker(yaml), startWorker(yaml)];
    await Promise.all(ws.map((w) => w.ready));
    await until(() => sink.count() >= want, 600_000, `${want} assessments`);
    const s2 = (Date.now() - t0) / 1000;
    console.log(
      `drain       ${CLIENT}: ${OUTAGE_S} s outage at ${RATE} traces/s: ${traces.length} traces (${want} jobs) scored ${s2.toFixed(1)} s after 2 workers came back (worker start included; load ${load()})`,
    );
  } finally {
    await Promise.all(ws.map((w) => w.stop()));
    await sc.terminate();
    await sink.close();
  }
}

async function main(): Promise<void> {
  const brokerDir = mkdtempSync(join(tmpdir(), 'scorecar-bench-kafka-'));
  const line = execFileSync('bash', [join(ROOT, 'scripts/kafka-broker.sh'), 'start', brokerDir], {
    encoding: 'utf8',
  });
  const bootstrap = /bootstrap=(\S+)/.exec(line)![1]!;
  const model = await startModelServer();
  const s = { bootstrap, modelUrl: model.url };
  console.log(
    `bench:kafka  broker ${bootstrap} (Apache Kafka, KRaft, 1 node), model server ${model.url}, ${N} traces per throughput run`,
  );
  try {
    if (PARTS.has('throughput')) {
      for (const client of ['platformatic', 'kafkajs'])
        for (const w of [1, 2]) await throughput(s, client, w);
    }
    if (PARTS.has('latency')) await latency(s);
    if (PARTS.has('drain')) await drain(s);
  } finally {
    await model.close();
    execFileSync('bash', [join(ROOT, 'scripts/kafka-broker.sh'), 'clean', brokerDir], { stdio: 'inherit' });
  }
}

await main();
