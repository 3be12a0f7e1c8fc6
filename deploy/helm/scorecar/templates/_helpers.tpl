{{/* Names and labels. */}}
{{- define "scorecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "scorecar.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "scorecar.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "scorecar.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "scorecar.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "scorecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component (gateway, worker). */}}
{{- define "scorecar.selector" -}}
app.kubernetes.io/name: {{ include "scorecar.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "scorecar.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "scorecar.adminSecretName" -}}
{{- .Values.adminToken.existingSecret | default (printf "%s-admin" (include "scorecar.fullname" .)) }}
{{- end }}

{{- define "scorecar.modelKeysSecretName" -}}
{{- .Values.modelKeys.existingSecret | default (printf "%s-model-keys" (include "scorecar.fullname" .)) }}
{{- end }}

{{/* The config file: values.config with the scorers and the Kafka settings merged in. */}}
{{- define "scorecar.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- if .Values.scorers }}
{{- $_ := set $cfg "scorers" .Values.scorers }}
{{- end }}
{{- if .Values.kafka.enabled }}
{{- if not .Values.kafka.brokers }}
{{- fail "kafka.enabled needs kafka.brokers" }}
{{- end }}
{{- $scoring := get $cfg "scoring" | default dict }}
{{- $_ := set $scoring "mode" "kafka" }}
{{- $_ := set $cfg "scoring" $scoring }}
{{- $kafka := get $cfg "kafka" | default dict }}
{{- $_ := set $kafka "brokers" .Values.kafka.brokers }}
{{- $_ := set $cfg "kafka" $kafka }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Environment shared by the scorecar containers: the admin token, the shared store. */}}
{{- define "scorecar.env" -}}
- name: SCORECAR_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "scorecar.adminSecretName" . }}
      key: {{ .Values.adminToken.key }}
{{- if .Values.postgres.existingSecret }}
- name: SCORECAR_STORAGE__POSTGRES__URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.postgres.existingSecret }}
      key: {{ .Values.postgres.key }}
{{- if eq .Values.mode "sidecar" }}
{{- /* A database outage must not take the app's pod out of service with its sidecar. */}}
- name: SCORECAR_STORAGE__POSTGRES__REQUIREDFORREADINESS
  value: "false"
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "scorecar.envFrom" -}}
{{- if or .Values.modelKeys.existingSecret .Values.modelKeys.values }}
envFrom:
  - secretRef:
      name: {{ include "scorecar.modelKeysSecretName" . }}
{{- end }}
{{- end }}

{{- define "scorecar.probes" -}}
startupProbe:
  httpGet: { path: /readyz, port: admin }
  periodSeconds: 1
  failureThreshold: 60
readinessProbe:
  httpGet: { path: /readyz, port: admin }
  periodSeconds: 5
livenessProbe:
  httpGet: { path: /healthz, port: admin }
  periodSeconds: 10
  failureThreshold: 3
{{- end }}

{{- define "scorecar.volumeMounts" -}}
- name: scorecar-config
  mountPath: /etc/scorecar
  readOnly: true
- name: scorecar-data
  mountPath: /var/lib/scorecar
- name: scorecar-tmp
  mountPath: /tmp
{{- range .Values.tls.secrets }}
- name: {{ .name }}
  mountPath: {{ .mountPath }}
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "scorecar.volumes" -}}
- name: scorecar-config
  configMap:
    name: {{ include "scorecar.fullname" . }}-config
- name: scorecar-data
{{- if .Values.storage.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.storage.existingClaim }}
{{- else }}
  emptyDir:
    sizeLimit: {{ .Values.storage.sizeLimit }}
{{- end }}
- name: scorecar-tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- range .Values.tls.secrets }}
- name: {{ .name }}
  secret:
    secretName: {{ .secretName }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod annotations: a config or secret change rolls the pods. */}}
{{- define "scorecar.podAnnotations" -}}
checksum/config: {{ include "scorecar.config" . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}
