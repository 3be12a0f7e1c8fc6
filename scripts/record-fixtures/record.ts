// Records the GenAI trace fixtures under test/fixtures/ from the real instrumentation libraries:
// starts a deterministic OpenAI-compatible model server and an OTLP/HTTP capture endpoint on
// loopback, runs each small RAG app (one child process per app, so instrumentations never share
// global state) with its exporter pointed at the capture endpoint, and writes what arrived as
// OTLP/JSON: test/fixtures/<convention>/<name>.json (traces) and <name>.logs.json (log events,
// when the library emits any). Python apps run in a venv under .cache/ that this script builds.
//
//   node_modules/.bin/node scripts/record-fixtures/record.ts [--only <convention>[/<name>],...]
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonToProtobuf, protobufToJson } from '../../src/wire/json.ts';
import { type CapturedRequest, startCaptureServer, startModelServer } from './servers.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures');
const VENV = join(ROOT, '.cache', 'record-fixtures', 'venv');
const VENV_PY = join(VENV, 'bin', 'python');
const REQUIREMENTS = join(HERE, 'requirements.txt');

interface App {
  convention: string;
  name: string;
  runtime: 'node' | 'python';
  file: string;
  /** Extra environment for this app only. */
  env?: Record<string, string>;
  /** Library packages whose versions the README records. */
  libraries: string[];
  description: string;
}

const APPS: App[] = [
  {
    convention: 'openinference',
    name: 'openai-rag',
    runtime: 'node',
    file: 'apps/openinference.ts',
    libraries: [
      'openai',
      '@arizeai/openinference-instrumentation-openai',
      '@arizeai/openinference-semantic-conventions',
      '@arizeai/openinference-core',
    ],
    description:
      'OpenAI SDK auto-instrumented by OpenInference; app CHAIN root and RETRIEVER span with OpenInference attributes; session/user via context',
  },
  {
    convention: 'openllmetry',
    name: 'openai-rag',
    runtime: 'node',
    file: 'apps/traceloop.ts',
    libraries: ['openai', '@traceloop/node-server-sdk'],
    description:
      'Traceloop SDK: workflow + task spans, a vector DB query span with result events, OpenAI auto-instrumented; association properties session_id/user_id',
  },
  {
    convention: 'vercel-ai',
    name: 'openai-rag',
    runtime: 'node',
    file: 'apps/vercel.ts',
    libraries: ['ai', '@ai-sdk/openai'],
    description:
      'Vercel AI SDK generateText/streamText/embed with experimental_telemetry (metadata sessionId/userId) under an app root span; retrieval span in GenAI semconv',
  },
  {
    convention: 'langfuse',
    name: 'openai-rag',
    runtime: 'node',
    file: 'apps/langfuse.ts',
    libraries: ['@langfuse/tracing', '@langfuse/otel', 'openai'],
    description:
      'Langfuse SDK: root span, retriever and generation observations around plain OpenAI SDK calls; propagateAttributes sessionId/userId; exported by LangfuseSpanProcessor',
  },
  {
    convention: 'genai-semconv',
    name: 'openai-js',
    runtime: 'node',
    file: 'apps/semconv.ts',
    env: { OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'true' },
    libraries: ['openai', '@opentelemetry/instrumentation-openai'],
    description:
      'OpenTelemetry JS contrib OpenAI instrumentation (GenAI semconv 1.36: usage on spans, message content as gen_ai.* log events); app root and retrieval spans',
  },
  {
    convention: 'genai-semconv',
    name: 'openai-python',
    runtime: 'python',
    file: 'apps/semconv_openai_v2.py',
    env: {
      OTEL_SEMCONV_STABILITY_OPT_IN: 'gen_ai_latest_experimental',
      OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'SPAN_ONLY',
    },
    libraries: ['openai', 'opentelemetry-instrumentation-openai-v2', 'opentelemetry-sdk'],
    description:
      'OpenTelemetry Python openai-v2 instrumentation, latest experimental GenAI semconv with content on spans (gen_ai.input.messages / gen_ai.output.messages)',
  },
  {
    convention: 'mlflow',
    name: 'python-rag',
    runtime: 'python',
    file: 'apps/mlflow_app.py',
    // mlflow-tracing resolves a default tracking URI on the first span and, without one set, imports
    // its file store, which needs modules the tracing-only package does not ship (sqlparse). No
    // tracking server is contacted: with an OTLP traces endpoint set, MLflow exports over OTLP only.
    env: { MLFLOW_TRACKING_URI: 'http://127.0.0.1:9' },
    libraries: ['mlflow-tracing', 'openai', 'opentelemetry-exporter-otlp-proto-http'],
    description:
      'MLflow tracing (mlflow-tracing) exporting over OTLP: @mlflow.trace CHAIN root, RETRIEVER span returning Documents, OpenAI autolog LLM span; session/user as trace metadata and root session.id/user.id; turn 1 has scorecar expectations',
  },
];

