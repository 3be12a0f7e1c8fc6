// deploy-check decodes Kubernetes manifests strictly against the Kubernetes API types, the way
// the API server's strict field validation does: every document must be a kind this checker
// knows (k8s.io/api, and the Prometheus Operator's ServiceMonitor), and an unknown or duplicate
// field, or a value of the wrong type, is an error. It then checks what holds a set of objects
// together and that a cluster would only report at run time: volume mounts name declared
// volumes, probes and Services name declared ports, selectors of Services, PodDisruptionBudgets
// and HorizontalPodAutoscalers find their workload, and ConfigMaps and Secrets a pod refers to
// are in the set (unless marked optional).
//
// Usage: deploy-check [-external Kind/name]... FILE...   ("-" reads stdin); each file is one YAML
// stream (helm template or kustomize build output). -external names an object made outside the
// manifests (a Secret the operator creates) that they may refer to. Prints one JSON line
// {kind, apiVersion, name, namespace} per object; errors go to stderr and make the exit status 1.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

var scheme = runtime.NewScheme()

func init() {
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme, batchv1.AddToScheme,
		networkingv1.AddToScheme, policyv1.AddToScheme, rbacv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
}

type object struct {
	source string
	gvk    schema.GroupVersionKind
	obj    runtime.Object
	meta   metav1.Object
}

// decode splits a YAML stream and decodes each non-empty document strictly into its API type.
func decode(source string, r io.Reader) ([]object, []error) {
	var out []object
	var errs []error
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", source, i, err))
			break
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", source, i, err))
			continue
		}
		gv, err := schema.ParseGroupVersion(head.APIVersion)
		if err != nil || head.Kind == "" {
			errs = append(errs, fmt.Errorf("%s: document %d: missing or bad apiVersion/kind (%q, %q)", source, i, head.APIVersion, head.Kind))
			continue
		}
		gvk := gv.WithKind(head.Kind)
		typed, err := scheme.New(gvk)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %s is not a kind this checker knows: %w", source, i, gvk, err))
			continue
		}
		// As the API server decodes with strict field validation: YAML to JSON refusing duplicate
		// keys, then case-sensitive JSON decoding where an unknown or duplicate field is an error
		// (encoding/json alone would take `imagepullpolicy` for imagePullPolicy).
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s (document %d): %w", source, gvk.Kind, i, err))
			continue
		}
		strict, err := kjson.UnmarshalStrict(j, typed, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
		if err == nil && len(strict) > 0 {
			err = errors.Join(strict...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s/%s (document %d): %w", source, gvk.Kind, nameOf(j), i, err))
			continue
		}
		m, ok := typed.(metav1.Object)
		if !ok || m.GetName() == "" {
			errs = append(errs, fmt.Errorf("%s: %s (document %d): metadata.name is empty", source, gvk.Kind, i))
			continue
		}
		out = append(out, object{source: source, gvk: gvk, obj: typed, meta: m})
	}
	return out, errs
}

// nameOf reads metadata.name for error messages, before the object is known to decode.
func nameOf(j []byte) string {
	var m struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(j, &m)
	return m.Metadata.Name
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// workload is a pod template with the labels that select it.
type workload struct {
	ref      string
	kind     string
	name     string
	labels   map[string]string
	template *corev1.PodTemplateSpec
}

func workloads(objs []object) []workload {
	var out []workload
	for _, o := range objs {
		switch t := o.obj.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{"Deployment/" + t.Name, "Deployment", t.Name, t.Spec.Template.Labels, &t.Spec.Template})
		case *appsv1.StatefulSet:
			out = append(out, workload{"StatefulSet/" + t.Name, "StatefulSet", t.Name, t.Spec.Template.Labels, &t.Spec.Template})
		case *appsv1.DaemonSet:
			out = append(out, workload{"DaemonSet/" + t.Name, "DaemonSet", t.Name, t.Spec.Template.Labels, &t.Spec.Template})
		case *batchv1.Job:
			out = append(out, workload{"Job/" + t.Name, "Job", t.Name, t.Spec.Template.Labels, &t.Spec.Template})
		}
	}
	return out
}

