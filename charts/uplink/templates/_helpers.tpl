{{/* What the uplink deploys; see allot-common.serviceChart. */}}
{{- define "uplink.spec" -}}
secretKeys: [DATABASE_URL, NATS_URL, ALLOT_UPLINK_PASSWORD]
# Not in the deploy contract's uplink keys, but services/allot/src/uplink-main.ts reads it
# (grants that come down go through the credits engine): passed on when the Secret has it, with
# the CA of a rediss:// server that Node's CAs do not cover (Memorystore's).
optionalSecretKeys: [REDIS_URL, REDIS_TLS_CA]
backends: [postgres, redis, nats, hub]
# Nothing inbound: the uplink only dials out (networkPolicy.ingressFrom may admit Prometheus).
ingressFromRelease: false
migrations: true
env:
  ALLOT_UPLINK_URL: {{ required "uplink: url (ALLOT_UPLINK_URL, the hub: nats:// or tls://) is required" (tpl .Values.url .) | quote }}
  ALLOT_UPLINK_USER: {{ .Values.user | default (include "allot-common.tenant" .) | quote }}
processes:
  - component: agent
    values: ""
    args: ["uplink.mjs"]
    # Exactly one agent: no HPA, and Recreate so that a rollout never runs two.
    autoscaling: false
    strategy: Recreate
{{- end -}}
