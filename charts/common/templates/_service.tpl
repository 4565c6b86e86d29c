{{/* The Service of one process (process context, see allot-common.deployment). */}}
{{- define "allot-common.service" -}}
{{- $ctx := .ctx -}}
{{- $component := .process.component -}}
{{- $server := .primary -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "allot-common.labels" (dict "ctx" $ctx "component" $component) | nindent 4 }}
  {{- if and $server $ctx.Values.service.annotations }}
  annotations:
    {{- toYaml $ctx.Values.service.annotations | nindent 4 }}
  {{- end }}
spec:
  {{- /* only the first process is exposed as configured; a worker's Service is for metrics */}}
  type: {{ ternary $ctx.Values.service.type "ClusterIP" $server }}
  selector:
    {{- include "allot-common.selectorLabels" (dict "ctx" $ctx "component" $component) | nindent 4 }}
  ports:
    - name: http
      port: {{ ternary $ctx.Values.service.port 8080 $server }}
      targetPort: http
      protocol: TCP
{{- end -}}
