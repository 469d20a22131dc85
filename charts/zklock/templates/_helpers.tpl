{{/* Names and labels of the example's objects. */}}

{{- define "zklock.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end }}

{{- define "zklock.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-example
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "zklock.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "zklock.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "zklock.example.serviceAccountName" -}}
{{- if .Values.example.serviceAccount.create -}}
{{- .Values.example.serviceAccount.name | default (include "zklock.fullname" .) -}}
{{- else -}}
{{- .Values.example.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end }}

{{/* Names and labels of the metrics Service, the monitors and the rules. */}}

{{- define "zklock.metrics.name" -}}
{{- printf "%s-metrics" (include "zklock.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{- define "zklock.metrics.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: metrics
{{- end }}

{{- define "zklock.metrics.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "zklock.metrics.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
