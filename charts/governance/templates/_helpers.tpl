{{/* What governance deploys; see allot-common.serviceChart. */}}
{{- define "governance.spec" -}}
secretKeys: [DATABASE_URL, REDIS_URL, NATS_URL, ALLOT_API_KEY]
# The CA of a rediss:// server whose certificate Node's CAs do not cover (Memorystore's).
optionalSecretKeys: [REDIS_TLS_CA]
backends: [postgres, redis, nats]
ingressFromRelease: true
migrations: true
env: {}
processes:
  - component: server
    values: ""
    args: ["server.mjs"]
    autoscaling: true
{{- end -}}
