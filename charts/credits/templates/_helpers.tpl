{{/* What credits deploys; see allot-common.serviceChart. */}}
{{- define "credits.spec" -}}
secretKeys: [DATABASE_URL, REDIS_URL, NATS_URL, ALLOT_API_KEY]
# The CA of a rediss:// server whose certificate Node's CAs do not cover (Memorystore's).
optionalSecretKeys: [REDIS_TLS_CA]
backends: [postgres, redis, nats]
ingressFromRelease: true
migrations: true
env: {}
processes:
  - component: server
    values: server
    args: ["server.mjs"]
    autoscaling: true
  - component: worker
    values: worker
    args: ["worker.mjs"]
    autoscaling: true
{{- end -}}
