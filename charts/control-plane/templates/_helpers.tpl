{{/* What the control plane deploys; see allot-common.serviceChart. */}}
{{- define "control-plane.spec" -}}
secretKeys: [DATABASE_URL, ALLOT_HUB_PASSWORD, ALLOT_API_KEY]
backends: [postgres, hub]
ingressFromRelease: true
migrations: true
env:
  ALLOT_HUB_URL: {{ required "control-plane: hub.url (ALLOT_HUB_URL, nats:// or tls://) is required" (tpl .Values.hub.url .) | quote }}
  ALLOT_HUB_USER: {{ .Values.hub.user | quote }}
  ALLOT_HUB_PUBLIC_URL: {{ with .Values.hub.publicUrl }}{{ tpl . $ | quote }}{{ else }}null{{ end }}
processes:
  - component: server
    values: ""
    args: ["server.mjs"]
    autoscaling: true
{{- end -}}
