{{/*
HorizontalPodAutoscaler (autoscaling/v2) of one process, when enabled and allowed (process
context). maxReplicas is raised to minReplicas when below it, so that raising the minimum alone
(as the CDKTF stacks do for a replica count) never renders an HPA the API server refuses.
*/}}
{{- define "allot-common.hpa" -}}
{{- if include "allot-common.autoscaled" . -}}
{{- $ctx := .ctx -}}
{{- $a := .values.autoscaling -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .name }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "allot-common.labels" (dict "ctx" $ctx "component" .process.component) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .name }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ max (int $a.minReplicas) (int $a.maxReplicas) }}
  metrics:
    {{- with $a.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with $a.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- with $a.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
PodDisruptionBudget (policy/v1) of one process, only when it runs more than one replica: with a
single replica any budget would either block node drains or promise nothing.
*/}}
{{- define "allot-common.pdb" -}}
{{- $pdb := .values.pdb -}}
{{- if and $pdb $pdb.enabled (gt (int (include "allot-common.minReplicas" .)) 1) -}}
{{- $ctx := .ctx -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "allot-common.labels" (dict "ctx" $ctx "component" .process.component) | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $pdb.minAvailable) }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "allot-common.selectorLabels" (dict "ctx" $ctx "component" .process.component) | nindent 6 }}
{{- end -}}
{{- end -}}
