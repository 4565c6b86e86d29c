{{/*
Plain configuration of every process of a chart, in one ConfigMap (<fullname>-env): the contract's
PORT, NODE_ENV, LOG_LEVEL and ALLOT_TENANT, how to use the backends the chart names (REDIS_CLUSTER
from global.redis.cluster, NATS_REPLICAS from global.nats.replicas), the chart's own variables
(spec.env) and extraEnv. Pods carry its checksum so that a change rolls them.
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
  {{- if has "redis" .spec.backends }}
  {{- /* REDIS_URL is then a seed node or the configuration endpoint of a Redis Cluster */}}
  REDIS_CLUSTER: {{ dig "redis" "cluster" false $ctx.Values.global | toString | quote }}
  {{- end }}
  {{- if has "nats" .spec.backends }}
  {{- /* replicas of every JetStream stream and KV bucket: 3 on a JetStream cluster */}}
  NATS_REPLICAS: {{ dig "nats" "replicas" 1 $ctx.Values.global | int | toString | quote }}
  {{- end }}
  {{- range $key, $value := .spec.env }}
  {{- if not (kindIs "invalid" $value) }}
  {{ $key }}: {{ $value | toString | quote }}
  {{- end }}
  {{- end }}
  {{- range $key, $value := $ctx.Values.extraEnv }}
  {{ $key }}: {{ tpl ($value | toString) $ctx | quote }}
  {{- end }}
{{- end -}}