function parseOnly(argv: string[]): string[] | null {
  const i = argv.indexOf('--only');
  if (i < 0) return null;
  return (argv[i + 1] ?? '').split(',').filter(Boolean);
}

function selected(app: App, only: string[] | null): boolean {
  if (!only) return true;
  return only.some((o) => o === app.convention || o === `${app.convention}/${app.name}`);
}

function ensureVenv(): void {
  const req = readFileSync(REQUIREMENTS, 'utf8');
  const stamp = join(VENV, '.requirements.sha256');
  const want = createHash('sha256').update(req).digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return;
  const python = process.env.PYTHON ?? 'python3';
  mkdirSync(dirname(VENV), { recursive: true });
  process.stderr.write(
    `creating ${relative(ROOT, VENV)} with ${python} and installing ${relative(ROOT, REQUIREMENTS)}\n`,
  );
  if (!existsSync(VENV_PY)) execFileSync(python, ['-m', 'venv', VENV], { stdio: 'inherit' });
  execFileSync(
    VENV_PY,
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', REQUIREMENTS],
    {
      stdio: 'inherit',
    },
  );
  writeFileSync(stamp, want);
}

function runApp(app: App, env: Record<string, string>): Promise<void> {
  const file = join(HERE, app.file);
  const [cmd, args] =
    app.runtime === 'node'
      ? [process.execPath, ['--disable-warning=ExperimentalWarning', file]]
      : [VENV_PY, [file]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, ...env, ...app.env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${app.convention}/${app.name} exited with ${code ?? signal}`));
    });
  });
}

/** One OTLP/JSON request holding every resource of every captured request, in arrival order. */
function merge(requests: CapturedRequest[], signal: 'traces' | 'logs'): Record<string, unknown> | null {
  const key = signal === 'traces' ? 'resourceSpans' : 'resourceLogs';
  const all: unknown[] = [];
  for (const r of requests) {
    if (r.signal !== signal) continue;
    const pb = r.contentType === 'application/json' ? jsonToProtobuf(signal, r.body) : r.body;
    const obj = protobufToJson(signal, pb);
    const list = obj[key];
    if (Array.isArray(list)) all.push(...list);
  }
  return all.length ? { [key]: all } : null;
}

function nodeVersion(pkg: string): string | null {
  try {
    const p = JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as {
      version: string;
    };
    return p.version;
  } catch {
    return null;
  }
}

function pythonVersions(): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(VENV_PY)) return out;
  const frozen = execFileSync(VENV_PY, ['-m', 'pip', 'freeze', '--disable-pip-version-check'], {
    encoding: 'utf8',
  });
  for (const line of frozen.split('\n')) {
    const m = /^([A-Za-z0-9_.-]+)==(.+)$/.exec(line.trim());
    if (m) out.set(m[1]!.toLowerCase().replace(/_/g, '-'), m[2]!);
  }
  return out;
}

interface Counts {
  traces: number;
  spans: number;
  logs: number;
}

function readJson(path: string): Record<string, unknown> | null {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : null;
}

type Items = { [k: string]: unknown }[];

/** Counts what a fixture on disk holds (traces, spans, log records). */
function countFixture(app: App): Counts | null {
  const traces = readJson(join(FIXTURES, app.convention, `${app.name}.json`));
  if (!traces) return null;
  const ids = new Set<string>();
  let spans = 0;
  for (const rs of (traces.resourceSpans ?? []) as Items) {
    for (const ss of (rs.scopeSpans ?? []) as Items) {
      for (const sp of (ss.spans ?? []) as Items) {
        spans++;
        ids.add(String(sp.traceId));
      }
    }
  }
  let logs = 0;
  const logsJson = readJson(join(FIXTURES, app.convention, `${app.name}.logs.json`));
  for (const rl of (logsJson?.resourceLogs ?? []) as Items) {
    for (const sl of (rl.scopeLogs ?? []) as Items) logs += ((sl.logRecords ?? []) as Items).length;
  }
  return { traces: ids.size, spans, logs };
}

function writeReadme(): void {
  const py = pythonVersions();
  const rows = APPS.map((a) => {
    const id = `${a.convention}/${a.name}`;
    const libs = a.libraries
      .map((l) => `${l} ${(a.runtime === 'node' ? nodeVersion(l) : py.get(l)) ?? '?'}`)
      .join(', ');
    const r = countFixture(a);
    const what = r
      ? `${r.traces} traces, ${r.spans} spans${r.logs ? `, ${r.logs} log records` : ''}`
      : 'not recorded yet';
    return `| \`${id}\` | ${a.description} | ${libs} | ${what} |`;
  });
  const text = `# Recorded GenAI trace fixtures

Every file here was **recorded** from the real instrumentation libraries, never typed by hand:

    node_modules/.bin/node scripts/record-fixtures/record.ts            # all apps
    node_modules/.bin/node scripts/record-fixtures/record.ts --only mlflow,langfuse

(\`npm run fixtures:record\` runs the first line.) The script starts a deterministic
OpenAI-compatible model server (chat completions with and without streaming, embeddings; canned
answers from \`scripts/record-fixtures/kb.json\`) and an OTLP/HTTP capture endpoint on loopback,
then runs one small RAG app per library (\`scripts/record-fixtures/apps/\`). Each app answers the
same three turns in one session (\`${'session-42'}\`, user \`${'user-7'}\`): retrieve documents, then
call the model; turn 1 is a plain completion, turn 2 streams, turn 3 is refused by the model
server (HTTP 400) so its trace ends in an error. Python apps run in a venv under
\`.cache/record-fixtures/venv\` that the script creates from \`scripts/record-fixtures/requirements.txt\`.

Files: \`<convention>/<name>.json\` is one OTLP/JSON \`ExportTraceServiceRequest\` holding every
span the app exported (the captured requests' \`resourceSpans\`, concatenated in arrival order);
\`<name>.logs.json\` holds the log records (GenAI message events) when the library emits any.
Trace and span ids and timestamps are whatever the run produced; everything else (documents,
answers, token counts, session and user ids) is the same on every run, and the tests assert
only on that.

| fixture | what the app does | libraries (versions recorded) | content |
| --- | --- | --- | --- |
${rows.join('\n')}

Node ${process.versions.node}. Re-record after upgrading one of these libraries and review the diff.

## What the libraries really did (kept in the fixtures on purpose)

- OpenInference: the streamed call's LLM span has no token counts, and the refused call (turn 3)
  produced no LLM span at all: the trace holds only the app's root and retriever spans.
- OpenLLMetry: for the refused call neither the workflow span nor the LLM span was ever ended,
  so turn 3 arrives without a root (two spans whose parent never comes). For the streamed call
  the SDK counts tokens itself (28 in, 9 out) instead of using the server's usage chunk.
- OpenTelemetry JS OpenAI instrumentation: message content goes to log records
  (\`gen_ai.system.message\`, \`gen_ai.user.message\`, \`gen_ai.choice\` events, in \`openai-js.logs.json\`),
  never onto spans; the spans carry model, usage and finish reasons only.
- MLflow 3.17 over OTLP: trace metadata set with \`mlflow.update_current_trace(metadata=...)\`
  (session, user) is not exported, and a root span with trace tags is dropped entirely
  ("Cannot mutate immutable BoundedAttributes"), so the app puts session/user/expectations on
  the root span as attributes (JSON-encoded by MLflow, as every MLflow attribute). Without
  \`MLFLOW_TRACKING_URI\` set, mlflow-tracing fails to start spans (it imports sqlparse).
  Its resource has no service.name.
`;
  writeFileSync(join(FIXTURES, 'README.md'), text);
}

