{{/*
What metering deploys; see allot-common.serviceChart. The worker is one Deployment, or with
worker.partitionSets one per set (worker-0, worker-1, ...), each applying only its partitions
(METERING_TAKE); the first one also turns the gate's settles into usage (METERING_SETTLED_USAGE).
*/}}
{{- define "metering.spec" -}}
{{- $sets := .Values.worker.partitionSets | default list -}}
{{- include "metering.checkPartitionSets" . -}}
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
{{- if $sets }}
{{- range $i, $set := $sets }}
  - component: worker-{{ $i }}
    values: worker
    args: ["worker.mjs"]
    env:
      METERING_TAKE: {{ $set | quote }}
      # Exactly one worker turns the gate's settles into usage events (docs/metering.md).
      METERING_SETTLED_USAGE: {{ eq $i 0 | toString | quote }}
    autoscaling: true
{{- end }}
{{- else }}
  - component: worker
    values: worker
    args: ["worker.mjs"]
    env:
      METERING_TAKE: {{ .Values.worker.take | toJson }}
    autoscaling: true
{{- end }}
{{- end -}}

{{/*
worker.partitionSets must split the partitions 0..partitions-1 between the sets: each partition
in exactly one set, so that every event is applied and no two Deployments take one partition.
*/}}
{{- define "metering.checkPartitionSets" -}}
{{- $sets := .Values.worker.partitionSets | default list -}}
{{- if $sets -}}
{{- $partitions := int .Values.partitions -}}
{{- if not (kindIs "invalid" .Values.worker.take) -}}
{{- fail "metering: set worker.take (one worker) or worker.partitionSets (one worker per set), not both" -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $i, $set := $sets -}}
{{- range $p := splitList "," $set -}}
{{- if ge (int $p) $partitions -}}
{{- fail (printf "metering: worker.partitionSets[%d] (%s) names partition %s, but partitions (METERING_PARTITIONS) is %d: they go from 0 to %d" $i $set $p $partitions (sub $partitions 1)) -}}
{{- end -}}
{{- if hasKey $seen (toString (int $p)) -}}
{{- fail (printf "metering: partition %s is in two of worker.partitionSets; each belongs to one set" $p) -}}
{{- end -}}
{{- $_ := set $seen (toString (int $p)) true -}}
{{- end -}}
{{- end -}}
{{- $missing := list -}}
{{- range $p := until $partitions -}}
{{- if not (hasKey $seen (toString $p)) }}{{ $missing = append $missing (toString $p) }}{{ end -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "metering: worker.partitionSets leave partitions %s to no worker; together the sets must take 0 to %d" (join "," $missing) (sub $partitions 1)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
