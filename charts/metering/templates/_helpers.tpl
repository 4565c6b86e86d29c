{{/* What metering deploys; see allot-common.serviceChart. */}}
{{- define "metering.spec" -}}
secretKeys: [DATABASE_URL, NATS_URL, ALLOT_API_KEY]
backends: [postgres, nats]
ingressFromRelease: true
migrations: true
env:
  # Every ingest and worker process must agree on it.
  METERING_PARTITIONS: {{ .Values.partitions | quote }}
processes:
  - component: server
    values: server
    args: ["server.mjs"]
    # The aggregation runs in the worker Deployment, not inside the server.
    env:
      METERING_WORKER: "false"
    autoscaling: true
  - component: worker
    values: worker
    args: ["worker.mjs"]
    env:
      METERING_TAKE: {{ .Values.worker.take | toJson }}
    autoscaling: true
{{- end -}}
