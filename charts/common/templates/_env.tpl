{{/*
Plain configuration of every process of a chart, in one ConfigMap (<fullname>-env): the contract's
PORT, NODE_ENV, LOG_LEVEL and ALLOT_TENANT, the chart's own variables (spec.env) and extraEnv.
Pods carry its checksum so that a change rolls them.
*/}}

{{- define "allot-common.configMapName" -}}
{{- printf "%s-env" (include "allot-common.fullname" .) -}}
{{- end -}}

{{/* (dict "ctx" $ "spec" $spec) */}}
{{- define "allot-common.configMap" -}}
{{- $ctx := .ctx -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "allot-common.configMapName" $ctx }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "allot-common.labels" (dict "ctx" $ctx) | nindent 4 }}
data:
  PORT: "8080"
  NODE_ENV: "production"
  LOG_LEVEL: {{ $ctx.Values.logLevel | quote }}
  ALLOT_TENANT: {{ include "allot-common.tenant" $ctx | quote }}
  {{- range $key, $value := .spec.env }}
  {{- if not (kindIs "invalid" $value) }}
  {{ $key }}: {{ $value | toString | quote }}
  {{- end }}
  {{- end }}
  {{- range $key, $value := $ctx.Values.extraEnv }}
  {{ $key }}: {{ tpl ($value | toString) $ctx | quote }}
  {{- end }}
{{- end -}}
