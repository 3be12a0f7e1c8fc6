// End-to-end scoring benchmarks (scorecar as its own process, fed over OTLP/HTTP):
//  1. traces/s scored with a code scorer at rate 1.0;
//  2. traces/s through scorecar with a guidelines judge at rate 0.1 against the local model server;
//  3. memory while a judge is much slower than the traffic (bounded queue, counted drops).
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { type ModelServer, startModelServer } from '../scripts/model-server.ts';
import { PythonSandbox } from '../src/scoring/index.ts';
import { type ChildScorecar, scrape, startChild } from './child.ts';
import { bodyPool } from './wire.ts';

const MiB = 1024 * 1024;
/** makeRequest's default trace shape. */
const SPANS_PER_TRACE = 8;

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(parts[11]) + Number(parts[12])) / 100;
}

function post(agent: http.Agent, url: string, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length, 'x-mlflow-experiment-id': 'bench' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(-1));
    req.end(body);
  });
}

/**
 * Sends traces at `tracesPerSec` for `seconds` (16 traces of 8 spans per request). Bodies come
 * from a pool whose trace ids are rewritten per use (encoding a request per send took enough of
 * the shared cores to fall short of the offered rate under load); at most 65 requests are
 * outstanding, fewer than the pool's 128, so no body is rewritten while still queued.
 */
async function drive(sc: ChildScorecar, tracesPerSec: number, seconds: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const perReq = 16;
  const pool = bodyPool(128, perReq);
  const interval = (1000 * perReq) / tracesPerSec;
  const t0 = performance.now();
  let sent = 0;
  const pending: Promise<number>[] = [];
  for (let i = 0; performance.now() - t0 < seconds * 1000; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(post(agent, `${sc.httpUrl}/v1/traces`, pool.next().body));
    sent += perReq;
    if (pending.length > 64) await pending.shift();
  }
  await Promise.all(pending);
  agent.destroy();
  return sent;
}

const SCORING = (model: ModelServer) => `assembler: {settleMs: 200}
logging: {level: warn}
scoring:
  defaultModel: "openai:/judge"
  providers: {openai: {baseUrl: "${model.url}/v1", apiKey: "k"}}
`;

export async function codeScorerThroughput(seconds = 8, offered = 4000): Promise<{ offered: number; scoredPerSec: number; cpuPerTrace: number; dropped: number }> {
  const model = await startModelServer();
  const sc = await startChild(`${SCORING(model)}scorers:
  - {experiment: bench, name: len, definition: {type: code, source: "(ctx) => String(ctx.outputs ?? '').length"}, sampleRate: 1.0}
`);
  const cpu0 = cpuSeconds(sc.proc.pid!);
  const t0 = performance.now();
  const sent = await drive(sc, offered, seconds);
  // Let the queue drain, then read the rate over the whole run.
  let last = -1;
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const n = await scrape(sc.adminUrl, 'scorecar_assessments_total', { scorer: 'len' });
    if (n === last) break;
    last = n;
  }
  const wall = (performance.now() - t0) / 1000 - 0.5;
  const dropped = await scrape(sc.adminUrl, 'scorecar_scoring_jobs_dropped_total');
  const cpu = cpuSeconds(sc.proc.pid!) - cpu0;
  await sc.terminate();
  await model.close();
  return { offered: sent / seconds, scoredPerSec: last / wall, cpuPerTrace: cpu / Math.max(1, last), dropped };
}

/** The scorers of the Python runs: MLflow's own @scorer example body, as scorecar stores it. */
const PY_LENGTH = 'def response_length(outputs):\n    return len(str(outputs))\n';

/**
 * A Python scorer (what an MLflow @scorer becomes) at rate 1.0, end to end: scorecar in its own
 * process with one Pyodide worker (the default), traces offered over OTLP/HTTP.
 */
