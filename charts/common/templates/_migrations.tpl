{{/*
The migration Job: the chart's image with args ["migrate.mjs"], which applies the service's
database migrations and exits 0. It is a Helm hook so that an upgrade migrates before any new
pod starts (pre-upgrade), and a first install migrates before the Deployments exist
(pre-install).

One exception: when the chart creates its own dev-only Secret (no existingSecret), that Secret -
and, in the umbrella, the dev PostgreSQL - are ordinary release objects, which Helm creates only
after the pre-install hooks; the first install then migrates post-install instead (the services
wait on /readyz meanwhile). Upgrades stay pre-upgrade either way.

The Job runs under the namespace's default ServiceAccount unless serviceAccount.create is false
and a name is given, because a pre-install hook runs before the chart's own ServiceAccount exists.
(dict "ctx" $ "spec" $spec)
*/}}

{{- define "allot-common.migrationHookEvents" -}}
{{- if include "allot-common.existingSecret" . -}}
pre-install,pre-upgrade
{{- else -}}
post-install,pre-upgrade
{{- end -}}
{{- end -}}

{{- define "allot-common.migrationJob" -}}
{{- $ctx := .ctx -}}
{{- $m := $ctx.Values.migrations -}}
{{- if and .spec.migrations $m.enabled -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ printf "%s-migrate" (include "allot-common.fullname" $ctx | trunc 55 | trimSuffix "-") }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "allot-common.labels" (dict "ctx" $ctx "component" "migrations") | nindent 4 }}
  annotations:
    helm.sh/hook: {{ include "allot-common.migrationHookEvents" $ctx }}
    helm.sh/hook-weight: {{ $m.hookWeight | quote }}
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ $m.backoffLimit }}
  activeDeadlineSeconds: {{ $m.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "allot-common.labels" (dict "ctx" $ctx "component" "migrations") | nindent 8 }}
    spec:
      restartPolicy: Never
      {{- if and (not $ctx.Values.serviceAccount.create) $ctx.Values.serviceAccount.name }}
      serviceAccountName: {{ $ctx.Values.serviceAccount.name }}
      {{- end }}
      automountServiceAccountToken: false
      {{- with include "allot-common.imagePullSecrets" $ctx }}{{ . | trim | nindent 6 }}{{ end }}
      securityContext:
        {{- include "allot-common.podSecurityContext" $ctx | nindent 8 }}
      {{- with $ctx.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $ctx.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: migrate
          image: {{ include "allot-common.image" $ctx }}
          imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
          args: ["migrate.mjs"]
          {{- /* inline, not the env ConfigMap: a pre-install hook runs before the ConfigMap exists */}}
          env:
            - name: NODE_ENV
              value: "production"
            - name: LOG_LEVEL
              value: {{ $ctx.Values.logLevel | quote }}
            - name: ALLOT_TENANT
              value: {{ include "allot-common.tenant" $ctx | quote }}
            {{- include "allot-common.secretEnv" (dict "ctx" $ctx "spec" .spec) | trim | nindent 12 }}
          resources:
            {{- toYaml $m.resources | nindent 12 }}
          securityContext:
            {{- include "allot-common.containerSecurityContext" $ctx | nindent 12 }}
          volumeMounts:
            {{- include "allot-common.tmpVolumeMount" $ctx | nindent 12 }}
      volumes:
        {{- include "allot-common.tmpVolume" $ctx | nindent 8 }}
{{- end -}}
{{- end -}}
