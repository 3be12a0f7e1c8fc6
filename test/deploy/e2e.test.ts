// The Helm chart's sidecar, run as Kubernetes would run it, between two real OpenTelemetry
// Collectors (built with the Collector builder, running the recipes of deploy/collector/ as they
// are): an app instrumented with the OpenTelemetry JS SDK → the front Collector → scorecar (the
// rendered init container's command, args and env, its mounted ConfigMap and Secret) → the back
// Collector → a sink. Every span must arrive at the sink intact and exactly once, and every trace's
// assessment (from the scorer registered by the ConfigMap's config) as an evaluation span and a
// gen_ai.evaluation.result log record.
//
// What differs from the pod, and only that: mount paths are directories of a temp dir; `node` is
// this repo's Node 24 and /app the checkout (the image's layout, checked by dockerfile.test.ts);
// the listen ports are 0 (tests run alongside), and the downstream is the back Collector's address
// (set through the chart's values, as an operator would).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { NODE } from '../support/child.ts';
import { CHART, type Collector, type DeployTools, deployTools, find, helmTemplate, type K8s, parseManifests, ROOT, startCollector, startedPorts } from '../support/deploy.ts';
import { expectAssessments, expectIntact, sendGenAiTraces, sinkContents } from '../support/genai-app.ts';
import { waitFor } from '../support/scorecar.ts';

const N = 40; // traces, of three spans each