export async function pythonScorerThroughput(seconds = 8, offered = 2000): Promise<{ offered: number; scoredPerSec: number; cpuPerTrace: number; dropped: number }> {
  const model = await startModelServer();
  const sc = await startChild(`${SCORING(model)}scorers:
  - {experiment: bench, name: len, definition: {type: python, source: ${JSON.stringify(PY_LENGTH)}}, sampleRate: 1.0}
`);
  const cpu0 = cpuSeconds(sc.proc.pid!);
  const t0 = performance.now();
  const sent = await drive(sc, offered, seconds);
  let last = -1;
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const n = await scrape(sc.adminUrl, 'scorecar_assessments_total', { scorer: 'len' });
    if (n === last) break;
    last = n;
  }
  const wall = (performance.now() - t0) / 1000 - 1;
  const dropped = await scrape(sc.adminUrl, 'scorecar_scoring_jobs_dropped_total');
  const cpu = cpuSeconds(sc.proc.pid!) - cpu0;
  await sc.terminate();
  await model.close();
  return { offered: sent / seconds, scoredPerSec: last / wall, cpuPerTrace: cpu / Math.max(1, last), dropped };
}

/**
 * The Python sandbox alone, in this process: what starting a worker costs (loading Pyodide, on
 * its own thread), then calls/s and CPU per call with 16 calls in flight on `workers` workers,
 * for a trivial scorer and for one that reads the trace (its JSON crosses into the interpreter).
 */
export async function pythonSandboxCalls(workers = 1, calls = 4000): Promise<{
  startMs: number;
  startCpuMs: number;
  simple: { callsPerSec: number; cpuMsPerCall: number };
  withTrace: { callsPerSec: number; cpuMsPerCall: number };
}> {
  const sb = new PythonSandbox({ workers, timeoutMs: 2000 });
  const ctxJson = JSON.stringify({ inputs: { query: 'What is scorecar?' }, outputs: { response: 'scorecar scores production GenAI traces' }, expectations: {} });
  const spans = Array.from({ length: 8 }, (_, i) => ({ name: `span${i}`, spanId: String(i).padStart(16, '0'), attributes: { 'mlflow.spanType': '"LLM"', 'mlflow.spanInputs': '{"prompt": "x"}' } }));
  const traceJson = JSON.stringify({ traceId: 'ab'.repeat(16), spans, status: 'OK', inputs: {}, outputs: {} });
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  let c0 = cpu();
  let t0 = performance.now();
  await sb.run({ key: 'warm', context: 'warm', source: PY_LENGTH, ctxJson, traceJson: null });
  const startMs = performance.now() - t0;
  const startCpuMs = cpu() - c0;
  const measure = async (source: string, trace: string | null) => {
    await sb.run({ key: 'k', context: source, source, ctxJson, traceJson: trace });
    c0 = cpu();
    t0 = performance.now();
    let next = 0;
    const lane = async () => {
      while (next < calls) {
        next++;
        const out = await sb.run({ key: 'k', context: source, source, ctxJson, traceJson: trace });
        if (!out.ok) throw new Error(out.message);
      }
    };
    await Promise.all(Array.from({ length: 16 }, lane));
    const wall = (performance.now() - t0) / 1000;
    return { callsPerSec: calls / wall, cpuMsPerCall: (cpu() - c0) / calls };
  };
  const simple = await measure(PY_LENGTH, null);
  const withTrace = await measure('def spans(trace):\n    return len(trace.search_spans(span_type="LLM"))\n', traceJson);
  await sb.close();
  return { startMs, startCpuMs, simple, withTrace };
}

