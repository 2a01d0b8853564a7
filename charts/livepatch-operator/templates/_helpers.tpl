{{/*
Names, labels and the image, shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "livepatch-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: fullnameOverride, else "<release>-<chart>",
else just the release name when it already contains the chart name. Kept
short enough for the "-controller" and "-agent" suffixes.
*/}}
{{- define "livepatch-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "livepatch-operator.controller.fullname" -}}
{{- printf "%s-controller" (include "livepatch-operator.fullname" .) }}
{{- end }}

{{- define "livepatch-operator.agent.fullname" -}}
{{- printf "%s-agent" (include "livepatch-operator.fullname" .) }}
{{- end }}

{{- define "livepatch-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "livepatch-operator.labels" -}}
helm.sh/chart: {{ include "livepatch-operator.chart" . }}
app.kubernetes.io/name: {{ include "livepatch-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: livepatch-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels; never change them, a Deployment's selector is immutable. */}}
{{- define "livepatch-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "livepatch-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "livepatch-operator.controller.labels" -}}
{{ include "livepatch-operator.labels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "livepatch-operator.controller.selectorLabels" -}}
{{ include "livepatch-operator.selectorLabels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "livepatch-operator.agent.labels" -}}
{{ include "livepatch-operator.labels" . }}
app.kubernetes.io/component: agent
{{- end }}

{{- define "livepatch-operator.agent.selectorLabels" -}}
{{ include "livepatch-operator.selectorLabels" . }}
app.kubernetes.io/component: agent
{{- end }}

{{- define "livepatch-operator.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "livepatch-operator.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "livepatch-operator.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create }}
{{- default (include "livepatch-operator.agent.fullname" .) .Values.agent.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is set. */}}
{{- define "livepatch-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The one namespace the agents read module ConfigMaps from. */}}
{{- define "livepatch-operator.moduleNamespace" -}}
{{- default .Release.Namespace .Values.modules.configMapNamespace }}
{{- end }}