async function main(): Promise<void> {
  const only = parseOnly(process.argv.slice(2));
  const apps = APPS.filter((a) => selected(a, only));
  if (apps.length === 0)
    throw new Error(
      `--only matched no app; known: ${APPS.map((a) => `${a.convention}/${a.name}`).join(', ')}`,
    );
  if (apps.some((a) => a.runtime === 'python')) ensureVenv();
  const model = await startModelServer();
  const capture = await startCaptureServer();
  try {
    for (const app of apps) {
      const id = `${app.convention}/${app.name}`;
      process.stderr.write(`recording ${id}\n`);
      await runApp(app, {
        OPENAI_BASE_URL: model.url,
        OPENAI_API_KEY: 'sk-fixture',
        FIXTURE_OTLP: `${capture.url}/${id}`,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${capture.url}/${id}/v1/traces`,
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: `${capture.url}/${id}/v1/logs`,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_METRICS_EXPORTER: 'none',
        OTEL_SDK_DISABLED: 'false',
        NO_PROXY: '127.0.0.1,localhost',
        // Host and process detectors would put this machine's ids into committed fixtures.
        OTEL_NODE_RESOURCE_DETECTORS: 'none',
      });
      const mine = capture.captured.filter((r) => r.target === id);
      const traces = merge(mine, 'traces');
      if (!traces) throw new Error(`${id}: no spans were exported`);
      mkdirSync(join(FIXTURES, app.convention), { recursive: true });
      writeFileSync(
        join(FIXTURES, app.convention, `${app.name}.json`),
        `${JSON.stringify(traces, null, 1)}\n`,
      );
      const logs = merge(mine, 'logs');
      const logsPath = join(FIXTURES, app.convention, `${app.name}.logs.json`);
      if (logs) writeFileSync(logsPath, `${JSON.stringify(logs, null, 1)}\n`);
      else rmSync(logsPath, { force: true });
      const c = countFixture(app);
      process.stderr.write(`  ${c?.traces} traces, ${c?.spans} spans, ${c?.logs} log records\n`);
    }
  } finally {
    await capture.close();
    await model.close();
  }
  writeReadme();
}

await main();
