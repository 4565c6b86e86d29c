{{/* ServiceMonitor (monitoring.coreos.com/v1) scraping one process's /metrics (process context). */}}
{{- define "allot-common.serviceMonitor" -}}
{{- $ctx := .ctx -}}
{{- $sm := $ctx.Values.metrics.serviceMonitor -}}
{{- if $sm.enabled -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ .name }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "allot-common.labels" (dict "ctx" $ctx "component" .process.component) | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "allot-common.selectorLabels" (dict "ctx" $ctx "component" .process.component) | nindent 6 }}
  namespaceSelector:
    matchNames: [{{ $ctx.Release.Namespace | quote }}]
  endpoints:
    - port: http
      path: /metrics
      interval: {{ $sm.interval }}
      scrapeTimeout: {{ $sm.scrapeTimeout }}
{{- end -}}
{{- end -}}

{{/* The chart's ServiceAccount; its token is never mounted (the processes do not call the API server). */}}
{{- define "allot-common.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "allot-common.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "allot-common.labels" (dict "ctx" .) | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end -}}
{{- end -}}
