{{/* What mcp deploys; see allot-common.serviceChart. */}}
{{- define "mcp.spec" -}}
secretKeys: [DATABASE_URL, REDIS_URL, NATS_URL, ALLOT_API_KEY]
# The CA of a rediss:// server whose certificate Node's CAs do not cover (Memorystore's).
optionalSecretKeys: [REDIS_TLS_CA]
backends: [postgres, redis, nats, api]
ingressFromRelease: true
# No tables of its own, and no migrate.mjs in the image (scripts/bundle.ts).
migrations: false
env:
  ALLOT_GATE_URL: {{ required "mcp: gateUrl (ALLOT_GATE_URL, the gate's http:// URL) is required" (tpl .Values.gateUrl .) | quote }}
  ALLOT_CREDITS_URL: {{ with .Values.creditsUrl }}{{ tpl . $ | quote }}{{ else }}null{{ end }}
  ALLOT_METERING_URL: {{ with .Values.meteringUrl }}{{ tpl . $ | quote }}{{ else }}null{{ end }}
processes:
  - component: server
    values: ""
    args: ["server.mjs"]
    autoscaling: true
{{- end -}}
