{{/*
Credentials. In production they come from a Secret that exists before the release
(existingSecret: the chart's own value, else global.existingSecret) and the chart renders no
Secret at all. Only when both are empty does the chart create <fullname>-dev-credentials from
values (secret.<KEY>, else global.devSecret.<KEY>, each rendered with tpl so that it can name
this release's services): a convenience for development and evaluation, never for production.
global.allowDevSecret: false turns that fallback into an error.
*/}}

{{- define "allot-common.existingSecret" -}}
{{- .Values.existingSecret | default .Values.global.existingSecret | default "" -}}
{{- end -}}

{{- define "allot-common.secretName" -}}
{{- include "allot-common.existingSecret" . | default (printf "%s-dev-credentials" (include "allot-common.fullname" .)) -}}
{{- end -}}

{{/* env entries for the spec's secret keys, then its optional ones; (dict "ctx" $ "spec" $spec). */}}
{{- define "allot-common.secretEnv" -}}
{{- $name := include "allot-common.secretName" .ctx -}}
{{- range .spec.secretKeys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ . }}
{{- end }}
{{- range .spec.optionalSecretKeys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ . }}
      optional: true
{{- end }}
{{- end -}}

{{/* The dev-only Secret; (dict "ctx" $ "spec" $spec). Renders nothing when an existingSecret is set. */}}
{{- define "allot-common.devSecret" -}}
{{- $ctx := .ctx -}}
{{- if not (include "allot-common.existingSecret" $ctx) -}}
{{- if eq (toString $ctx.Values.global.allowDevSecret) "false" -}}
{{- fail (printf "%s: no existingSecret is set and global.allowDevSecret is false: create a Secret with the keys %s and set existingSecret (or global.existingSecret)" (include "allot-common.name" $ctx) (join ", " .spec.secretKeys)) -}}
{{- end -}}
{{- $values := merge (deepCopy ($ctx.Values.secret | default dict)) (deepCopy ($ctx.Values.global.devSecret | default dict)) -}}
{{- $chart := include "allot-common.name" $ctx -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "allot-common.secretName" $ctx }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "allot-common.labels" (dict "ctx" $ctx) | nindent 4 }}
  annotations:
    allot.dev/purpose: "development only: created from values because no existingSecret is set"
type: Opaque
data:
  {{- range .spec.secretKeys }}
  {{- $value := index $values . | default "" | toString }}
  {{- $message := printf "%s: no existingSecret is set, so secret.%s (or global.devSecret.%s) is required; in production create a Secret with the keys %s and set existingSecret" $chart . . (join ", " $.spec.secretKeys) }}
  {{ . }}: {{ required $message (tpl $value $ctx) | b64enc | quote }}
  {{- end }}
  {{- range $key := .spec.optionalSecretKeys }}
  {{- with index $values $key }}
  {{ $key }}: {{ tpl (toString .) $ctx | b64enc | quote }}
  {{- end }}
  {{- end }}
{{- end -}}
{{- end -}}
