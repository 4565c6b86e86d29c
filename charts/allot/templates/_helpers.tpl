{{/* Labels of the dev backends; (dict "ctx" $ "name" "postgres"). */}}
{{- define "allot.devBackendSelectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: dev-backend
{{- end -}}

{{- define "allot.devBackendLabels" -}}
helm.sh/chart: {{ include "allot-common.chart" .ctx }}
{{ include "allot.devBackendSelectorLabels" . }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: allot
{{- end -}}

{{/*
The fullname a component chart gives itself, for NOTES; (dict "ctx" $ "key" "controlPlane").
Mirrors allot-common.fullname on the subchart's values (an alias is the subchart's .Chart.Name).
*/}}
{{- define "allot.componentFullname" -}}
{{- include "allot-common.fullname" (dict "Values" (index .ctx.Values .key) "Chart" (dict "Name" .key) "Release" .ctx.Release) -}}
{{- end -}}

{{/* Security settings of the dev backends' pods (official images, their own non-root users). */}}
{{- define "allot.devContainerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
