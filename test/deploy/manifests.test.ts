// deploy/ without a cluster: `helm lint` and `helm template` of the chart for both patterns (and
// with every optional part on), `kustomize build` of every overlay, and every object they produce
// decoded strictly against the Kubernetes API types by deploy/test's checker (unknown fields are
// errors; references between objects must resolve). The config each pod would read — the
// ConfigMap's file with the container's environment overrides — must pass scorecar's own config
// validation, and the Collector recipes must pass the Collector's.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { CHART, check, type DeployTools, deployTools, find, helmEnv, helmTemplate, type K8s, parseManifests, ROOT, run } from '../support/deploy.ts';

const KUBE = '1.34.0';
const values = (name: string): string => `${CHART}/ci/${name}-values.yaml`;
/** Secrets an operator makes outside the manifests (full-values.yaml, the kustomize overlays). */
const EXTERNAL = ['Secret/scorecar-admin', 'Secret/scorecar-postgres', 'Secret/scorecar-otlp-tls', 'Secret/scorecar-secrets'];

/** The config a container would run with: the mounted file, then its literal env overrides. */
function podConfig(objs: K8s[], podSpec: K8s, container: K8s) {
  const mount = (container.volumeMounts as K8s[]).find((m) => m.mountPath === '/etc/scorecar');
  const vol = (podSpec.volumes as K8s[]).find((v) => v.name === mount.name);
  const text = find(objs, 'ConfigMap', vol.configMap.name).data['scorecar.yaml'] as string;
  // Values from Secrets stand in as what such a Secret would hold (the admin token needs none).
  const fromSecret: Record<string, string> = { SCORECAR_STORAGE__POSTGRES__URL: 'postgres://scorecar@db.example:5432/scorecar' };
  const env = Object.fromEntries(
    ((container.env ?? []) as K8s[])
      .map((e) => [e.name as string, e.value !== undefined ? String(e.value) : fromSecret[e.name as string]] as const)
      .filter((e): e is readonly [string, string] => e[1] !== undefined),
  );
  return loadConfig({ text, env });
}

function envOf(container: K8s): Record<string, K8s> {
  return Object.fromEntries(((container.env ?? []) as K8s[]).map((e) => [e.name, e]));
}

function podOf(objs: K8s[], kind: string, name: string): K8s {
  return find(objs, kind, name).spec.template.spec;
}