func checkPod(ref string, spec *corev1.PodSpec, names map[string]bool) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(ref+": "+format, a...)) }
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		if volumes[v.Name] {
			fail("volume %q declared twice", v.Name)
		}
		volumes[v.Name] = true
		if v.ConfigMap != nil && !names["ConfigMap/"+v.ConfigMap.Name] && (v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional) {
			fail("volume %q: ConfigMap %q is not in the manifests", v.Name, v.ConfigMap.Name)
		}
		if v.Secret != nil && !names["Secret/"+v.Secret.SecretName] && (v.Secret.Optional == nil || !*v.Secret.Optional) {
			// Secrets are often made outside the chart (TLS, model keys): those must be optional
			// or made by the same manifests, so a missing one is visible here.
			fail("volume %q: Secret %q is not in the manifests and not optional", v.Name, v.Secret.SecretName)
		}
	}
	containers := map[string]bool{}
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for i, c := range all {
		init := i < len(spec.InitContainers)
		if containers[c.Name] {
			fail("container name %q used twice", c.Name)
		}
		containers[c.Name] = true
		if c.Image == "" {
			fail("container %q has no image", c.Name)
		}
		if c.RestartPolicy != nil && (!init || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
			fail("container %q: restartPolicy is only allowed as Always on an init container (a native sidecar)", c.Name)
		}
		ports := map[string]int32{}
		for _, p := range c.Ports {
			if p.ContainerPort < 1 || p.ContainerPort > 65535 {
				fail("container %q: port %d out of range", c.Name, p.ContainerPort)
			}
			if p.Name != "" {
				if len(p.Name) > 15 {
					fail("container %q: port name %q longer than 15 characters", c.Name, p.Name)
				}
				ports[p.Name] = p.ContainerPort
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				fail("container %q mounts volume %q, which the pod does not declare", c.Name, m.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil && !names["Secret/"+r.Name] && (r.Optional == nil || !*r.Optional) {
				fail("container %q env %s: Secret %q is not in the manifests and not optional", c.Name, e.Name, r.Name)
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil && !names["ConfigMap/"+r.Name] && (r.Optional == nil || !*r.Optional) {
				fail("container %q env %s: ConfigMap %q is not in the manifests", c.Name, e.Name, r.Name)
			}
		}
		for _, ef := range c.EnvFrom {
			if r := ef.SecretRef; r != nil && !names["Secret/"+r.Name] && (r.Optional == nil || !*r.Optional) {
				fail("container %q envFrom: Secret %q is not in the manifests and not optional", c.Name, r.Name)
			}
		}
		for kind, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
			if p == nil {
				continue
			}
			if init && c.RestartPolicy == nil {
				fail("container %q: a plain init container cannot have a %s probe", c.Name, kind)
			}
			if p.HTTPGet != nil && p.HTTPGet.Port.Type == 1 { // a named port
				if _, ok := ports[p.HTTPGet.Port.StrVal]; !ok {
					fail("container %q: %s probe names port %q, which it does not declare", c.Name, kind, p.HTTPGet.Port.StrVal)
				}
			}
		}
	}
	return errs
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func check(objs []object, external []string) []error {
	var errs []error
	names := map[string]bool{}
	for _, o := range objs {
		key := o.gvk.Kind + "/" + o.meta.GetName()
		if names[key] {
			errs = append(errs, fmt.Errorf("%s: %s appears twice", o.source, key))
		}
		names[key] = true
	}
	for _, e := range external {
		names[e] = true
	}
	wls := workloads(objs)
	for _, w := range wls {
		errs = append(errs, checkPod(w.ref, &w.template.Spec, names)...)
	}
	selects := func(sel labels.Selector) []workload {
		var hit []workload
		for _, w := range wls {
			if sel.Matches(labels.Set(w.labels)) {
				hit = append(hit, w)
			}
		}
		return hit
	}
	for _, o := range objs {
		switch t := o.obj.(type) {
		case *appsv1.Deployment:
			sel, err := metav1.LabelSelectorAsSelector(t.Spec.Selector)
			if err != nil || t.Spec.Selector == nil || !sel.Matches(labels.Set(t.Spec.Template.Labels)) {
				errs = append(errs, fmt.Errorf("Deployment/%s: its selector does not match its pod template", t.Name))
			}
		case *corev1.Service:
			if len(t.Spec.Selector) == 0 {
				errs = append(errs, fmt.Errorf("Service/%s: no selector", t.Name))
				continue
			}
			hit := selects(labels.SelectorFromSet(t.Spec.Selector))
			if len(hit) == 0 {
				errs = append(errs, fmt.Errorf("Service/%s: its selector matches no workload", t.Name))
			}
			for _, p := range t.Spec.Ports {
				if p.TargetPort.Type != 1 {
					continue
				}
				for _, w := range hit {
					if !declaresPort(w.template, p.TargetPort.StrVal) {
						errs = append(errs, fmt.Errorf("Service/%s: targetPort %q is not a port of %s", t.Name, p.TargetPort.StrVal, w.ref))
					}
				}
			}
		case *policyv1.PodDisruptionBudget:
			sel, err := metav1.LabelSelectorAsSelector(t.Spec.Selector)
			if err != nil || len(selects(sel)) == 0 {
				errs = append(errs, fmt.Errorf("PodDisruptionBudget/%s: its selector matches no workload", t.Name))
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			if !names[t.Spec.ScaleTargetRef.Kind+"/"+t.Spec.ScaleTargetRef.Name] {
				errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler/%s: scale target %s/%s is not in the manifests", t.Name, t.Spec.ScaleTargetRef.Kind, t.Spec.ScaleTargetRef.Name))
			}
			for _, w := range wls {
				if w.kind == t.Spec.ScaleTargetRef.Kind && w.name == t.Spec.ScaleTargetRef.Name {
					for _, m := range t.Spec.Metrics {
						if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && !allRequest(w.template, corev1.ResourceCPU) {
							errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler/%s: CPU utilisation needs a CPU request on every container of %s", t.Name, w.ref))
						}
					}
				}
			}
		case *monitoringv1.ServiceMonitor:
			if len(t.Spec.Endpoints) == 0 {
				errs = append(errs, fmt.Errorf("ServiceMonitor/%s: no endpoints", t.Name))
			}
		}
	}
	return errs
}

func declaresPort(t *corev1.PodTemplateSpec, name string) bool {
	for _, c := range append(append([]corev1.Container{}, t.Spec.InitContainers...), t.Spec.Containers...) {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

func allRequest(t *corev1.PodTemplateSpec, r corev1.ResourceName) bool {
	for _, c := range append(append([]corev1.Container{}, t.Spec.InitContainers...), t.Spec.Containers...) {
		if _, ok := c.Resources.Requests[r]; !ok {
			return false
		}
	}
	return true
}

func main() {
	var external list
	flag.Var(&external, "external", "Kind/name of an object made outside the manifests (repeatable)")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: deploy-check [-external Kind/name]... FILE... (- for stdin)")
		os.Exit(2)
	}
	var errs []error
	var objs []object
	for _, path := range flag.Args() {
		var r io.Reader = os.Stdin
		if path != "-" {
			f, err := os.Open(path)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			defer f.Close()
			r = f
		}
		o, e := decode(path, r)
		objs = append(objs, o...)
		errs = append(errs, e...)
	}
	errs = append(errs, check(objs, external)...)
	enc := json.NewEncoder(os.Stdout)
	for _, o := range objs {
		_ = enc.Encode(map[string]string{"kind": o.gvk.Kind, "apiVersion": o.gvk.GroupVersion().String(), "name": o.meta.GetName(), "namespace": o.meta.GetNamespace()})
	}
	for _, e := range errs {
		fmt.Fprintln(os.Stderr, "error:", e)
	}
	if len(errs) > 0 {
		os.Exit(1)
	}
}
