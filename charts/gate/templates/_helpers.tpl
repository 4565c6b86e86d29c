{{/* What the gate deploys; see allot-common.serviceChart. */}}
{{- define "gate.spec" -}}
secretKeys: [DATABASE_URL, REDIS_URL, NATS_URL, ALLOT_API_KEY]
# The CA of a rediss:// server whose certificate Node's CAs do not cover (Memorystore's).
optionalSecretKeys: [REDIS_TLS_CA]
backends: [postgres, redis, nats]
ingressFromRelease: true
# The gate migrates the config store and the governance tables it decides on.
migrations: true
env:
  ALLOT_FAIL_OPEN: {{ .Values.failOpen | quote }}
processes:
  - component: server
    values: ""
    args: ["server.mjs"]
    autoscaling: true
{{- end -}}
