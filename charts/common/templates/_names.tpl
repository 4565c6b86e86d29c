{{/*
Names and labels. Every Allot chart calls these with its root context; the chart name is
kebab-cased because the umbrella aliases control-plane as controlPlane (an alias becomes
.Chart.Name, and object names must be DNS labels).
*/}}

{{- define "allot-common.name" -}}
{{- default .Chart.Name .Values.nameOverride | kebabcase | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "allot-common.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "allot-common.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "allot-common.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of one process's objects: the chart's first process keeps the fullname, the others
get their component as a suffix. (dict "ctx" $ "component" "worker" "primary" false)
*/}}
{{- define "allot-common.processName" -}}
{{- $fullname := include "allot-common.fullname" .ctx -}}
{{- if .primary -}}
{{- $fullname -}}
{{- else -}}
{{- printf "%s-%s" ($fullname | trunc (int (sub 62 (len .component)))) .component | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels; (dict "ctx" $ "component" "server"). */}}
{{- define "allot-common.selectorLabels" -}}
app.kubernetes.io/name: {{ include "allot-common.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* Labels of every object; (dict "ctx" $ "component" "server"), component optional. */}}
{{- define "allot-common.labels" -}}
helm.sh/chart: {{ include "allot-common.chart" .ctx }}
{{ include "allot-common.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: allot
{{- end -}}

{{- define "allot-common.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "allot-common.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "allot-common.image" -}}
{{- $registry := default .Values.image.registry .Values.global.imageRegistry -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s/%s@%s" $registry .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s/%s:%s" $registry .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "allot-common.imagePullSecrets" -}}
{{- $secrets := concat (.Values.global.imagePullSecrets | default list) (.Values.imagePullSecrets | default list) | uniq -}}
{{- with $secrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The tenant id of this deployment: the chart's own value, else global.tenant, else "default". */}}
{{- define "allot-common.tenant" -}}
{{- .Values.tenant | default .Values.global.tenant | default "default" -}}
{{- end -}}