export async function judgeThroughput(seconds = 8, offered = 6000): Promise<{ offered: number; tracesPerSec: number; judgedPerSec: number; dropped: number; modelRequests: number }> {
  const model = await startModelServer();
  const sc = await startChild(`${SCORING(model)}scorers:
  - {experiment: bench, name: judge, definition: {type: guidelines, guidelines: ["The response must be in English"]}, sampleRate: 0.1}
`);
  const t0 = performance.now();
  const sent = await drive(sc, offered, seconds);
  let last = -1;
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const n = await scrape(sc.adminUrl, 'scorecar_assessments_total', { scorer: 'judge' });
    if (n === last) break;
    last = n;
  }
  const wall = (performance.now() - t0) / 1000 - 0.5;
  // Traces through scorecar counted at the receiver: since only traces a scorer could select are
  // assembled, the assembler's completed count is about the sampled tenth.
  const received = (await scrape(sc.adminUrl, 'scorecar_receiver_accepted_items_total')) / SPANS_PER_TRACE;
  const dropped = await scrape(sc.adminUrl, 'scorecar_scoring_jobs_dropped_total');
  const modelRequests = model.stats().requests;
  await sc.terminate();
  await model.close();
  return { offered: sent / seconds, tracesPerSec: received / wall, judgedPerSec: last / wall, dropped, modelRequests };
}

export async function slowJudgeMemory(seconds = 15, offered = 3000): Promise<{ peakRssMiB: number; queued: number; dropped: number; judged: number }> {
  const model = await startModelServer();
  model.setFault({ kind: 'slow', delayMs: 3000 });
  const sc = await startChild(`${SCORING(model)}scorers:
  - {experiment: bench, name: judge, definition: {type: guidelines, guidelines: ["The response must be in English"]}, sampleRate: 1.0}
`);
  let peakQueued = 0;
  const poll = setInterval(async () => {
    peakQueued = Math.max(peakQueued, await scrape(sc.adminUrl, 'scorecar_scoring_queue_jobs').catch(() => 0));
  }, 500);
  await drive(sc, offered, seconds);
  clearInterval(poll);
  const dropped = await scrape(sc.adminUrl, 'scorecar_scoring_jobs_dropped_total', { reason: 'queue_full' });
  const judged = await scrape(sc.adminUrl, 'scorecar_assessments_total', { scorer: 'judge' });
  const peak = sc.peakRss();
  sc.kill();
  await model.close();
  return { peakRssMiB: peak / MiB, queued: peakQueued, dropped, judged };
}

if (import.meta.main) {
  const ps = await pythonSandboxCalls();
  console.log(`python sandbox: worker start ${ps.startMs.toFixed(0)} ms (${ps.startCpuMs.toFixed(0)} ms CPU); ${Math.round(ps.simple.callsPerSec)} calls/s, ${ps.simple.cpuMsPerCall.toFixed(3)} ms CPU per call; reading the trace ${Math.round(ps.withTrace.callsPerSec)} calls/s, ${ps.withTrace.cpuMsPerCall.toFixed(3)} ms CPU per call`);
  const p = await pythonScorerThroughput();
  console.log(`python scorer at rate 1.0: ${Math.round(p.scoredPerSec)} traces/s scored (offered ${Math.round(p.offered)}/s, ${p.dropped} jobs dropped), ${(p.cpuPerTrace * 1e3).toFixed(2)} ms CPU per trace`);
  const c = await codeScorerThroughput();
  console.log(`code scorer at rate 1.0: ${Math.round(c.scoredPerSec)} traces/s scored (offered ${Math.round(c.offered)}/s, ${c.dropped} jobs dropped), ${(c.cpuPerTrace * 1e3).toFixed(2)} ms CPU per trace`);
  const j = await judgeThroughput();
  console.log(`judge at rate 0.1: ${Math.round(j.tracesPerSec)} traces/s through scorecar, ${Math.round(j.judgedPerSec)} judged/s (offered ${Math.round(j.offered)}/s, ${j.dropped} dropped, ${j.modelRequests} model requests)`);
  const m = await slowJudgeMemory();
  console.log(`judge slower than traffic (3 s per call, rate 1.0): peak RSS ${m.peakRssMiB.toFixed(0)} MiB, peak queue ${m.queued} jobs, ${m.dropped} jobs dropped (counted), ${m.judged} judged`);
}