describe('the Helm sidecar between two Collectors', () => {
  let tools: DeployTools | undefined;
  let capture: CaptureServer;
  let back: Collector | undefined;
  let front: Collector | undefined;
  let sc: ChildProcess | undefined;
  let scExit: Promise<number | null>;
  let scOut = '';
  let dir: string;
  let manifests: K8s[];
  let pod: K8s;
  let sidecar: K8s;
  let adminUrl: string;
  let token: string;

  beforeAll(async () => {
    tools = await deployTools();
    if (!tools) return;
    dir = mkdtempSync(join(tmpdir(), 'scorecar-deploy-e2e-'));
    capture = await startHttpCapture();
    back = await startCollector(tools.otelcol, 'scorecar-to-backend.yaml', { BACKEND_ENDPOINT: capture.url });
    manifests = parseManifests(
      await helmTemplate(tools.helm, [`${CHART}/ci/sidecar-values.yaml`], [`config.exporters.otlp.endpoint=grpc://127.0.0.1:${back.grpc}`]),
    );
    const app = manifests.find((o) => o.kind === 'Deployment' && o.spec.template.spec.initContainers?.some((c: K8s) => c.name === 'scorecar'));
    pod = app.spec.template.spec;
    sidecar = pod.initContainers.find((c: K8s) => c.name === 'scorecar');

    // The pod's volumes as directories; a ConfigMap's keys as files.
    const mounts = new Map<string, string>();
    for (const m of sidecar.volumeMounts as K8s[]) {
      const d = join(dir, m.name);
      mkdirSync(d, { recursive: true });
      mounts.set(m.mountPath, d);
    }
    // One pass over the text, longest path first, at path boundaries: a mount path inside an
    // already mapped path (the temp dir is under /tmp too) is never mapped again.
    const paths = [...mounts.keys(), '/app'].sort((a, b) => b.length - a.length);
    const re = new RegExp(`(^|[\\s"'=])(${paths.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})(?=/|$|[\\s"'])`, 'g');
    const local = (s: string): string => s.replace(re, (_m, pre: string, p: string) => pre + (p === '/app' ? ROOT.replace(/\/$/, '') : mounts.get(p)!));
    for (const m of sidecar.volumeMounts as K8s[]) {
      const vol = (pod.volumes as K8s[]).find((v) => v.name === m.name);
      if (vol.configMap) {
        const cm = find(manifests, 'ConfigMap', vol.configMap.name);
        for (const [k, v] of Object.entries(cm.data as Record<string, string>)) writeFileSync(join(mounts.get(m.mountPath)!, k), local(v));
      } else if (!vol.emptyDir) throw new Error(`volume ${m.name}: only ConfigMaps and emptyDirs are expected in this render`);
    }
    // The container's environment: literal values, and Secret keys from the rendered Secrets.
    const env: Record<string, string> = {};
    for (const e of sidecar.env as K8s[]) {
      if (e.value !== undefined) env[e.name] = local(String(e.value));
      else if (e.valueFrom?.secretKeyRef) {
        const ref = e.valueFrom.secretKeyRef;
        env[e.name] = Buffer.from(find(manifests, 'Secret', ref.name).data[ref.key], 'base64').toString();
      } else throw new Error(`env ${e.name}: unexpected source`);
    }
    expect(sidecar.envFrom).toBeUndefined(); // no model keys in this render
    token = env.SCORECAR_ADMIN_TOKEN!;
    expect(token).toMatch(/^[A-Za-z0-9]{40}$/);
    const [cmd, ...cmdArgs] = [...(sidecar.command as string[]), ...(sidecar.args as string[])].map(local);
    sc = spawn(cmd === 'node' ? NODE : cmd!, cmdArgs, {
      cwd: mounts.get('/var/lib/scorecar'),
      env: {
        PATH: process.env.PATH,
        ...env,
        SCORECAR_RECEIVERS__OTLP__GRPC__ENDPOINT: '127.0.0.1:0',
        SCORECAR_RECEIVERS__OTLP__HTTP__ENDPOINT: '127.0.0.1:0',
        SCORECAR_ADMIN__ENDPOINT: '127.0.0.1:0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    sc.stdout!.on('data', (c: Buffer) => (scOut += c.toString()));
    sc.stderr!.on('data', (c: Buffer) => (scOut += c.toString()));
    const proc = sc;
    scExit = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    await waitFor(() => {
      if (proc.exitCode !== null) throw new Error(`scorecar exited (${proc.exitCode}):\n${scOut}`);
      return startedPorts(scOut) !== undefined;
    }, 60_000, 'the sidecar to start');
    const ports = startedPorts(scOut)!;
    adminUrl = `http://127.0.0.1:${ports.admin}`;
    front = await startCollector(tools.otelcol, 'app-to-scorecar.yaml', { SCORECAR_ENDPOINT: `127.0.0.1:${ports.grpc}` });
  }, 1_800_000); // a fresh clone builds the toolchains first (minutes)

  afterAll(async () => {
    if (sc && sc.exitCode === null) sc.kill('SIGKILL');
    await front?.stop();
    await back?.stop();
    await capture?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is the pod an operator gets: the app exports to the sidecar, which starts first and serves the admin API with the token', async () => {
    if (!tools) return;
    expect(sidecar.restartPolicy).toBe('Always');
    const appEnv = Object.fromEntries((pod.containers[0].env as K8s[]).map((e) => [e.name, e.value]));
    const receiverPort = /:(\d+)$/.exec(String((sidecar.env as K8s[]).find((e) => e.name === 'SCORECAR_RECEIVERS__OTLP__HTTP__ENDPOINT').value))![1];
    expect(appEnv.OTEL_EXPORTER_OTLP_ENDPOINT).toBe(`http://localhost:${receiverPort}`);
    expect((await fetch(`${adminUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${adminUrl}/api/v1/experiments/chat-app/scorers`)).status).toBe(401);
    const res = await fetch(`${adminUrl}/api/v1/experiments/chat-app/scorers`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const { scorers } = (await res.json()) as { scorers: Array<{ name: string; status: string; sampleRate: number }> };
    expect(scorers.map((s) => [s.name, s.status, s.sampleRate])).toEqual([['response_length', 'active', 1]]);
  });

  it('passes every span of a real SDK app through both Collectors intact and adds the assessments', async () => {
    if (!tools) return;
    const appEnv = Object.fromEntries((pod.containers[0].env as K8s[]).map((e) => [e.name, e.value]));
    const sent = await sendGenAiTraces(`http://127.0.0.1:${front!.http}/v1/traces`, appEnv.OTEL_SERVICE_NAME, N);
    expect(sent.spans).toHaveLength(3 * N);
    await waitFor(() => {
      const { spans, logs } = sinkContents(capture);
      return spans.length >= 4 * N && logs.length >= N;
    }, 60_000, 'the spans and assessments at the sink');
    const got = sinkContents(capture);
    expectIntact(sent, got.spans, 'chat-app');
    expectAssessments(sent, got);
    const status = readFileSync(`/proc/${sc!.pid}/status`, 'utf8');
    console.log(`deploy e2e: the sidecar's peak RSS after ${N} traces: ${Number(/VmHWM:\s+(\d+)/.exec(status)![1]) >> 10} MiB`);
  }, 120_000);

  it('drains and exits 0 on SIGTERM, as the kubelet stops it', async () => {
    if (!tools) return;
    sc!.kill('SIGTERM');
    expect(await scExit).toBe(0);
    expect(scOut).not.toMatch(/"level":"error"/);
  });
});
