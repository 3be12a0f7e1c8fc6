// `npm run demo`: scorecar in under a minute. Starts the local judge-model server and scorecar
// (config/demo.yaml), sends recorded traces from six instrumentation libraries over OTLP/HTTP,
// and prints every assessment as it arrives.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Scorecar } from '../src/app.ts';
import type { Assessment } from '../src/assessments/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { createLogger } from '../src/util/log.ts';
import { startModelServer } from './model-server.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures');

const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

function show(a: Assessment, convention: string): string {
  const value = a.error ? `error ${a.error.code}` : JSON.stringify(a.value);
  const why = a.error ? a.error.message : (a.rationale ?? '');
  return `${a.traceId.slice(0, 8)}  ${convention.padEnd(14)} ${a.scorer.name.padEnd(22)} ${bold(value.padEnd(6))} ${dim(why.replace(/\s+/g, ' ').slice(0, 70))}`;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const model = await startModelServer();
  const dataDir = mkdtempSync(join(tmpdir(), 'scorecar-demo-'));
  const config = loadConfig({
    file: join(ROOT, 'config/demo.yaml'),
    env: { ...process.env, DEMO_MODEL_URL: model.url, DEMO_DATA_DIR: dataDir },
  });
  const conventionOf = new Map<string, string>();
  const seen: Assessment[] = [];
  const app = new Scorecar(config, {
    logger: createLogger({ level: 'warn' }),
    onAssessment: (a) => {
      seen.push(a);
      console.log(show(a, conventionOf.get(a.traceId) ?? '?'));
    },
  });
  const ep = await app.start();
  const otlp = `http://127.0.0.1:${ep.http}`;
  console.log(bold('scorecar demo'));
  console.log(`  OTLP/HTTP ${otlp}  OTLP/gRPC 127.0.0.1:${ep.grpc}  admin http://127.0.0.1:${ep.admin}  judge model ${model.url}`);
  console.log(`  scorers of experiment "demo": answer_length (code, rate 1.0), answers_the_question (guidelines judge, rate 1.0)\n`);

  let traces = 0;
  for (const convention of readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort()) {
    for (const file of readdirSync(join(FIXTURES, convention)).filter((f) => f.endsWith('.json') && !f.endsWith('.logs.json'))) {
      // The GenAI semconv instrumentations put message content in log events: send those first,
      // as the SDK's log exporter usually does, so the trace is read with its content.
      const logsFile = join(FIXTURES, convention, file.replace(/\.json$/, '.logs.json'));
      if (existsSync(logsFile)) {
        const res = await fetch(`${otlp}/v1/logs`, {
          method: 'POST',
          body: readFileSync(logsFile, 'utf8'),
          headers: { 'content-type': 'application/json', 'x-mlflow-experiment-id': 'demo' },
        });
        if (res.status !== 200) throw new Error(`sending ${convention}/${file} logs: HTTP ${res.status} ${await res.text()}`);
      }
      const body = readFileSync(join(FIXTURES, convention, file), 'utf8');
      const doc = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ traceId: string }> }> }> };
      const ids = new Set(doc.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans.map((sp) => sp.traceId.toLowerCase()))));
      for (const id of ids) conventionOf.set(id, convention);
      traces += ids.size;
      // The header names the experiment, as an MLflow client would.
      const res = await fetch(`${otlp}/v1/traces`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', 'x-mlflow-experiment-id': 'demo' },
      });
      if (res.status !== 200) throw new Error(`sending ${convention}/${file}: HTTP ${res.status} ${await res.text()}`);
    }
  }
  console.log(dim(`sent ${traces} traces recorded from ${new Set(conventionOf.values()).size} instrumentation libraries; assessments:\n`));
  // Every trace completed, scored and its assessments emitted.
  await app.whenIdle();
  const errors = seen.filter((a) => a.error).length;
  console.log(`\n${bold(`${seen.length} assessments`)} for ${traces} traces in ${((Date.now() - t0) / 1000).toFixed(1)} s (${errors} with errors).`);
  console.log(`Try: curl -s http://127.0.0.1:${ep.admin}/api/v1/experiments/demo/scorers | head -c 600; curl -s http://127.0.0.1:${ep.admin}/metrics | grep scorecar_assessments_total`);
  await app.stop(5_000);
  await model.close();
  rmSync(dataDir, { recursive: true, force: true });
}

await main();