describe('deploy/ manifests', () => {
  let tools: DeployTools | undefined;
  let tmp: string;
  beforeAll(async () => {
    tools = await deployTools();
    tmp = mkdtempSync(join(tmpdir(), 'scorecar-manifests-'));
  }, 1_800_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  describe('Helm chart', () => {
    it('lints for both patterns and with every option on, and its schema refuses a bad mode', async () => {
      if (!tools) return;
      for (const v of ['gateway', 'sidecar', 'full']) {
        const r = await run(tools.helm, ['lint', '--strict', CHART, '--values', values(v), '--kube-version', KUBE], { env: helmEnv() });
        expect(r.stdout, v).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
      }
      const bad = await run(tools.helm, ['lint', CHART, '--set', 'mode=daemonset', '--kube-version', KUBE], { env: helmEnv() }).then(
        () => '',
        (e: { stdout: string }) => e.stdout,
      );
      expect(bad).toMatch(/mode/);
    });

    it('renders the gateway: Deployment, Services, PDB, CPU autoscaler, probes, a grace period beyond the drain', async () => {
      if (!tools) return;
      const text = await helmTemplate(tools.helm, [values('gateway')], [], KUBE);
      const r = await check(tools.checker, text);
      expect(r.errors).toBe('');
      expect(r.code).toBe(0);
      expect(r.objects.map((o) => `${o.kind}/${o.name}`).sort()).toEqual([
        'ConfigMap/scorecar-config', 'Deployment/scorecar', 'HorizontalPodAutoscaler/scorecar', 'PodDisruptionBudget/scorecar',
        'Secret/scorecar-admin', 'Service/scorecar', 'Service/scorecar-headless', 'ServiceAccount/scorecar',
      ]);
      const objs = parseManifests(text);
      const pod = podOf(objs, 'Deployment', 'scorecar');
      const c = pod.containers[0];
      expect(c.command).toEqual(['node', '/app/bin/scorecar.js']);
      expect(c.args.slice(0, 3)).toEqual(['start', '--config', '/etc/scorecar/scorecar.yaml']);
      const drainS = Number(c.args[c.args.indexOf('--shutdown-timeout') + 1]) / 1000;
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(drainS + c.lifecycle.preStop.sleep.seconds);
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
      expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(find(objs, 'Service', 'scorecar').spec.ports.map((p: K8s) => p.port)).toEqual([4317, 4318, 4320]);
      expect(find(objs, 'HorizontalPodAutoscaler').spec.metrics[0].resource.name).toBe('cpu');
      expect(envOf(c).SCORECAR_ADMIN_TOKEN.valueFrom.secretKeyRef).toEqual({ name: 'scorecar-admin', key: 'admin-token' });
      // Off by default: no shared store, no model keys.
      expect(envOf(c).SCORECAR_STORAGE__POSTGRES__URL).toBeUndefined();
      expect(c.envFrom).toBeUndefined();
      const cfg = podConfig(objs, pod, c);
      expect(cfg.admin.endpoint).toBe('0.0.0.0:4320');
      expect(cfg.storage.dir).toBe('/var/lib/scorecar');
      expect(cfg.scorers.map((s) => s.name)).toEqual(['response_length']);
    });

    it('renders the sidecar: a native sidecar in the app pod, the app exporting to it', async () => {
      if (!tools) return;
      const text = await helmTemplate(tools.helm, [values('sidecar')], [], KUBE);
      const r = await check(tools.checker, text);
      expect(r.errors).toBe('');
      expect(r.objects.map((o) => `${o.kind}/${o.name}`).sort()).toEqual([
        'ConfigMap/scorecar-config', 'Deployment/chat-app', 'Secret/scorecar-admin', 'Service/chat-app-scorecar', 'ServiceAccount/scorecar',
      ]);
      const objs = parseManifests(text);
      const pod = podOf(objs, 'Deployment', 'chat-app');
      const sc = pod.initContainers[0];
      expect(sc.name).toBe('scorecar');
      expect(sc.restartPolicy).toBe('Always');
      expect(sc.startupProbe.httpGet.path).toBe('/readyz');
      const cfg = podConfig(objs, pod, sc);
      expect(cfg.receivers.otlp.http.endpoint).toBe('127.0.0.1:4318');
      expect(cfg.limits.memoryBytes).toBe(128 * 1024 * 1024);
      expect(envOf(pod.containers[0]).OTEL_EXPORTER_OTLP_ENDPOINT.value).toBe('http://localhost:4318');
      expect(envOf(sc).SCORECAR_STORAGE__POSTGRES__URL).toBeUndefined();
    });

    it('keeps a sidecar on the shared store ready through a database outage (the app pod stays in service)', async () => {
      if (!tools) return;
      const text = await helmTemplate(tools.helm, [values('sidecar')], ['postgres.existingSecret=scorecar-postgres'], KUBE);
      const r = await check(tools.checker, text, EXTERNAL);
      expect(r.errors).toBe('');
      const sc = podOf(parseManifests(text), 'Deployment', 'chat-app').initContainers[0];
      expect(envOf(sc).SCORECAR_STORAGE__POSTGRES__URL.valueFrom.secretKeyRef).toEqual({ name: 'scorecar-postgres', key: 'url' });
      expect(envOf(sc).SCORECAR_STORAGE__POSTGRES__REQUIREDFORREADINESS.value).toBe('false');
      const cfg = podConfig(parseManifests(text), podOf(parseManifests(text), 'Deployment', 'chat-app'), sc);
      expect(cfg.storage.postgres).toMatchObject({ url: 'postgres://scorecar@db.example:5432/scorecar', requiredForReadiness: false });
    });

    it('renders every option: Kafka workers, the shared store and TLS from Secrets, model keys, a ServiceMonitor, a claim', async () => {
      if (!tools) return;
      const text = await helmTemplate(tools.helm, [values('full')], [], KUBE);
      const r = await check(tools.checker, text, EXTERNAL);
      expect(r.errors).toBe('');
      expect(r.code).toBe(0);
      const kinds = r.objects.map((o) => `${o.kind}/${o.name}`);
      for (const k of ['Deployment/scorecar-worker', 'HorizontalPodAutoscaler/scorecar-worker', 'ServiceMonitor/scorecar', 'Secret/scorecar-model-keys']) expect(kinds).toContain(k);
      expect(kinds).not.toContain('Secret/scorecar-admin'); // the existing one is used
      const objs = parseManifests(text);
      const pod = podOf(objs, 'Deployment', 'scorecar');
      const c = pod.containers[0];
      expect(envOf(c).SCORECAR_STORAGE__POSTGRES__URL.valueFrom.secretKeyRef).toEqual({ name: 'scorecar-postgres', key: 'url' });
      // A gateway replica without its database is not ready: the Service sends to the others.
      expect(envOf(c).SCORECAR_STORAGE__POSTGRES__REQUIREDFORREADINESS).toBeUndefined();
      expect(c.envFrom).toEqual([{ secretRef: { name: 'scorecar-model-keys' } }]);
      expect(c.volumeMounts).toContainEqual({ name: 'otlp-tls', mountPath: '/etc/scorecar/tls/otlp', readOnly: true });
      expect(pod.volumes).toContainEqual({ name: 'scorecar-data', persistentVolumeClaim: { claimName: 'scorecar-archive' } });
      const cfg = podConfig(objs, pod, c);
      expect(cfg.scoring.mode).toBe('kafka');
      expect(cfg.kafka.brokers).toEqual(['kafka.kafka.svc:9092']);
      const w = podOf(objs, 'Deployment', 'scorecar-worker').containers[0];
      expect(w.args).toEqual(['worker', '--config', '/etc/scorecar/scorecar.yaml']);
      const wcfg = podConfig(objs, podOf(objs, 'Deployment', 'scorecar-worker'), w);
      expect(wcfg.kafka.worker.metricsEndpoint).toBe('0.0.0.0:4321');
    });

    it('NOTES.txt tells how to point an app, for both patterns', async () => {
      if (!tools) return;
      // helm template leaves NOTES.txt out and an install needs a cluster: render it through a
      // copy of the chart where a template passes the file to `tpl`.
      const copy = join(tmp, 'chart');
      cpSync(CHART, copy, { recursive: true });
      cpSync(join(copy, 'templates/NOTES.txt'), join(copy, 'notes.txt'));
      writeFileSync(join(copy, 'templates/notes-check.yaml'), 'notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}\n');
      const notes = async (v: string): Promise<string> => {
        const r = await run(tools!.helm, ['template', 'scorecar', copy, '--values', values(v), '--namespace', 'obs', '--kube-version', KUBE, '--show-only', 'templates/notes-check.yaml'], { env: helmEnv() });
        return JSON.parse(r.stdout.split('notes: ')[1]!) as string;
      };
      const gateway = await notes('gateway');
      expect(gateway).toContain('OTEL_EXPORTER_OTLP_ENDPOINT=http://scorecar.obs.svc:4318');
      expect(gateway).toContain('several replicas without a shared store');
      const sidecar = await notes('sidecar');
      expect(sidecar).toContain('exports to http://localhost:4318');
      expect(sidecar).toContain('helm get manifest scorecar -n obs');
      const full = await notes('full');
      expect(full).toContain('scoring via Kafka (kafka.kafka.svc:9092)');
      expect(full).not.toContain('several replicas without a shared store');
    });

    it('the checker is strict: unknown, miscased and duplicate fields, wrong types, a mount without a volume, a Service that selects nothing are errors', async () => {
      if (!tools) return;
      const text = await helmTemplate(tools.helm, [values('gateway')], [], KUBE);
      const unknown = await check(tools.checker, text.replace('imagePullPolicy: IfNotPresent', 'imagePullPolicy: IfNotPresent\n          imagePullPolicyy: Always'));
      expect(unknown.code).toBe(1);
      expect(unknown.errors).toMatch(/Deployment\/scorecar \(document \d+\): unknown field "spec.template.spec.containers\[0\].imagePullPolicyy"/);
      // Case-sensitive, as the API server: encoding/json alone would accept this one.
      const cased = await check(tools.checker, text.replace('imagePullPolicy: IfNotPresent', 'imagepullpolicy: IfNotPresent'));
      expect(cased.errors).toMatch(/unknown field "spec.template.spec.containers\[0\].imagepullpolicy"/);
      const twice = await check(tools.checker, text.replace('imagePullPolicy: IfNotPresent', 'imagePullPolicy: IfNotPresent\n          imagePullPolicy: Always'));
      expect(twice.errors).toMatch(/"imagePullPolicy" already set/);
      const mount = await check(tools.checker, text.replace('- name: scorecar-tmp\n              mountPath: /tmp', '- name: scratch\n              mountPath: /tmp'));
      expect(mount.errors).toMatch(/mounts volume "scratch"/);
      const typed = await check(tools.checker, text.replace(/averageUtilization: 70/, 'averageUtilization: "seventy"'));
      expect(typed.errors).toMatch(/HorizontalPodAutoscaler\/scorecar .*averageUtilization/);
      const sel = await check(tools.checker, text.replace(/(kind: Service\n[\s\S]*?selector:\n\s+app.kubernetes.io\/name:) scorecar/, '$1 nothing'));
      expect(sel.errors).toMatch(/Service\/scorecar: its selector matches no workload/);
    });
  });

  describe('kustomize overlays', () => {
    const build = async (overlay: string): Promise<string> =>
      (await run(tools!.kustomize, ['build', `${ROOT}deploy/kustomize/overlays/${overlay}`], { maxBuffer: 16 << 20 })).stdout;

    it('sidecar: the app pod with scorecar as a native sidecar and the hashed ConfigMap', async () => {
      if (!tools) return;
      const text = await build('sidecar');
      const r = await check(tools.checker, text, EXTERNAL);
      expect(r.errors).toBe('');
      expect(r.code).toBe(0);
      const objs = parseManifests(text);
      const pod = podOf(objs, 'Deployment', 'chat-app');
      const sc = pod.initContainers[0];
      expect(sc.restartPolicy).toBe('Always');
      const cm = objs.find((o) => o.kind === 'ConfigMap');
      expect(cm.metadata.name).toMatch(/^scorecar-config-[a-z0-9]{10}$/);
      const cfg = podConfig(objs, pod, sc);
      expect(cfg.receivers.otlp.grpc.endpoint).toBe('127.0.0.1:4317');
      expect(cfg.assembler.maxBytes).toBe(64 * 1024 * 1024);
      expect(cfg.scorers).toHaveLength(1);
    });

    it('gateway and gateway-kafka: Deployment, Services, PDB, HPA; Kafka mode with its workers', async () => {
      if (!tools) return;
      const gw = await build('gateway');
      const r = await check(tools.checker, gw, EXTERNAL);
      expect(r.errors).toBe('');
      expect(r.objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service', 'Service', 'ServiceAccount']);
      const gwObjs = parseManifests(gw);
      const pod = podOf(gwObjs, 'Deployment', 'scorecar');
      const c = pod.containers[0];
      const drainS = Number(c.args[c.args.indexOf('--shutdown-timeout') + 1]) / 1000;
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(drainS + c.lifecycle.preStop.sleep.seconds);
      expect(podConfig(gwObjs, pod, c).scoring.mode).toBe('inline');

      const kafka = await build('gateway-kafka');
      const rk = await check(tools.checker, kafka, EXTERNAL);
      expect(rk.errors).toBe('');
      const objs = parseManifests(kafka);
      const gpod = podOf(objs, 'Deployment', 'scorecar');
      const cfg = podConfig(objs, gpod, gpod.containers[0]);
      expect(cfg.scoring.mode).toBe('kafka');
      expect(cfg.kafka.brokers).toEqual(['kafka.kafka.svc.cluster.local:9092']);
      const wpod = podOf(objs, 'Deployment', 'scorecar-worker');
      expect(wpod.containers[0].args[0]).toBe('worker');
      expect(podConfig(objs, wpod, wpod.containers[0]).kafka.brokers).toEqual(cfg.kafka.brokers);
    });
  });

  describe('Collector recipes', () => {
    it('pass the Collector’s own validation, and a broken one does not', async () => {
      if (!tools) return;
      for (const recipe of ['app-to-scorecar.yaml', 'scorecar-to-backend.yaml', 'app-to-kafka.yaml']) {
        const r = await run(tools.otelcol, ['validate', '--config', `${ROOT}deploy/collector/${recipe}`]).then(
          () => '',
          (e: { stderr: string }) => e.stderr,
        );
        expect(r, recipe).toBe('');
      }
      const broken = join(tmp, 'broken.yaml');
      writeFileSync(broken, readFileSync(`${ROOT}deploy/collector/app-to-scorecar.yaml`, 'utf8').replace('compression: gzip', 'compresion: gzip'));
      const r = await run(tools.otelcol, ['validate', '--config', broken]).then(
        () => '',
        (e: { stderr: string }) => e.stderr,
      );
      expect(r).toMatch(/compresion/);
    });

    it('scorecar-kafka.yaml is a valid scorecar config that reads the Collector’s topic', () => {
      const cfg = loadConfig({ file: `${ROOT}deploy/collector/scorecar-kafka.yaml`, env: { KAFKA_BROKERS: 'k1:9092' } });
      expect(cfg.receivers.kafka.enabled).toBe(true);
      expect(cfg.receivers.kafka.topic).toBe('otlp_spans');
      expect(cfg.kafka.brokers).toEqual(['k1:9092']);
    });
  });
});
